/**
 * The resolver's config file (dnsmasq, started with --conf-file). Every name and value is checked
 * here again before it is written, whatever the caller validated: a line break, quote, backslash or
 * control character never reaches the file, so no record can add a directive of its own.
 */
import { isIP } from 'node:net';
import { parseIPv4 } from '../../lib/net.js';

export type DnsRecordType = 'A' | 'AAAA' | 'CNAME' | 'TXT';

export interface DnsRecord {
  name: string;
  type: DnsRecordType;
  value: string;
}

export interface DnsmasqInput {
  listen: string;
  port: number;
  domain: string;
  upstreams: string[];
  records: DnsRecord[];
}

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/** A lowercase DNS name (labels of letters, digits, - and _), at most 253 characters. */
export function dnsNameProblem(name: string): string | undefined {
  if (typeof name !== 'string' || name.length === 0 || name.length > 253)
    return 'must be a DNS name of 1-253 characters';
  if (!name.split('.').every((l) => LABEL.test(l)))
    return 'must be a lowercase DNS name: labels of a-z, 0-9, - and _ separated by dots';
  return undefined;
}

/** Printable ASCII without " and \ (dnsmasq quotes TXT values), at most 255 characters. */
function txtProblem(value: string): string | undefined {
  if (value.length > 255) return 'must be at most 255 characters';
  if (!/^[\x20-\x7e]*$/.test(value)) return 'must be printable ASCII: no line breaks, tabs or control characters';
  if (/["\\]/.test(value)) return 'must not contain quotes or backslashes';
  return undefined;
}

export function recordProblems(r: { name: unknown; type: unknown; value: unknown }): Record<string, string> {
  const fields: Record<string, string> = {};
  const nameProblem = typeof r.name === 'string' ? dnsNameProblem(r.name) : 'must be a string';
  if (nameProblem) fields['name'] = nameProblem;
  if (typeof r.value !== 'string') fields['value'] = 'must be a string';
  else if (r.type === 'A' && parseIPv4(r.value) === undefined) fields['value'] = 'must be an IPv4 address';
  else if (r.type === 'AAAA' && isIP(r.value) !== 6) fields['value'] = 'must be an IPv6 address';
  else if (r.type === 'CNAME') {
    const p = dnsNameProblem(r.value);
    if (p) fields['value'] = p;
  } else if (r.type === 'TXT') {
    const p = txtProblem(r.value);
    if (p) fields['value'] = p;
  } else if (!['A', 'AAAA', 'CNAME', 'TXT'].includes(String(r.type))) fields['type'] = 'must be A, AAAA, CNAME or TXT';
  return fields;
}

function line(key: string, value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the check refuses control characters, so it must match them
  if (/[\x00-\x1f\x7f]/.test(value))
    throw new Error(`refusing to write a control character into the resolver config (${key})`);
  return `${key}=${value}`;
}

export function renderDnsmasqConfig(input: DnsmasqInput): string {
  if (parseIPv4(input.listen) === undefined) throw new Error(`listen address ${input.listen} is not IPv4`);
  if (dnsNameProblem(input.domain)) throw new Error(`domain ${input.domain} is not a DNS name`);
  for (const u of input.upstreams) if (parseIPv4(u) === undefined) throw new Error(`upstream ${u} is not IPv4`);
  const out = [
    '# Written by the PIC cell (features/dns); it is rewritten on every change.',
    line('listen-address', input.listen),
    // bound to the address itself, and rebound when the tunnel's address comes back after a restart
    'bind-dynamic',
    line('port', String(input.port)),
    'no-resolv',
    'no-hosts',
    'no-poll',
    'domain-needed',
    'cache-size=1000',
    line('user', 'nobody'),
    line('group', 'nogroup'),
    ...input.upstreams.map((u) => line('server', u)),
    // split horizon: the cell's domain and every name under it is the cell's tunnel address
    line('address', `/${input.domain}/${input.listen}`),
  ];
  for (const r of input.records) {
    const problems = recordProblems(r);
    if (Object.keys(problems).length)
      throw new Error(`refusing an invalid record for ${JSON.stringify(r.name)}: ${JSON.stringify(problems)}`);
    if (r.type === 'A' || r.type === 'AAAA') out.push(line('host-record', `${r.name},${r.value}`));
    else if (r.type === 'CNAME') out.push(line('cname', `${r.name},${r.value}`));
    else out.push(line('txt-record', `${r.name},"${r.value}"`));
  }
  return `${out.join('\n')}\n`;
}
