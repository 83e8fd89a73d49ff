import { existsSync, readFileSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';
import { compile, fieldErrors } from './lib/ajv.js';
import { normalHost } from './http/hosts.js';

const IPV4 = '^((25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)$';
const Ipv4 = () => Type.String({ pattern: IPV4, errorMessage: 'must be IPv4 addresses like 192.168.1.10' });

/** Settings read at start-up from `<data dir>/cell.yaml`; every key optional. */
export const CellYamlSchema = Type.Object(
  {
    log_level: Type.Optional(
      Type.Union([Type.Literal('debug'), Type.Literal('info'), Type.Literal('warn'), Type.Literal('error')]),
    ),
    http: Type.Optional(
      Type.Object(
        {
          /**
           * More names the cell answers to (Host and Origin), besides localhost, its listen address,
           * its domain and subdomains and its WireGuard address: DNS names or IP addresses.
           */
          allowed_hosts: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 255 }), { maxItems: 64 })),
          /** Also listen on the WireGuard address once the interface is up: peers reach the API (default true). */
          listen_on_wireguard: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
    ),
    /** Trust X-Forwarded-For (only when the cell sits behind its own reverse proxy). */
    trust_proxy: Type.Optional(Type.Boolean()),
    session: Type.Optional(
      Type.Object(
        {
          idle_minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 10080 })),
          absolute_hours: Type.Optional(Type.Integer({ minimum: 1, maximum: 8760 })),
        },
        { additionalProperties: false },
      ),
    ),
    rate_limit: Type.Optional(
      Type.Object(
        {
          api_per_minute: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000 })),
          login_failures: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          login_window_minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 1440 })),
        },
        { additionalProperties: false },
      ),
    ),
    wireguard: Type.Optional(
      Type.Object(
        {
          /** The interface the cell owns (default pic0). */
          interface: Type.Optional(
            Type.String({
              pattern: '^[a-zA-Z0-9_=+.-]{1,15}$',
              errorMessage: 'must be an interface name of 1-15 letters, digits or _=+.-',
            }),
          ),
          /** auto: kernel module, else wireguard-go; off: render configs only, no interface. */
          mode: Type.Optional(
            Type.Union([Type.Literal('auto'), Type.Literal('kernel'), Type.Literal('userspace'), Type.Literal('off')]),
          ),
          /** Run the interface inside this network namespace (tests, containers). */
          netns: Type.Optional(
            Type.String({
              pattern: '^[a-zA-Z0-9_.-]{1,64}$',
              errorMessage: 'must be a namespace name of letters, digits, _ . -',
            }),
          ),
          /** How often to compare the live interface with the database and repair it (0 = never). */
          drift_check_seconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400 })),
          /** Leave the interface up when the cell stops (true): a restart does not cut the tunnels. */
          keep_up_on_stop: Type.Optional(Type.Boolean()),
          /** Let peers reach each other through the cell: a FORWARD ACCEPT rule for the interface (default true). */
          forward_between_peers: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
    ),
    audit: Type.Optional(
      Type.Object(
        {
          /** Archive audit entries older than this many days (encrypted, see the audit wiki page); unset keeps all. */
          retention_days: Type.Optional(Type.Integer({ minimum: 1, maximum: 36500 })),
        },
        { additionalProperties: false },
      ),
    ),
    health: Type.Optional(
      Type.Object(
        {
          interval_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86400 })),
          keep: Type.Optional(Type.Integer({ minimum: 1, maximum: 100000 })),
        },
        { additionalProperties: false },
      ),
    ),
    cells: Type.Optional(
      Type.Object(
        {
          /** The TCP port of the peer-sync listener on the cell's WireGuard address (default 7947). */
          sync_port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
          /** Longest wait between retries of a push to a linked cell that is down (default 60 s). */
          retry_max_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600 })),
        },
        { additionalProperties: false },
      ),
    ),
    store: Type.Optional(
      Type.Object(
        {
          /** The catalog root: the directory holding services-index/ and manifests/ (default: this repository). */
          catalog_dir: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
          /** The container engine: a socket path, unix:// or tcp:// (default: DOCKER_HOST, else /var/run/docker.sock). */
          engine_socket: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
          /** enforce: refuse unpinned/mismatched/badly signed images; warn: log and audit, install anyway; off: skip. */
          image_verification: Type.Optional(
            Type.Union([Type.Literal('enforce'), Type.Literal('warn'), Type.Literal('off')]),
          ),
          /**
           * Where service ports with `host` are published: one IPv4 address or a list; never a manifest's
           * choice. Unset: 127.0.0.1, and the WireGuard address too while the tunnel is up.
           */
          publish_address: Type.Optional(
            Type.Union(
              [
                Type.String({ format: 'ipv4' }),
                Type.Array(Type.String({ format: 'ipv4' }), { minItems: 1, maxItems: 8, uniqueItems: true }),
              ],
              { errorMessage: 'must be an IPv4 address or a list of them, e.g. 127.0.0.1 or [127.0.0.1, 10.8.0.1]' },
            ),
          ),
          /**
           * Public keys (PEM files, relative to the data dir) the cell adds to its trust keys at start, once
           * each, under the given name: how `npm run services:local` makes the cell trust its local catalog.
           */
          trusted_keys: Type.Optional(
            Type.Array(
              Type.Object(
                {
                  name: Type.String({
                    pattern: '^[a-z0-9][a-z0-9._-]{0,62}$',
                    errorMessage: 'must be 1-63 lowercase letters, digits, ".", "_" or "-"',
                  }),
                  file: Type.String({ minLength: 1, maxLength: 4096 }),
                },
                { additionalProperties: false },
              ),
              { maxItems: 16 },
            ),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    /**
     * How peers reach the cell and its services by name: Caddy (HTTPS) and the resolver (DNS).
     * See wiki/admin-domains-tls-dns.md.
     */
    reach: Type.Optional(
      Type.Object(
        {
          /** auto: run Caddy and the resolver on the WireGuard address once the tunnel is up; off: neither. */
          mode: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('off')])),
          https_port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
          /** Also serve HTTPS on these LAN addresses of this machine (the resolver stays on the tunnel). */
          lan_addresses: Type.Optional(Type.Array(Ipv4(), { maxItems: 16 })),
          /** internal: certificates from the cell's CA (default); acme: Let's Encrypt for a public domain. */
          tls: Type.Optional(Type.Union([Type.Literal('internal'), Type.Literal('acme')])),
          acme_email: Type.Optional(Type.String({ format: 'email', maxLength: 254 })),
          dns_port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
          /** Where the resolver forwards names outside the cell's domain (default 1.1.1.1 and 9.9.9.9). */
          dns_upstreams: Type.Optional(Type.Array(Ipv4(), { minItems: 1, maxItems: 8 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type CellYaml = Static<typeof CellYamlSchema>;

export interface CellConfig {
  port: number;
  host: string;
  dataDir: string;
  dbFile: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  trustProxy: boolean;
  http: { allowedHosts: string[]; listenOnWireguard: boolean };
  session: { idleMs: number; absoluteMs: number };
  rateLimit: { apiPerMinute: number; loginFailures: number; loginWindowMs: number };
  health: { intervalMs: number; keep: number };
  audit: { retentionDays: number | null };
  wireguard: {
    interface: string;
    mode: 'auto' | 'kernel' | 'userspace' | 'off';
    netns: string | null;
    /** Interval of the drift check (live interface vs database); 0 = off. */
    driftCheckMs: number;
    keepUpOnStop: boolean;
    forwardBetweenPeers: boolean;
  };
  cells: { syncPort: number; retryMaxMs: number };
  store: {
    catalogDir: string;
    engineSocket: string | null;
    imageVerification: 'enforce' | 'warn' | 'off';
    /** Host addresses service ports with `host` are published on (cell.yaml store.publish_address). */
    publishAddresses: string[];
    /** publish_address was not set: the WireGuard address is added while the tunnel is up. */
    publishOnTunnel: boolean;
    /** Keys to trust from files (absolute paths), each once: cell.yaml store.trusted_keys. */
    trustedKeys: Array<{ name: string; file: string }>;
  };
  reach: {
    mode: 'auto' | 'off';
    httpsPort: number;
    lanAddresses: string[];
    tls: 'internal' | 'acme';
    acmeEmail: string | null;
    dnsPort: number;
    dnsUpstreams: string[];
  };
  /** The built web console (packages/console/dist); PIC_CONSOLE_DIR overrides it. */
  consoleDir: string;
}

/** The store's default catalog: this repository's services-index/ and manifests/ (dist/config.js → repo root). */
export const DEFAULT_CATALOG_DIR = resolve(import.meta.dirname, '..', '..', '..');

/** The built web console, beside the cell's package (dist/config.js or bundle/main.js → packages/console/dist). */
export const DEFAULT_CONSOLE_DIR = resolve(import.meta.dirname, '..', '..', 'console', 'dist');

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function envPort(value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  if (!/^\d+$/.test(value) || Number(value) > 65535)
    throw new ConfigError(`PIC_PORT must be a port number 0-65535, got "${value}"`);
  return Number(value);
}

/** PIC_WIREGUARD_MODE overrides cell.yaml (the test harness sets "off" so parallel cells do not fight over one interface). */
function wireguardMode(value: string | undefined): CellConfig['wireguard']['mode'] | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'auto' || value === 'kernel' || value === 'userspace' || value === 'off') return value;
  throw new ConfigError(`PIC_WIREGUARD_MODE must be auto, kernel, userspace or off, got "${value}"`);
}

/** PIC_REACH_MODE overrides cell.yaml (the test harness sets "off": Caddy and the resolver outlive the cell). */
function publishAddresses(value: string | string[] | undefined): string[] {
  if (value === undefined) return ['127.0.0.1'];
  return typeof value === 'string' ? [value] : [...value];
}

function reachMode(value: string | undefined): CellConfig['reach']['mode'] | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'auto' || value === 'off') return value;
  throw new ConfigError(`PIC_REACH_MODE must be auto or off, got "${value}"`);
}

/** env + optional cell.yaml → typed, validated config. Throws ConfigError naming the bad key. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): CellConfig {
  const dataDir = resolve(env['PIC_DATA_DIR'] || './data');
  const yamlFile = join(dataDir, 'cell.yaml');
  let yaml: CellYaml = {};
  if (existsSync(yamlFile)) {
    let parsed: unknown;
    try {
      parsed = parseYaml(readFileSync(yamlFile, 'utf8'));
    } catch (err) {
      throw new ConfigError(`${yamlFile}: not valid YAML: ${(err as Error).message}`);
    }
    parsed ??= {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new ConfigError(
        `${yamlFile}: the top level must be a mapping of keys (like "log_level: info"), not a ${Array.isArray(parsed) ? 'list' : typeof parsed}`,
      );
    }
    const validate = compile(CellYamlSchema);
    if (!validate(parsed)) {
      const problems = Object.entries(fieldErrors(validate.errors)).map(([k, v]) => `"${k}" ${v}`);
      throw new ConfigError(`${yamlFile}: ${problems.join('; ')}`);
    }
    yaml = parsed;
    const badHost = (yaml.http?.allowed_hosts ?? []).findIndex((h) => normalHost(h) === undefined);
    if (badHost !== -1) {
      throw new ConfigError(
        `${yamlFile}: "http.allowed_hosts.${badHost}" must be a DNS name (like cell.example.net) or an IP address, ` +
          `got ${JSON.stringify(yaml.http!.allowed_hosts![badHost])}`,
      );
    }
  }
  return {
    port: envPort(env['PIC_PORT'], 3000),
    host: env['PIC_HOST'] || '127.0.0.1',
    dataDir,
    dbFile: join(dataDir, 'cell.db'),
    logLevel: yaml.log_level ?? 'info',
    trustProxy: yaml.trust_proxy ?? false,
    http: {
      allowedHosts: (yaml.http?.allowed_hosts ?? []).map((h) => normalHost(h)!),
      listenOnWireguard: yaml.http?.listen_on_wireguard ?? true,
    },
    session: {
      idleMs: (yaml.session?.idle_minutes ?? 120) * 60_000,
      absoluteMs: (yaml.session?.absolute_hours ?? 24) * 3_600_000,
    },
    rateLimit: {
      apiPerMinute: yaml.rate_limit?.api_per_minute ?? 600,
      loginFailures: yaml.rate_limit?.login_failures ?? 10,
      loginWindowMs: (yaml.rate_limit?.login_window_minutes ?? 15) * 60_000,
    },
    health: {
      intervalMs: (yaml.health?.interval_seconds ?? 60) * 1000,
      keep: yaml.health?.keep ?? 1440,
    },
    audit: { retentionDays: yaml.audit?.retention_days ?? null },
    wireguard: {
      interface: yaml.wireguard?.interface ?? 'pic0',
      mode: wireguardMode(env['PIC_WIREGUARD_MODE']) ?? yaml.wireguard?.mode ?? 'auto',
      netns: yaml.wireguard?.netns ?? null,
      driftCheckMs: (yaml.wireguard?.drift_check_seconds ?? 300) * 1000,
      keepUpOnStop: yaml.wireguard?.keep_up_on_stop ?? true,
      forwardBetweenPeers: yaml.wireguard?.forward_between_peers ?? true,
    },
    cells: { syncPort: yaml.cells?.sync_port ?? 7947, retryMaxMs: (yaml.cells?.retry_max_seconds ?? 60) * 1000 },
    store: {
      catalogDir: yaml.store?.catalog_dir ? resolve(dataDir, yaml.store.catalog_dir) : DEFAULT_CATALOG_DIR,
      engineSocket: yaml.store?.engine_socket ?? null,
      imageVerification: yaml.store?.image_verification ?? 'enforce',
      publishAddresses: publishAddresses(yaml.store?.publish_address),
      publishOnTunnel: yaml.store?.publish_address === undefined,
      trustedKeys: (yaml.store?.trusted_keys ?? []).map((k) => ({ name: k.name, file: resolve(dataDir, k.file) })),
    },
    reach: {
      mode: reachMode(env['PIC_REACH_MODE']) ?? yaml.reach?.mode ?? 'auto',
      httpsPort: yaml.reach?.https_port ?? 443,
      lanAddresses: yaml.reach?.lan_addresses ?? [],
      tls: yaml.reach?.tls ?? 'internal',
      acmeEmail: yaml.reach?.acme_email ?? null,
      dnsPort: yaml.reach?.dns_port ?? 53,
      dnsUpstreams: yaml.reach?.dns_upstreams ?? ['1.1.1.1', '9.9.9.9'],
    },
    consoleDir: env['PIC_CONSOLE_DIR'] ? resolve(env['PIC_CONSOLE_DIR']) : DEFAULT_CONSOLE_DIR,
  };
}
