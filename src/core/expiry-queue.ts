/**
 * Keys with the expiry they were added with, oldest first, beside a Map whose expired entries must
 * be dropped cheaply as new ones come. Why not the Map's own order: V8 leaves a deleted entry's
 * slot in the table until it is rebuilt, and a loop from the front walks every such hole again;
 * dropping a few entries from the front on each insert made an insert 19x to 453x dearer once the
 * first window had passed (bench/expiry-churn.ts).
 *
 * An entry re-added under the same key leaves its old place behind; the two are told apart by
 * the expiry kept here (`dropFirst`), so a stale place is dropped without deleting the entry that
 * replaced it. Places left behind, and expired ones waiting behind an entry that expires later,
 * are bounded: past twice the owner's live entries and 1024 places, the queue is made again from
 * them, once per that many pushes, so it never holds more than about three times them.
 */
export class ExpiryQueue {
  #keys: string[] = [];
  #expires: number[] = [];
  #head = 0;

  constructor(readonly owner: QueueOwner) {}

  get length(): number {
    return this.#keys.length - this.#head;
  }

  push(key: string, expires: number): void {
    this.#keys.push(key);
    this.#expires.push(expires);
    this.bound();
  }

  /** Made again from the owner's entries when past its bound; the owner calls it after deleting many. */
  bound(): void {
    if (this.length <= 2 * this.owner.size() + 1024) return;
    this.#keys = [];
    this.#expires = [];
    this.#head = 0;
    for (const [key, expires] of this.owner.entries()) {
      this.#keys.push(key);
      this.#expires.push(expires);
    }
  }

  /** The expiry the oldest key was added with; only when `length` > 0. */
  get firstExpires(): number {
    return this.#expires[this.#head]!;
  }

  /**
   * Takes the oldest place off and deletes its key from the owner, unless the entry there now
   * has another expiry: it was added again since, and this place is stale.
   */
  dropFirst(): void {
    const key = this.#keys[this.#head]!;
    if (this.owner.expiryOf(key) === this.firstExpires) this.owner.delete(key);
    this.#shift();
  }

  #shift(): void {
    this.#head++;
    // Compacted once the taken places are half the arrays: each place is copied at most once per
    // time it is taken, and the arrays never hold more than twice what is queued.
    if (this.#head >= 1024 && this.#head * 2 >= this.#keys.length) {
      this.#keys = this.#keys.slice(this.#head);
      this.#expires = this.#expires.slice(this.#head);
      this.#head = 0;
    }
  }
}

/** The Map an ExpiryQueue runs beside, as the queue sees it. */
export interface QueueOwner {
  /** How many entries it holds now. */
  size(): number;
  /** Its entries with their expiries, oldest first. */
  entries(): Iterable<readonly [string, number]>;
  /** The expiry of the entry under `key` now; undefined when there is none. */
  expiryOf(key: string): number | undefined;
  delete(key: string): void;
}
