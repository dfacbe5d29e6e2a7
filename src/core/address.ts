/**
 * The key a client address is counted under by every limit (the login budgets, rate limits,
 * streams and connections per address). An IPv6 subscriber is routinely given a whole /64
 * (RFC 6177), so counting single IPv6 addresses would let one client rotate through 2^64 of them
 * and never meet a per-address limit: IPv6 addresses are counted per /64. An IPv4-mapped address
 * (`::ffff:192.0.2.1`, what a dual-stack socket reports) counts as its IPv4 address.
 */

/** The 16-bit groups of an IPv6 address, or null when it is not one. */
function groupsOf(ip: string): number[] | null {
  const halves = ip.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string): number[] | null => {
    if (part === '') return [];
    const out: number[] = [];
    for (const group of part.split(':')) {
      if (!/^[0-9a-f]{1,4}$/.test(group)) return null;
      out.push(parseInt(group, 16));
    }
    return out;
  };
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  if (head === null || tail === null) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}

/**
 * `192.0.2.1` for an IPv4 address, `2001:db8:1:2::/64` for any IPv6 address in that /64; what
 * it cannot read it returns as it is, so it is still counted (on its own).
 *
 * @example addressKeyOf('2001:db8:1:2:aaaa::1') === addressKeyOf('2001:db8:1:2::ffff') // true
 */
export function addressKeyOf(ip: string): string {
  if (!ip.includes(':')) return ip;
  let v6 = ip.toLowerCase();
  const zone = v6.indexOf('%');
  if (zone !== -1) v6 = v6.slice(0, zone);
  // An IPv4 tail (`::ffff:192.0.2.1`, `64:ff9b::192.0.2.1`) is two groups.
  const dotted = /^(.*:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(v6);
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(2).map(Number) as [number, number, number, number];
    v6 = `${dotted[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const groups = groupsOf(v6);
  if (groups === null) return ip;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `${groups[6]! >> 8}.${groups[6]! & 255}.${groups[7]! >> 8}.${groups[7]! & 255}`;
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}
