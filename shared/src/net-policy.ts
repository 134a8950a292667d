// Which network addresses Slipway will reach on a stranger's behalf: public unicast only. Used by
// the repository URL check (clones) and by the builds' egress proxy, so both refuse the same ranges.
import ipaddr from 'ipaddr.js';

/**
 * Null when `address` is a public unicast address; otherwise what it is ("loopback", "private",
 * "linkLocal" — where cloud metadata lives —, "carrierGradeNat", "uniqueLocal", "reserved"…).
 */
export function nonPublicRange(address: string): string | null {
  if (!ipaddr.isValid(address)) return 'invalid';
  const parsed = ipaddr.process(address);
  const range = parsed.range();
  // "unicast" is ipaddr.js's name for public addresses.
  if (range !== 'unicast') return range;
  // IPv4-compatible IPv6 (::a.b.c.d, deprecated) counts as unicast to ipaddr.js but can reach IPv4 hosts.
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).parts.slice(0, 6).every((p) => p === 0)) return 'IPv4-compatible IPv6';
  return null;
}

export function isIpAddress(value: string): boolean {
  return ipaddr.isValid(value);
}
