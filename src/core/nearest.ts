/** "Did you mean": the names closest to a mistyped one, for method names, commands and settings. */

/** Levenshtein distance, stopping early once it must exceed `limit`. */
export function editDistance(a: string, b: string, limit = Infinity): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const value = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      next.push(value);
      if (value < best) best = value;
    }
    if (best > limit) return limit + 1;
    row = next;
  }
  return row[b.length]!;
}

/**
 * Up to `count` candidates within a few edits of `name`, closest first. Work is bounded: names
 * longer than 256 characters get none, and at most `scan` candidates are compared.
 *
 * @example closest('greet.helo', ['greet.hello', 'echo']) // ['greet.hello']
 */
export function closest(name: string, candidates: Iterable<string>, options: { count?: number; scan?: number } = {}): string[] {
  if (name.length === 0 || name.length > 256) return [];
  const limit = Math.max(2, Math.floor(name.length / 4));
  const found: { candidate: string; score: number }[] = [];
  let scanned = 0;
  for (const candidate of candidates) {
    if (++scanned > (options.scan ?? 5000)) break;
    if (Math.abs(candidate.length - name.length) > limit) continue;
    const score = editDistance(name.toLowerCase(), candidate.toLowerCase(), limit);
    if (score <= limit) found.push({ candidate, score });
  }
  return found
    .sort((x, y) => x.score - y.score || x.candidate.localeCompare(y.candidate))
    .slice(0, options.count ?? 3)
    .map((f) => f.candidate);
}
