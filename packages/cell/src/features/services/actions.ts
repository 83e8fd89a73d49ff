import type { AccountAction, AccountListAction, HttpAction, ServiceManifest, TemplateValues } from '@pic/manifest';
import { manifestLib, type ManifestLib } from '../store/manifest-lib.js';
import type { ContainerRuntime, ExecResult } from '@pic/runtime';
import { describeError, loopbackPort, objectNames } from '../store/engine.js';

const DEFAULT_ACTION_TIMEOUT_S = 30;
const MAX_REPLY_BYTES = 1024 * 1024;

/** An account action that did not succeed inside the service; the message never carries a secret. */
export class ServiceActionError extends Error {
  override readonly name = 'ServiceActionError';
  /** The command's exit status, when a command ran and failed (3: it refused the request, see pic-account). */
  constructor(
    message: string,
    readonly exitCode?: number,
  ) {
    super(message);
  }
}

/** Replaces every secret value (password, service secrets) in text meant for logs and errors. */
export function scrub(text: string, values: TemplateValues): string {
  const secrets = [values.password, ...Object.values(values.secrets ?? {})].filter(
    (s): s is string => typeof s === 'string' && s.length >= 4,
  );
  let out = text;
  for (const s of secrets) out = out.split(s).join('***');
  return out.length > 300 ? `${out.slice(0, 300)}…` : out;
}

/** Fills a template whose result goes into a URL: each placeholder's value is URL-encoded, the rest kept. */
export function renderUrlTemplate(
  template: string,
  values: TemplateValues,
  renderTemplate: ManifestLib['renderTemplate'],
): string {
  const enc = (v: string | undefined) => (v === undefined ? undefined : encodeURIComponent(v));
  const secrets = Object.fromEntries(Object.entries(values.secrets ?? {}).map(([k, v]) => [k, encodeURIComponent(v)]));
  return renderTemplate(template, {
    ...(values.username !== undefined ? { username: enc(values.username)! } : {}),
    ...(values.password !== undefined ? { password: enc(values.password)! } : {}),
    ...(values.domain !== undefined ? { domain: enc(values.domain)! } : {}),
    ...(values.subdomain !== undefined ? { subdomain: enc(values.subdomain)! } : {}),
    secrets,
  });
}

/** The base URL the cell reaches a container's tcp port at (its loopback publication). */
export async function containerBaseUrl(
  runtime: ContainerRuntime,
  cellId: string,
  serviceId: string,
  container: string,
  port: number,
): Promise<string> {
  const info = await runtime.inspectContainer(objectNames(cellId, serviceId).container(container));
  if (!info.running)
    throw new ServiceActionError(`container "${container}" of ${serviceId} is ${info.state}, not running`);
  const hostPort = loopbackPort(info, port);
  if (!hostPort)
    throw new ServiceActionError(`port ${port}/tcp of container "${container}" is not published for the cell`);
  return `http://127.0.0.1:${hostPort}`;
}

async function readLimited(res: Response): Promise<string> {
  const buf = Buffer.from(await res.arrayBuffer());
  return buf.subarray(0, MAX_REPLY_BYTES).toString('utf8');
}

async function runHttp(
  runtime: ContainerRuntime,
  cellId: string,
  manifest: ServiceManifest,
  h: HttpAction,
  values: TemplateValues,
  timeoutMs: number,
  what: string,
): Promise<string> {
  const base = await containerBaseUrl(runtime, cellId, manifest.id, h.container, h.port);
  const { renderTemplate } = await manifestLib();
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(h.headers ?? {})) headers[k] = renderTemplate(v, values);
  let body: string | undefined;
  if (h.body) {
    const fields: Record<string, string> = {};
    for (const [k, v] of Object.entries(h.body.fields)) fields[k] = renderTemplate(v, values);
    // The cell encodes each filled field itself: a value cannot break out of its field.
    if (h.body.encoding === 'form') {
      body = new URLSearchParams(fields).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else {
      body = JSON.stringify(fields);
      headers['content-type'] = 'application/json';
    }
  }
  let res: Response;
  try {
    res = await fetch(base + renderUrlTemplate(h.path, values, renderTemplate), {
      method: h.method,
      headers,
      body,
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'manual',
    });
  } catch (err) {
    throw new ServiceActionError(
      `${what}: ${h.method} to container "${h.container}" failed: ${scrub(describeError(err), values)}`,
    );
  }
  const text = await readLimited(res);
  if (res.status < 200 || res.status >= 300)
    throw new ServiceActionError(
      `${what}: container "${h.container}" answered ${res.status}: ${scrub(text.trim(), values)}`,
    );
  return text;
}

/**
 * Runs one account action (create, delete or list) of the manifest's provisioning contract:
 * `exec` through the engine (argv array, no shell; the password typically on stdin) or `http` to
 * the container's admin endpoint. Resolves with the output; throws ServiceActionError.
 */
export async function runAccountAction(
  runtime: ContainerRuntime,
  cellId: string,
  manifest: ServiceManifest,
  action: AccountAction | AccountListAction,
  values: TemplateValues,
  what: string,
): Promise<string> {
  const timeoutMs = (action.timeoutSeconds ?? DEFAULT_ACTION_TIMEOUT_S) * 1000;
  if (action.http) return runHttp(runtime, cellId, manifest, action.http, values, timeoutMs, what);
  const e = action.exec;
  if (!e) throw new ServiceActionError(`${what}: the manifest gives neither exec nor http`);
  const { renderTemplate } = await manifestLib();
  const argv = e.argv.map((a) => renderTemplate(a, values));
  const stdin = e.stdin === undefined ? undefined : renderTemplate(e.stdin, values);
  let result: ExecResult;
  try {
    result = await runtime.exec(objectNames(cellId, manifest.id).container(e.container), argv, {
      timeoutMs,
      ...(stdin !== undefined ? { stdin } : {}),
    });
  } catch (err) {
    throw new ServiceActionError(
      `${what}: exec ${e.argv[0]} in container "${e.container}" failed: ${scrub(describeError(err), values)}`,
    );
  }
  if (result.exitCode !== 0) {
    const said = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-3).join(' / ');
    // Only the command's name: a manifest may put a secret in a later argument.
    throw new ServiceActionError(
      `${what}: ${e.argv[0]} in container "${e.container}" exited with ${result.exitCode}${said ? `: ${scrub(said, values)}` : ''}`,
    );
  }
  return result.stdout;
}

/** What a `:name` argument of an exec route may be filled with: the same names accounts have. */
const EXEC_ARG = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** The argv of an exec route: `:name` items filled from `args`; missing names and bad values go to `problems`. */
export function execRouteArgv(
  argv: readonly string[],
  args: (name: string) => unknown,
): { argv: string[]; problems: Record<string, string> } {
  const problems: Record<string, string> = {};
  const out = argv.map((a) => {
    const m = /^:([a-z][a-zA-Z0-9]*)$/.exec(a);
    if (!m) return a;
    const value = args(m[1]!);
    if (typeof value !== 'string') problems[m[1]!] = 'is required (a string)';
    else if (!EXEC_ARG.test(value)) problems[m[1]!] = 'must be 1-64 of a-z 0-9 . _ -, starting with a letter or digit';
    return typeof value === 'string' ? value : '';
  });
  return { argv: out, problems };
}

/**
 * Runs an exec route's command (argv already filled, no shell) and reads its output as the route
 * says. Throws ServiceActionError when it fails or its output is not what the manifest promised.
 */
export async function runExecRoute(
  runtime: ContainerRuntime,
  cellId: string,
  manifest: ServiceManifest,
  exec: { container: string; argv: readonly string[]; output: 'json' | 'lines'; timeoutSeconds?: number },
  argv: string[],
  values: TemplateValues,
): Promise<unknown> {
  const { renderTemplate } = await manifestLib();
  const filled = argv.map((a, i) => (a === exec.argv[i] ? renderTemplate(a, values) : a));
  let result: ExecResult;
  try {
    const timeoutMs = (exec.timeoutSeconds ?? DEFAULT_ACTION_TIMEOUT_S) * 1000;
    result = await runtime.exec(objectNames(cellId, manifest.id).container(exec.container), filled, { timeoutMs });
  } catch (err) {
    const why = scrub(describeError(err), values);
    throw new ServiceActionError(`exec ${exec.argv[0]} in container "${exec.container}" failed: ${why}`);
  }
  if (result.exitCode !== 0) {
    const said = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-3).join(' / ');
    const tail = said ? `: ${scrub(said, values)}` : '';
    throw new ServiceActionError(
      `${exec.argv[0]} in container "${exec.container}" exited with ${result.exitCode}${tail}`,
      result.exitCode,
    );
  }
  if (exec.output === 'lines')
    return result.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
  try {
    return JSON.parse(result.stdout);
  } catch {
    throw new ServiceActionError(`${exec.argv[0]} in container "${exec.container}" did not answer JSON`);
  }
}

/** Usernames from a list action's output. */
export function parseAccountList(output: string, format: AccountListAction['output']): string[] {
  if (format === 'json') {
    let data: unknown;
    try {
      data = JSON.parse(output);
    } catch {
      throw new ServiceActionError('the account list is not JSON');
    }
    if (!Array.isArray(data) || data.some((u) => typeof u !== 'string'))
      throw new ServiceActionError('the account list is not a JSON array of strings');
    return data as string[];
  }
  return output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}
