/**
 * Helpers for the first-party services' end-to-end tests: the cached image builder (loaded by path
 * from scripts/images/first-party), a catalog of several services signed with a throwaway key, free
 * ports, and a fetch over TLS that trusts the cell's CA and reaches the cell's service names on
 * 127.0.0.1 (what a peer's device does through the cell's DNS).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { Agent, request as httpsRequest } from 'node:https';
import { createServer, type LookupFunction } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../support/cell-process.js';
import type { ManifestModule } from './store-helpers.js';

export interface BuiltImage {
  service: string;
  image: string;
  id: string;
}

interface FirstPartyBuilder {
  buildProblem(): string | undefined;
  buildFirstPartyImage(
    service: string,
    opts: { dockerHost?: string; log?: (line: string) => void },
  ): Promise<BuiltImage>;
}

export async function loadImageBuilder(): Promise<FirstPartyBuilder> {
  const url = pathToFileURL(join(REPO_ROOT, 'scripts', 'images', 'first-party', 'build.mjs')).href;
  return (await import(url)) as FirstPartyBuilder;
}

/**
 * A port nobody listens on right now, for a host publication. Picked below the kernel's ephemeral
 * range (32768+), where the engine allocates its own 127.0.0.1:0 publications: a port from there
 * could be taken by the engine between this check and the install.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/** Writes <dir>/manifests/<id>.yaml for each manifest and the signed <dir>/services-index. */
export async function writeMultiCatalog(
  m: ManifestModule,
  dir: string,
  opts: { version: number; key: KeyObject; manifests: any[] },
): Promise<void> {
  mkdirSync(join(dir, 'manifests'), { recursive: true });
  mkdirSync(join(dir, 'services-index'), { recursive: true });
  const index = {
    version: opts.version,
    expires: new Date(Date.now() + 30 * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    services: opts.manifests.map((man) => ({
      id: man.id,
      version: man.version,
      manifest: `manifests/${man.id}.yaml`,
      digest: m.manifestDigest(man),
    })),
  };
  const signed = await m.signIndex(index, opts.key);
  for (const man of opts.manifests)
    writeFileSync(join(dir, 'manifests', `${man.id}.yaml`), `${JSON.stringify(man, null, 2)}\n`);
  writeFileSync(join(dir, 'services-index', 'index.json'), `${JSON.stringify(index, null, 2)}\n`);
  writeFileSync(join(dir, 'services-index', 'index.sig.json'), `${JSON.stringify(signed.bundle, null, 2)}\n`);
}

/** Resolves every name under `domain` to 127.0.0.1, the rest as usual. */
export function loopbackLookup(domain: string): LookupFunction {
  return ((host: string, options: any, callback: any) => {
    if (host === domain || host.endsWith(`.${domain}`)) {
      if (options?.all) callback(null, [{ address: '127.0.0.1', family: 4 }] as LookupAddress[]);
      else callback(null, '127.0.0.1', 4);
      return;
    }
    dnsLookup(host, options, callback);
  }) as LookupFunction;
}

/** An https agent that trusts only the cell's CA and finds the cell's names on loopback. */
export function cellAgent(caPem: string, domain: string): Agent {
  return new Agent({ ca: caPem, lookup: loopbackLookup(domain), keepAlive: false });
}

/** A fetch (for tsdav) over node:https with `agent`: the certificate is checked against the cell's CA. */
export function agentFetch(agent: Agent): typeof fetch {
  return (async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input.toString() : input.url);
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => {
      headers[k] = v;
    });
    const body = init.body === undefined || init.body === null ? undefined : Buffer.from(init.body as string);
    if (body) headers['content-length'] = String(body.length);
    return new Promise<Response>((resolve, reject) => {
      const req = httpsRequest(url, { method: init.method ?? 'GET', headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const out = new Headers();
          for (const [k, v] of Object.entries(res.headers))
            if (v !== undefined) out.set(k, Array.isArray(v) ? v.join(', ') : v);
          const noBody = status === 204 || status === 304 || status < 200;
          resolve(
            new Response(noBody ? null : Buffer.concat(chunks), {
              status,
              statusText: res.statusMessage ?? '',
              headers: out,
            }),
          );
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }) as typeof fetch;
}
