/**
 * The method table being served, in one place: the discovered methods plus the built-ins
 * (`rpc.discover`). Watch mode swaps it; calls already running keep the table they started with.
 */
import { buildOpenRpc, discoverRecord } from './discover.ts';
import type { MethodRecord, MethodTable } from './registry.ts';

export class MethodHolder {
  #current: MethodTable;
  readonly #info: { title: string; version: string };

  /** @example const methods = new MethodHolder(await discoverMethods(dir), { title: 'simpleapi', version }) */
  constructor(discovered: MethodTable, info: { title: string; version: string }) {
    this.#info = info;
    this.#current = this.#withBuiltins(discovered);
  }

  /** Every method served right now, built-ins included. */
  get current(): MethodTable {
    return this.#current;
  }

  /** How many methods the files define (the built-ins not counted): the number logs show. */
  get fileCount(): number {
    return Object.values(this.#current).filter((m) => !m.name.startsWith('rpc.')).length;
  }

  /** Serves another discovered table from now on. */
  swap(discovered: MethodTable): void {
    this.#current = this.#withBuiltins(discovered);
  }

  #withBuiltins(methods: MethodTable): MethodTable {
    const table: Record<string, MethodRecord> = Object.assign(Object.create(null), methods);
    let document: unknown;
    table['rpc.discover'] = discoverRecord(() => (document ??= buildOpenRpc(table, this.#info)));
    return table;
  }
}
