import { parseDocument } from 'yaml';
import { compile, fieldErrors, joinPath } from './ajv.js';
import { ManifestError, type FieldErrors } from './errors.js';
import { ServiceManifestSchema, type ContainerSpec, type ServiceManifest } from './schema.js';
import { scanTemplate, type PlaceholderName } from './templates.js';

/** API areas of the cell itself: a service with one of these ids would shadow them under /api/<id>. */
export const RESERVED_IDS: readonly string[] = [
  'auth',
  'users',
  'setup',
  'health',
  'status',
  'config',
  'audit',
  'vault',
  'peers',
  'peer',
  'wireguard',
  'store',
  'services',
  'connectivity',
  'network',
  'dns',
  'ntp',
  'routing',
  'caddy',
  'containers',
  'logs',
  'cells',
  'backup',
];

/** The cell answers GET /api/<id>/status itself, installed or not, so a manifest cannot claim it. */
export const RESERVED_ROUTE_PATHS: readonly string[] = ['/status'];

/** Environment variable names that announce a secret; their value must come from the vault. */
const SECRET_ENV_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|(^|_)KEY$|PRIVATE_KEY|API_KEY)/i;
/** …_FILE, …_PATH, …_DIR name where a secret lives, not the secret (Docker's *_PASSWORD_FILE convention). */
const SECRET_LOCATION_NAME = /_(FILE|PATH|DIR)$/i;
const WHOLE_SECRET_PLACEHOLDER = /^\{\{secret:[a-z][a-z0-9-]{0,62}\}\}$/;

/** The largest manifest read; real ones are a few kB. */
export const MAX_MANIFEST_BYTES = 256 * 1024;

/**
 * Reads a manifest's YAML into plain JSON data, without validating it. This is what gets
 * canonicalized and hashed, so it runs before the schema (the digest is checked first).
 */
export function readManifestYaml(text: string | Uint8Array, subject = 'manifest'): unknown {
  const source = typeof text === 'string' ? text : Buffer.from(text).toString('utf8');
  if (Buffer.byteLength(source) > MAX_MANIFEST_BYTES) {
    throw new ManifestError(subject, { '(document)': `is larger than ${MAX_MANIFEST_BYTES} bytes` });
  }
  // YAML 1.2 core schema: no implicit dates or other non-JSON types; duplicate keys and aliases refused.
  const doc = parseDocument(source, { schema: 'core', uniqueKeys: true, prettyErrors: false, version: '1.2' });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) {
    const where = problem.linePos?.[0] ? ` (line ${problem.linePos[0].line}, column ${problem.linePos[0].col})` : '';
    throw new ManifestError(subject, { '(document)': `is not valid YAML: ${problem.message.split('\n')[0]}${where}` });
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 0 });
  } catch (err) {
    throw new ManifestError(subject, { '(document)': `is not usable YAML: ${(err as Error).message}` });
  }
  assertJsonTree(value, subject);
  return value;
}

/** Parses and validates a YAML manifest. Errors name each bad field by its path, e.g. `containers.0.image`. */
export function parseManifest(text: string | Uint8Array, subject = 'manifest'): ServiceManifest {
  return validateManifest(readManifestYaml(text, subject), subject);
}

/** Validates parsed manifest data against the schema and the cross-field rules. */
export function validateManifest(data: unknown, subject = 'manifest'): ServiceManifest {
  const validate = compile(ServiceManifestSchema);
  if (!validate(data)) throw new ManifestError(subject, fieldErrors(validate.errors));
  const problems = manifestRuleErrors(data);
  if (Object.keys(problems).length > 0) throw new ManifestError(subject, problems);
  return data;
}

/**
 * Host ports no service may publish, whatever cell it runs on: SSH, DNS, and HTTP(S) (the cell's
 * reverse proxy). The ports a particular cell uses (its WireGuard and API ports) are refused when
 * it installs (see the cell's store), since a manifest cannot know them.
 */
export const RESERVED_HOST_PORTS: ReadonlySet<number> = new Set([22, 53, 80, 443]);
const RESERVED_HOST_PORTS_TEXT = '22 SSH, 53 DNS, 80 and 443 HTTP(S)';

/** The rules JSON Schema cannot say: references between fields, uniqueness, placeholders. */
export function manifestRuleErrors(m: ServiceManifest): FieldErrors {
  const errors: FieldErrors = {};
  const fail = (path: string, reason: string) => {
    errors[path] ??= reason;
  };

  if (RESERVED_IDS.includes(m.id)) fail('id', `is reserved for the cell's own API (/api/${m.id})`);

  const containers = new Map<string, ContainerSpec>();
  const hostPorts = new Map<string, string>();
  const usedSecrets = new Set<string>();
  m.containers.forEach((c, i) => {
    const at = `containers.${i}`;
    if (containers.has(c.name)) fail(`${at}.name`, `repeats container name "${c.name}"`);
    containers.set(c.name, c);

    const seenPorts = new Set<string>();
    (c.ports ?? []).forEach((p, j) => {
      const key = `${p.container}/${p.protocol}`;
      if (seenPorts.has(key)) fail(`${at}.ports.${j}`, `repeats port ${key}`);
      seenPorts.add(key);
      if (p.host !== undefined) {
        if (RESERVED_HOST_PORTS.has(p.host)) {
          fail(
            `${at}.ports.${j}.host`,
            `is reserved for the cell's host (${RESERVED_HOST_PORTS_TEXT}); publish on another port`,
          );
        }
        const hostKey = `${p.host}/${p.protocol}`;
        const other = hostPorts.get(hostKey);
        if (other) fail(`${at}.ports.${j}.host`, `publishes host port ${hostKey}, already published by ${other}`);
        hostPorts.set(hostKey, `${at}.ports.${j}`);
      }
    });

    const seenPaths = new Set<string>();
    (c.volumes ?? []).forEach((v, j) => {
      if (seenPaths.has(v.path)) fail(`${at}.volumes.${j}.path`, `mounts a second volume at ${v.path}`);
      seenPaths.add(v.path);
    });

    for (const [name, value] of Object.entries(c.env ?? {})) {
      const path = `${at}.env.${name}`;
      checkTemplate(path, value, ['domain', 'subdomain'], true);
      if (SECRET_ENV_NAME.test(name) && !SECRET_LOCATION_NAME.test(name) && !WHOLE_SECRET_PLACEHOLDER.test(value)) {
        fail(path, 'names a secret, so its value must be exactly one {{secret:NAME}} placeholder (no secrets inline)');
      }
    }

    const hc = c.healthcheck;
    if ((hc.exec === undefined) === (hc.http === undefined))
      fail(`${at}.healthcheck`, 'needs exactly one of exec and http');
    if (hc.http) checkPort(`${at}.healthcheck.http.port`, c.name, hc.http.port);
    if (hc.timeoutSeconds > hc.intervalSeconds)
      fail(`${at}.healthcheck.timeoutSeconds`, 'must not exceed intervalSeconds');
    if (hc.http?.tls && !c.tls) {
      fail(`${at}.healthcheck.http.tls`, "needs the container's tls section (the certificate it serves)");
    }
  });

  const secrets = new Set<string>();
  (m.secrets ?? []).forEach((s, i) => {
    if (secrets.has(s.name)) fail(`secrets.${i}.name`, `repeats secret "${s.name}"`);
    secrets.add(s.name);
  });
  const web = m.web;
  if (web) {
    if (checkContainer('web.container', web.container)) {
      checkPort('web.port', web.container, web.port);
      const c = m.containers.find((x) => x.name === web.container);
      if (web.tls && c && !c.tls) fail('web.tls', "needs the container's tls section (the certificate it serves)");
    }
  }

  const hasAccountsCapability = m.capabilities.includes('accounts');
  if (hasAccountsCapability && !m.accounts) fail('accounts', 'is required with the accounts capability');
  if (!hasAccountsCapability && m.accounts)
    fail('capabilities', 'must include accounts when the manifest has an accounts section');
  if (m.credentials && !m.accounts)
    fail('credentials', "needs an accounts section: connection info is filled from a peer's account");
  if (m.accounts) {
    const steps = [
      ['create', m.accounts.create, ['username', 'password', 'domain', 'subdomain']],
      ['delete', m.accounts.delete, ['username', 'domain', 'subdomain']],
      ['list', m.accounts.list, ['domain', 'subdomain']],
    ] as const;
    for (const [name, action, allowed] of steps) {
      const at = `accounts.${name}`;
      if ((action.exec === undefined) === (action.http === undefined)) {
        fail(at, 'needs exactly one of exec and http');
        continue;
      }
      if (action.exec) {
        const e = action.exec;
        checkContainer(`${at}.exec.container`, e.container);
        e.argv.forEach((arg, i) => {
          checkTemplate(`${at}.exec.argv.${i}`, arg, allowed, true);
        });
        if (e.stdin !== undefined) checkTemplate(`${at}.exec.stdin`, e.stdin, allowed, true);
      }
      if (action.http) {
        const h = action.http;
        if (checkContainer(`${at}.http.container`, h.container)) checkPort(`${at}.http.port`, h.container, h.port);
        checkTemplate(`${at}.http.path`, h.path, allowed, true);
        for (const [k, v] of Object.entries(h.headers ?? {}))
          checkTemplate(`${at}.http.headers.${k}`, v, allowed, true);
        for (const [k, v] of Object.entries(h.body?.fields ?? {}))
          checkTemplate(`${at}.http.body.fields.${k}`, v, allowed, true);
        if (h.body && (h.method === 'GET' || h.method === 'DELETE'))
          fail(`${at}.http.body`, `is not sent with ${h.method}`);
      }
    }
    const create = m.accounts.create.exec
      ? [...m.accounts.create.exec.argv, m.accounts.create.exec.stdin ?? '']
      : templatesOfHttp(m.accounts.create.http);
    if (!create.some((t) => t.includes('{{username}}')))
      fail('accounts.create', 'must pass {{username}} to the service');
    if (!create.some((t) => t.includes('{{password}}')))
      fail('accounts.create', 'must pass {{password}} to the service');
    const del = m.accounts.delete.exec ? m.accounts.delete.exec.argv : templatesOfHttp(m.accounts.delete.http);
    if (!del.some((t) => t.includes('{{username}}'))) fail('accounts.delete', 'must pass {{username}} to the service');
  }

  (m.credentials ?? []).forEach((cr, i) => {
    const at = `credentials.${i}`;
    const allowed: PlaceholderName[] = ['username', 'password', 'domain', 'subdomain'];
    checkTemplate(`${at}.host`, cr.host, allowed, false);
    checkTemplate(`${at}.username`, cr.username, allowed, false);
    checkTemplate(`${at}.password`, cr.password, allowed, false);
    if (cr.path !== undefined) checkTemplate(`${at}.path`, cr.path, allowed, false);
  });

  const routeKeys = new Set<string>();
  (m.routes ?? []).forEach((r, i) => {
    const at = `routes.${i}`;
    const key = `${r.method} ${r.path.replace(/:[a-zA-Z0-9]+/g, ':')}`;
    if (routeKeys.has(key)) fail(`${at}.path`, `repeats route ${r.method} ${r.path}`);
    routeKeys.add(key);
    if (RESERVED_ROUTE_PATHS.includes(r.path))
      fail(`${at}.path`, `is reserved: the cell answers /api/${m.id}${r.path} itself`);
    const params = routeParams(r.path);
    if (new Set(params).size !== params.length) fail(`${at}.path`, 'repeats a parameter name');

    if (r.handler === 'proxy') {
      if (!r.proxy) fail(`${at}.proxy`, 'is required when handler is proxy');
      else {
        if (checkContainer(`${at}.proxy.container`, r.proxy.container))
          checkPort(`${at}.proxy.port`, r.proxy.container, r.proxy.port);
        checkTemplate(`${at}.proxy.path`, r.proxy.path, [], false);
        for (const p of routeParams(r.proxy.path)) {
          if (!params.includes(p)) fail(`${at}.proxy.path`, `uses :${p}, which the route path does not define`);
        }
        for (const [k, v] of Object.entries(r.proxy.headers ?? {}))
          checkTemplate(`${at}.proxy.headers.${k}`, v, ['domain', 'subdomain'], true);
      }
      return;
    }
    if (r.proxy) fail(`${at}.proxy`, `is only for handler proxy, not ${r.handler}`);
    if (r.handler === 'exec') {
      if (!r.exec) fail(`${at}.exec`, 'is required when handler is exec');
      else {
        checkContainer(`${at}.exec.container`, r.exec.container);
        const bodyAllowed = r.method === 'POST' || r.method === 'PUT' || r.method === 'PATCH';
        r.exec.argv.forEach((arg, j) => {
          const param = /^:([a-z][a-zA-Z0-9]*)$/.exec(arg);
          if (param && !params.includes(param[1]!) && !bodyAllowed) {
            const why = `uses :${param[1]}, which the route path does not define (and ${r.method} has no body)`;
            fail(`${at}.exec.argv.${j}`, why);
          } else if (!param) checkTemplate(`${at}.exec.argv.${j}`, arg, ['domain', 'subdomain'], true);
        });
      }
      return;
    }
    if (r.exec) fail(`${at}.exec`, `is only for handler exec, not ${r.handler}`);
    if (!m.accounts) fail(`${at}.handler`, `${r.handler} needs the service's accounts section`);
    const wants: Record<string, { method: string; username: boolean }> = {
      'accounts.list': { method: 'GET', username: false },
      'accounts.create': { method: 'POST', username: false },
      'accounts.delete': { method: 'DELETE', username: true },
      'accounts.credentials': { method: 'GET', username: true },
      'accounts.rotate': { method: 'POST', username: true },
    };
    const want = wants[r.handler]!;
    if (r.method !== want.method) fail(`${at}.method`, `must be ${want.method} for ${r.handler}`);
    if (want.username && !params.includes('username')) fail(`${at}.path`, `must contain :username for ${r.handler}`);
    if (!want.username && params.length > 0) fail(`${at}.path`, `takes no parameters for ${r.handler}`);
  });

  for (const name of usedSecrets) {
    if (!secrets.has(name)) fail('secrets', `must declare "${name}", used as {{secret:${name}}}`);
  }
  return errors;

  function checkContainer(path: string, name: string): boolean {
    if (containers.has(name)) return true;
    fail(path, `names container "${name}", which the manifest does not define`);
    return false;
  }

  function checkPort(path: string, containerName: string, port: number): void {
    const c = containers.get(containerName);
    if (c && !(c.ports ?? []).some((p) => p.container === port && p.protocol === 'tcp')) {
      fail(path, `is not a tcp port declared by container "${containerName}"`);
    }
  }

  function checkTemplate(
    path: string,
    template: string,
    allowed: readonly PlaceholderName[],
    secretsAllowed: boolean,
  ): void {
    const { placeholders, unknown } = scanTemplate(template);
    if (unknown.length > 0) {
      fail(path, `has an unknown placeholder ${unknown[0]!.text}`);
      return;
    }
    for (const p of placeholders) {
      if (p.kind === 'secret') {
        if (secretsAllowed) usedSecrets.add(p.name);
        else fail(path, 'may not use {{secret:…}} placeholders');
      } else if (!allowed.includes(p.name)) {
        fail(
          path,
          `may not use {{${p.name}}}${allowed.length ? ` (allowed: ${allowed.map((a) => `{{${a}}}`).join(', ')})` : ''}`,
        );
      }
    }
  }
}

function templatesOfHttp(
  h: { path: string; headers?: Record<string, string>; body?: { fields: Record<string, string> } } | undefined,
): string[] {
  if (!h) return [];
  return [h.path, ...Object.values(h.headers ?? {}), ...Object.values(h.body?.fields ?? {})];
}

/** `:name` parameters of a route or proxy path, in order. */
export function routeParams(path: string): string[] {
  return [...path.matchAll(/\/:([a-zA-Z][a-zA-Z0-9]*)/g)].map((m) => m[1]!);
}

/** YAML maps may have non-string keys; JSON cannot, so refuse them rather than stringify silently. */
function assertJsonTree(value: unknown, subject: string, path = ''): void {
  if (value instanceof Map || value instanceof Set || value instanceof Date || value instanceof Uint8Array) {
    throw new ManifestError(subject, { [path || '(document)']: 'is not plain JSON data' });
  }
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new ManifestError(subject, { [path || '(document)']: `is ${value}, which JSON cannot represent` });
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      assertJsonTree(v, subject, joinPath(path, i));
    });
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) assertJsonTree(v, subject, joinPath(path, k));
  }
}
