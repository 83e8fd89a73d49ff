import { isIP } from 'node:net';
import type { Context, Next } from 'koa';
import { errors } from './errors.js';
import { isDnsName } from '../lib/net.js';

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Always known: the cell on this machine. */
const LOOPBACK = ['localhost', '127.0.0.1', '[::1]'];

/**
 * A host name as compared here: lowercase, without a trailing dot, an IPv6 address in brackets
 * ("[::1]"). Undefined for text that is no host name or address at all.
 */
export function normalHost(text: string): string | undefined {
  let host = text.trim().toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (isIP(bare) === 6) return `[${bare}]`;
  if (isIP(bare) === 4 || isDnsName(bare)) return bare;
  return undefined;
}

/** The host part of a Host header value ("example.org:3000", "[::1]:3000"), normalised. */
function hostOfHeader(value: string): string | undefined {
  let host = value;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end === -1) return undefined;
    const rest = host.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined;
    host = host.slice(0, end + 1);
  } else {
    const colon = host.indexOf(':');
    if (colon !== -1) {
      if (!/^\d{1,5}$/.test(host.slice(colon + 1))) return undefined;
      host = host.slice(0, colon);
    }
  }
  return normalHost(host);
}

/**
 * The names the cell answers to (against DNS rebinding): localhost, 127.0.0.1 and [::1] on any
 * port, the address it listens on, its configured domain and every subdomain of it, its WireGuard
 * address, and the names listed under `http.allowed_hosts` in cell.yaml. The domain and the
 * WireGuard address change with the settings: `setCellNames()` is called at start and after every
 * committed change of them.
 */
export class KnownHosts {
  private exact = new Set<string>();
  private domainSuffix = '';
  /** Header value → verdict, for the few distinct Host values a cell sees (bounded; cleared on change). */
  private readonly verdicts = new Map<string, boolean>();

  constructor(private readonly fixed: readonly string[]) {
    this.setCellNames(undefined, undefined);
  }

  setCellNames(domain: string | undefined, wireguardAddress: string | undefined): void {
    const names = [...LOOPBACK, ...this.fixed];
    if (wireguardAddress) names.push(wireguardAddress);
    const normalDomain = domain === undefined ? undefined : normalHost(domain);
    if (normalDomain) names.push(normalDomain);
    this.exact = new Set(names.map((n) => normalHost(n)).filter((n): n is string => n !== undefined));
    this.domainSuffix = normalDomain ? `.${normalDomain}` : '';
    this.verdicts.clear();
  }

  /** Whether a normalised host name is one the cell answers to. */
  knowsName(host: string | undefined): boolean {
    if (host === undefined) return false;
    return this.exact.has(host) || (this.domainSuffix !== '' && host.endsWith(this.domainSuffix));
  }

  /** Whether a Host header value (name and optional port) names the cell. */
  knowsHostHeader(value: string | undefined): boolean {
    if (value === undefined || value === '') return false;
    const known = this.verdicts.get(value);
    if (known !== undefined) return known;
    const verdict = this.knowsName(hostOfHeader(value));
    if (this.verdicts.size < 256) this.verdicts.set(value, verdict);
    return verdict;
  }

  /** Whether an Origin header value (scheme://host[:port]) names the cell; "null" never does. */
  knowsOrigin(value: string): boolean {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return false;
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== value.toLowerCase()) return false;
    return this.knowsName(normalHost(url.hostname));
  }
}

/**
 * First check after the error handler and the audit: a request whose Host is not a name of the
 * cell gets 421 `unknown_host` (RFC 9110: misdirected, this server does not answer for that
 * name), whatever its path, before setup too; a write whose Origin names another site gets 403
 * `foreign_origin`. The raw Host header is checked (not X-Forwarded-Host): a reverse proxy in
 * front of the cell passes the client's Host on, or its own upstream address, which is loopback.
 */
export function checkHostAndOrigin(known: KnownHosts) {
  return function hostAndOrigin(ctx: Context, next: Next): Promise<void> {
    const headers = ctx.req.headers;
    if (!known.knowsHostHeader(headers.host)) {
      throw errors.misdirected('this cell does not answer to that host name (see http.allowed_hosts, cell.yaml)');
    }
    const origin = headers.origin;
    if (origin !== undefined && WRITE_METHODS.has(ctx.method) && !known.knowsOrigin(origin)) {
      throw errors.forbidden('the request comes from a page of another site (Origin)', 'foreign_origin');
    }
    return next();
  };
}
