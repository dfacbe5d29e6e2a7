/**
 * The embedded store's kept outcomes (§6 v2 retries) in one fixed arena outside the JS heap: a
 * ring of bytes, the oldest overwritten first. Its size is the bound on their memory, and keeping
 * a call's answer costs a copy into it rather than a string the garbage collector must carry for
 * the whole signing window.
 */

/** Bytes of a v2 MAC (SHA-256), kept raw before each body. */
const MAC_BYTES = 32;

export class OutcomeRing {
  readonly capacity: number;
  #buffer: Buffer | null = null;
  /** Bytes reserved since the start; a position is absolute, its offset in the ring `% capacity`. */
  #written = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** Bytes of the arena in use (at most `capacity`). */
  get used(): number {
    return Math.min(this.#written, this.capacity);
  }

  /**
   * Copies a call's MAC (hex) and answer body in; returns where they start and their length, or
   * null when they do not fit in the whole ring. A piece never wraps: the tail is skipped instead.
   */
  put(macHex: string, body: string): { start: number; length: number } | null {
    const length = MAC_BYTES + Buffer.byteLength(body);
    if (length > this.capacity) return null;
    // Allocated when first used: a server nobody retries against never holds the arena.
    this.#buffer ??= Buffer.allocUnsafeSlow(this.capacity);
    let offset = this.#written % this.capacity;
    if (offset + length > this.capacity) {
      this.#written += this.capacity - offset;
      offset = 0;
    }
    const start = this.#written;
    this.#buffer.write(macHex, offset, MAC_BYTES, 'hex');
    this.#buffer.write(body, offset + MAC_BYTES, 'utf8');
    this.#written += length;
    return { start, length };
  }

  /** True while the piece at `start` has not been overwritten. */
  intact(start: number): boolean {
    return this.#buffer !== null && start >= this.#written - this.capacity;
  }

  /** The MAC (hex) of the piece at `start`; check `intact` first. */
  mac(start: number): string {
    const offset = start % this.capacity;
    return this.#buffer!.toString('hex', offset, offset + MAC_BYTES);
  }

  /** The body of the piece at `start`; check `intact` first. */
  body(start: number, length: number): string {
    const offset = start % this.capacity;
    return this.#buffer!.toString('utf8', offset + MAC_BYTES, offset + length);
  }
}
