/**
 * The key a client address is counted under by every limit (the login budgets, rate limits,
 * streams and connections per address, public jobs). An IPv6 subscriber is routinely given a
 * whole /64 (RFC 6177), so counting single IPv6 addresses would let one client rotate through
 * 2^64 of them and never meet a per-address limit: IPv6 addresses are counted per /64. An
 * IPv4-mapped address (`::ffff:192.0.2.1`, what a dual-stack socket reports) counts as its IPv4
 * address, and so does one behind NAT64's well-known prefix. Parsing is ipaddr.js's, the parser
 * proxy-addr (which gives `ctx.ip` behind proxies) uses too.
 */
import ipaddr from 'ipaddr.js';

/**
 * `192.0.2.1` for an IPv4 address, `2001:db8:1:2::/64` for any IPv6 address in that /64; what
 * it cannot read it returns as it is, so it is still counted (on its own).
 *
 * @example addressKeyOf('2001:db8:1:2:aaaa::1') === addressKeyOf('2001:db8:1:2::ffff') // true
 */
export function addressKeyOf(ip: string): string {
  // The common case costs one scan: an IPv4 address as the socket gives it.
  if (!ip.includes(':')) return ip;
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.parse(ip);
  } catch {
    return ip;
  }
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const v6 = parsed as ipaddr.IPv6;
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address().toString();
  // NAT64's well-known prefix (RFC 6052) carries the IPv4 client in its last 32 bits.
  const p = v6.parts;
  if (p[0] === 0x64 && p[1] === 0xff9b && p[2] === 0 && p[3] === 0 && p[4] === 0 && p[5] === 0) {
    return `${p[6]! >> 8}.${p[6]! & 255}.${p[7]! >> 8}.${p[7]! & 255}`;
  }
  return `${v6.parts
    .slice(0, 4)
    .map((part) => part.toString(16))
    .join(':')}::/64`;
}
