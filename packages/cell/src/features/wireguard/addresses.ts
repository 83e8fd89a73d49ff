/** Tunnel addresses inside the cell subnet: the cell takes the first host, peers the ones after it. */
import { formatIPv4, maskOf, networkOf, parseCidr } from '../../lib/net.js';

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

/**
 * The `count` lowest free host addresses (fewer when the subnet has fewer), in one pass over
 * `taken`. A peer add runs this over every address in use (10,000 with a big cell): a bitmap of
 * the host range and a parser without regex or arrays keep it well under a millisecond.
 */
export function nextFreeAddresses(subnet: string, taken: Iterable<string>, count: number): string[] {
  const range = hostRange(subnet);
  const size = Math.max(0, range.last - range.first + 1);
  const used = new Uint8Array(size);
  for (const entry of taken) {
    const ip = quickIPv4(entry);
    if (ip !== undefined && ip >= range.first && ip <= range.last) used[ip - range.first] = 1;
  }
  const free: string[] = [];
  for (let i = 1; i < size && free.length < count; i++) if (used[i] === 0) free.push(formatIPv4(range.first + i));
  return free;
}

/**
 * "a.b.c.d" or "a.b.c.d/nn" as a number, else undefined: the same answers as parseIPv4 on the part
 * before the slash (no leading zeros, octets 0-255), without its regex and arrays.
 */
function quickIPv4(text: string): number | undefined {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  let end = text.indexOf('/');
  if (end < 0) end = text.length;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return undefined;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits === 1 && octet === 0) return undefined; // a leading zero
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return undefined;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || digits === 0) return undefined;
  return value * 256 + octet;
}
