import { randomUUID } from 'node:crypto';
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { Db } from 'mongodb';
import { ApiError, type MethodContext } from '../../src/index.ts';
import { mapMySqlError } from '../../src/store/mysql.ts';

export interface Note {
  id: string;
  text: string;
  created: number;
}

/** The caller's notes, on whichever database the server runs on. */
export interface Notes {
  add(text: string): Promise<Note>;
  /** Oldest first, at most 1000. */
  list(): Promise<Note[]>;
  /** False when the caller has no note with that id. */
  remove(id: string): Promise<boolean>;
}

interface NoteDoc {
  _id: string;
  owner: string;
  text: string;
  created: number;
}

/**
 * The caller's notes: the `notes` collection of ctx.db on MongoDB, the `notes` table of ctx.sql
 * on MySQL (created when first used); the embedded store has neither.
 */
export function notes(ctx: MethodContext): Notes {
  const owner = ctx.session!.userId;
  if (ctx.db !== null) return mongoNotes(ctx.db, owner);
  if (ctx.sql !== null) return mysqlNotes(ctx.sql, owner);
  throw new ApiError('DatabaseRequired');
}

const newNote = (text: string): Note => ({ id: randomUUID(), text, created: Math.floor(Date.now() / 1000) });

function mongoNotes(db: Db, owner: string): Notes {
  const collection = db.collection<NoteDoc>('notes');
  return {
    async add(text) {
      const n = newNote(text);
      await collection.insertOne({ _id: n.id, owner, text: n.text, created: n.created });
      return n;
    },
    async list() {
      const docs = await collection.find({ owner }).sort({ created: 1, _id: 1 }).limit(1000).toArray();
      return docs.map((d) => ({ id: d._id, text: d.text, created: d.created }));
    },
    async remove(id) {
      return (await collection.deleteOne({ _id: id, owner })).deletedCount === 1;
    },
  };
}

/** One CREATE TABLE IF NOT EXISTS per pool; tried again after a failure (e.g. during an outage). */
const tables = new WeakMap<Pool, Promise<unknown>>();
function ensureTable(pool: Pool): Promise<unknown> {
  let ready = tables.get(pool);
  if (ready === undefined) {
    ready = pool.query(`CREATE TABLE IF NOT EXISTS notes (
      id CHAR(36) NOT NULL PRIMARY KEY,
      owner VARCHAR(512) NOT NULL,
      text TEXT NOT NULL,
      created BIGINT NOT NULL,
      INDEX notes_owner (owner, created, id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`);
    ready.catch(() => tables.delete(pool));
    tables.set(pool, ready);
  }
  return ready;
}

/** A query on `pool` after its table exists; a database that does not answer is Unavailable (503), as for the store. */
async function query<T extends RowDataPacket[] | ResultSetHeader>(pool: Pool, sql: string, values: unknown[]): Promise<T> {
  try {
    await ensureTable(pool);
    return (await pool.query<T>(sql, values))[0];
  } catch (err) {
    throw mapMySqlError(err);
  }
}

function mysqlNotes(pool: Pool, owner: string): Notes {
  return {
    async add(text) {
      const n = newNote(text);
      await query(pool, 'INSERT INTO notes (id, owner, text, created) VALUES (?, ?, ?, ?)', [n.id, owner, n.text, n.created]);
      return n;
    },
    async list() {
      const rows = await query<RowDataPacket[]>(pool, 'SELECT id, text, created FROM notes WHERE owner = ? ORDER BY created, id LIMIT 1000', [owner]);
      return rows.map((r) => ({ id: r.id, text: r.text, created: Number(r.created) }));
    },
    async remove(id) {
      return (await query<ResultSetHeader>(pool, 'DELETE FROM notes WHERE id = ? AND owner = ?', [id, owner])).affectedRows === 1;
    },
  };
}

export const note = {
  type: 'object',
  properties: { id: { type: 'string' }, text: { type: 'string' }, created: { type: 'integer' } },
  required: ['id', 'text', 'created'],
} as const;
