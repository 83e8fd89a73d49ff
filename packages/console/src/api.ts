// The one way the console talks to the cell: same origin, the session cookie, X-CSRF-Token on
// writes, and every failure turned into an ApiError carrying the API's error shape.

export interface ErrorShape {
  ok: false;
  error: string;
  code: string;
  fields?: Record<string, string>;
  [key: string]: unknown;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: Record<string, string> = {},
    readonly body: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

let csrfToken: string | undefined;
export const setCsrf = (token: string | undefined): void => {
  csrfToken = token;
};

/** Where a 401 or a due password change sends the browser (set by the app's router). */
let onAuthProblem: (kind: 'login' | 'change-password') => void = () => undefined;
export const setAuthProblemHandler = (fn: (kind: 'login' | 'change-password') => void): void => {
  onAuthProblem = fn;
};

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

async function fetchCsrf(): Promise<string> {
  const res = await request<{ token: string }>('GET', '/api/auth/csrf-token', undefined, { quiet: true });
  csrfToken = res.token;
  return res.token;
}

export interface RequestOptions {
  /** No redirect to the login on 401 (the caller handles it, e.g. probing who is signed in). */
  quiet?: boolean;
}

export async function request<T = Record<string, unknown>>(
  method: string,
  path: string,
  body?: unknown,
  opts: RequestOptions = {},
  retried = false,
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const needsCsrf = WRITES.has(method) && !path.startsWith('/api/auth/') && !path.startsWith('/api/setup/');
  if (needsCsrf) headers['x-csrf-token'] = csrfToken ?? (await fetchCsrf());
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch (err) {
    throw new ApiError(0, 'network_error', `The cell did not answer (${(err as Error).message}). Is it running?`);
  }
  const text = await res.text();
  let parsed: Record<string, unknown> | undefined;
  try {
    parsed = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
  } catch {
    parsed = undefined;
  }
  if (res.ok) return (parsed ?? {}) as T;
  const shape = parsed as Partial<ErrorShape> | undefined;
  const err = new ApiError(
    res.status,
    typeof shape?.code === 'string' ? shape.code : `http_${res.status}`,
    typeof shape?.error === 'string' ? shape.error : `The cell answered ${res.status} ${res.statusText}`,
    (shape?.fields as Record<string, string>) ?? {},
    parsed ?? {},
  );
  // A CSRF token from an old session: fetch the current one and try once more.
  if (err.status === 403 && err.code === 'csrf' && !retried) {
    csrfToken = undefined;
    return request<T>(method, path, body, opts, true);
  }
  if (!opts.quiet && err.status === 401) onAuthProblem('login');
  if (!opts.quiet && err.code === 'password_change_required') onAuthProblem('change-password');
  return Promise.reject(err);
}

export const api = {
  get: <T = Record<string, unknown>>(path: string, opts?: RequestOptions) => request<T>('GET', path, undefined, opts),
  post: <T = Record<string, unknown>>(path: string, body: unknown = {}, opts?: RequestOptions) =>
    request<T>('POST', path, body, opts),
  put: <T = Record<string, unknown>>(path: string, body: unknown) => request<T>('PUT', path, body),
  delete: <T = Record<string, unknown>>(path: string) => request<T>('DELETE', path),
};

/** "alice" → "alice", safe inside a path segment. */
export const seg = (s: string): string => encodeURIComponent(s);

export function query(params: Record<string, string | number | undefined | null | false>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '' && v !== false) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
