/**
 * Caddy's JSON config, built as data (no Caddyfile text): what the cell POSTs to Caddy's /load.
 * One HTTP server on the WireGuard address (and the LAN addresses cell.yaml names) with one route
 * per host: the cell's domain to the cell's API, each installed service's subdomain to its
 * container's loopback port (over TLS when the container serves HTTPS), anything else a 404.
 * Automatic HTTPS is off for the internal CA: the certificate is loaded as PEM
 * (tls.certificates.load_pem). With `acme`, Caddy's own automation gets the names instead
 * (a public domain; not testable on a machine without the internet).
 */

export interface WebUpstream {
  /** The service id (for the route's id) and the host name it serves. */
  id: string;
  host: string;
  /** host:port Caddy dials (the container's published loopback port). */
  dial: string;
  /**
   * The upstream speaks HTTPS (manifest `web.tls`): Caddy connects over TLS, trusting only the
   * cell's CA (a PEM file) and checking the certificate for `serverName` (<subdomain>.<domain>).
   */
  tls?: { rootCaFile: string; serverName: string };
}

export interface CaddyConfigInput {
  adminSocket: string;
  /** Host header value the admin API accepts (requests come over the unix socket only). */
  adminOrigin: string;
  storageDir: string;
  listen: string[];
  domain: string;
  /** host:port of the cell's own HTTP listener. */
  cellUpstream: string;
  services: WebUpstream[];
  tls: { mode: 'internal'; certificatePem: string; keyPem: string } | { mode: 'acme'; email: string | null };
}

export const CELL_ROUTE_ID = 'pic-cell';
export const serviceRouteId = (id: string): string => `pic-service-${id}`;

const proxy = (dial: string, tls?: WebUpstream['tls']) => ({
  handler: 'reverse_proxy',
  upstreams: [{ dial }],
  ...(tls
    ? { transport: { protocol: 'http', tls: { root_ca_pem_files: [tls.rootCaFile], server_name: tls.serverName } } }
    : {}),
});

export function buildCaddyConfig(input: CaddyConfigInput): Record<string, unknown> {
  const routes: unknown[] = [
    { '@id': CELL_ROUTE_ID, match: [{ host: [input.domain] }], handle: [proxy(input.cellUpstream)], terminal: true },
    ...input.services.map((s) => ({
      '@id': serviceRouteId(s.id),
      match: [{ host: [s.host] }],
      handle: [proxy(s.dial, s.tls)],
      terminal: true,
    })),
    { handle: [{ handler: 'static_response', status_code: 404, body: 'no service by that name on this cell\n' }] },
  ];
  const internal = input.tls.mode === 'internal';
  const server: Record<string, unknown> = {
    listen: input.listen,
    routes,
    tls_connection_policies: [{}],
    automatic_https: internal ? { disable: true } : { disable_redirects: true },
  };
  const tls: Record<string, unknown> =
    input.tls.mode === 'internal'
      ? {
          certificates: {
            load_pem: [{ certificate: input.tls.certificatePem, key: input.tls.keyPem, tags: ['pic-cell'] }],
          },
        }
      : {
          automation: {
            policies: [
              {
                subjects: [input.domain, ...input.services.map((s) => s.host)],
                issuers: [{ module: 'acme', ...(input.tls.email ? { email: input.tls.email } : {}) }],
              },
            ],
          },
        };
  return {
    admin: { listen: `unix/${input.adminSocket}`, origins: [input.adminOrigin], config: { persist: false } },
    storage: { module: 'file_system', root: input.storageDir },
    logging: { logs: { default: { level: 'WARN' } } },
    // grace_period unset: eternal grace (Caddy's default), so a config load lets open requests finish.
    apps: { http: { servers: { pic: server } }, tls },
  };
}

/** The first config Caddy starts with (from a file): only the admin endpoint, no secrets. */
export function bootstrapConfig(adminSocket: string, adminOrigin: string): Record<string, unknown> {
  return { admin: { listen: `unix/${adminSocket}`, origins: [adminOrigin], config: { persist: false } } };
}
