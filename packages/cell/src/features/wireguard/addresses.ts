/** Tunnel addresses inside the cell subnet: the cell takes the first host, peers the ones after it. */
import { formatIPv4, maskOf, networkOf, parseCidr, parseIPv4 } from '../../lib/net.js';

interface HostRange {
  first: number;
  last: number;
  prefix: number;
}

function hostRange(subnet: string): HostRange {
  const cidr = parseCidr(subnet);
  if (!cidr) throw new TypeError(`${JSON.stringify(subnet)} is not an IPv4 CIDR`);
  const network = networkOf(cidr);
  const broadcast = (network | (~maskOf(cidr.prefix) >>> 0)) >>> 0;
  // /31 and /32 have no room for a cell and a peer; report an empty range.
  return { first: network + 1, last: cidr.prefix >= 31 ? network : broadcast - 1, prefix: cidr.prefix };
}

/** The cell's own tunnel address: the subnet's first host (10.8.0.0/24 → 10.8.0.1). */
export function cellAddress(subnet: string): string {
  const range = hostRange(subnet);
  if (range.first > range.last) throw new RangeError(`${subnet} has no host addresses`);
  return formatIPv4(range.first);
}

/** The cell's address with the subnet's prefix, as the interface carries it (10.8.0.1/24). */
export function cellInterfaceAddress(subnet: string): string {
  return `${cellAddress(subnet)}/${hostRange(subnet).prefix}`;
}

/**
 * The lowest free host address for a new peer, or undefined when the subnet is full. Never the
 * network or broadcast address, never the cell's own. `taken` holds addresses with or without a
 * prefix ("10.8.0.2" or "10.8.0.2/32"); entries that are not IPv4 addresses cannot collide and are skipped.
 */
export function nextFreeAddress(subnet: string, taken: Iterable<string>): string | undefined {
  return nextFreeAddresses(subnet, taken, 1)[0];
}

/** The `count` lowest free host addresses (fewer when the subnet has fewer), in one pass over `taken`. */
export function nextFreeAddresses(subnet: string, taken: Iterable<string>, count: number): string[] {
  const range = hostRange(subnet);
  const used = new Set<number>();
  for (const entry of taken) {
    const ip = parseIPv4(entry.split('/')[0]!);
    if (ip !== undefined) used.add(ip);
  }
  const free: string[] = [];
  for (let ip = range.first + 1; ip <= range.last && free.length < count; ip++) if (!used.has(ip)) free.push(formatIPv4(ip));
  return free;
}
