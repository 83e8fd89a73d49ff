import { isIPv6 } from 'node:net';

/** IPv4 helpers for validating what the wizard and config accept. */

export function parseIPv4(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const octets = m.slice(1).map(Number);
  if (octets.some((o, i) => o > 255 || (m[i + 1]!.length > 1 && m[i + 1]!.startsWith('0')))) return undefined;
  return ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Cidr {
  network: number;
  prefix: number;
}

export function parseCidr(text: string): Cidr | undefined {
  const [ip, len, extra] = text.split('/');
  if (extra !== undefined || ip === undefined || len === undefined || !/^\d{1,2}$/.test(len)) return undefined;
  const network = parseIPv4(ip);
  const prefix = Number(len);
  if (network === undefined || prefix > 32) return undefined;
  return { network, prefix };
}

export const maskOf = (prefix: number): number => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
/** The network address of a CIDR: its host bits cleared. */
export const networkOf = (c: Cidr): number => (c.network & maskOf(c.prefix)) >>> 0;

const PRIVATE_RANGES: Cidr[] = [
  { network: parseIPv4('10.0.0.0')!, prefix: 8 },
  { network: parseIPv4('172.16.0.0')!, prefix: 12 },
  { network: parseIPv4('192.168.0.0')!, prefix: 16 },
];

export function isPrivateCidr(c: Cidr): boolean {
  return PRIVATE_RANGES.some((r) => c.prefix >= r.prefix && (c.network & maskOf(r.prefix)) >>> 0 === r.network);
}

/** Why a subnet is unacceptable for the cell's VPN, or undefined when it is fine. */
export function subnetProblem(text: string, minPrefix = 16, maxPrefix = 29): string | undefined {
  const cidr = parseCidr(text);
  if (!cidr) return 'must be an IPv4 CIDR like 10.8.0.0/24';
  if (cidr.prefix < minPrefix || cidr.prefix > maxPrefix) return `prefix must be /${minPrefix} to /${maxPrefix}`;
  const base = networkOf(cidr);
  if (base !== cidr.network) return `host bits are set; did you mean ${formatIPv4(base)}/${cidr.prefix}?`;
  if (!isPrivateCidr(cidr)) return 'must be inside a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)';
  return undefined;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** A DNS name: lowercase labels of letters, digits and inner hyphens; at most 253 characters. */
export function isDnsName(text: string): boolean {
  if (text.length === 0 || text.length > 253) return false;
  const labels = text.split('.');
  return labels.every((l) => LABEL.test(l)) && !/^\d+$/.test(labels[labels.length - 1]!);
}

export const isDnsLabel = (text: string): boolean => LABEL.test(text);

/** Why an endpoint (`host:port`) is unacceptable, or undefined when it is fine. */
export function endpointProblem(text: string): string | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(text);
  if (!m) return 'must be host:port, e.g. vpn.example.org:51820';
  const host = m[1]!;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return 'port must be 1-65535';
  if (host.startsWith('[')) return isIPv6(host.slice(1, -1)) ? undefined : 'host is not a valid IPv6 address';
  if (/^[\d.]+$/.test(host)) return parseIPv4(host) === undefined ? 'host is not a valid IPv4 address' : undefined;
  return isDnsName(host) ? undefined : 'host must be a lowercase DNS name or an IP address';
}
