export const SESSION_COOKIE = 'pic.sid';

/** A small HTTP client with a cookie jar and the CSRF header, speaking to a running cell. */
export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export class ApiClient {
  readonly cookies = new Map<string, string>();
  csrf: string | undefined;

  constructor(readonly baseUrl: string) {}

  /**
   * A second client holding a copy of this one's cookies and CSRF token (the same session, a
   * different jar), optionally aimed at another URL (the same data dir served by a new process).
   */
  clone(baseUrl = this.baseUrl): ApiClient {
    const copy = new ApiClient(baseUrl);
    for (const [k, v] of this.cookies) copy.cookies.set(k, v);
    copy.csrf = this.csrf;
    return copy;
  }

  /** The session cookie's value (`pic.sid`), if the jar holds one. */
  get sessionId(): string | undefined {
    return this.cookies.get(SESSION_COOKIE);
  }

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async request<T = any>(
    method: string,
    path: string,
    opts: { json?: unknown; rawBody?: string | Uint8Array; headers?: Record<string, string>; csrf?: boolean } = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...opts.headers };
    if (this.cookies.size) headers['cookie'] = this.cookieHeader();
    let body: string | Uint8Array | undefined;
    if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      headers['content-type'] ??= 'application/json';
    } else if (opts.rawBody !== undefined) {
      body = opts.rawBody;
    }
    const isWrite = !['GET', 'HEAD'].includes(method);
    if (isWrite && this.csrf && opts.csrf !== false) headers['x-csrf-token'] ??= this.csrf;
    const res = await fetch(this.baseUrl + path, {
      method,
      headers,
      body: body as BodyInit | undefined,
      redirect: 'manual',
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const text = await res.text();
    let parsed: any;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, body: parsed as T, text };
  }

  get<T = any>(path: string, headers?: Record<string, string>) {
    return this.request<T>('GET', path, { headers });
  }
  post<T = any>(path: string, json?: unknown, opts: { csrf?: boolean; headers?: Record<string, string> } = {}) {
    return this.request<T>('POST', path, { json: json ?? {}, ...opts });
  }
  put<T = any>(path: string, json?: unknown, opts: { csrf?: boolean; headers?: Record<string, string> } = {}) {
    return this.request<T>('PUT', path, { json: json ?? {}, ...opts });
  }
  delete<T = any>(path: string, opts: { csrf?: boolean; headers?: Record<string, string> } = {}) {
    return this.request<T>('DELETE', path, opts);
  }

  async login(username: string, password: string): Promise<ApiResponse> {
    const res = await this.post('/api/auth/login', { username, password });
    if (res.status === 200) await this.fetchCsrf();
    return res;
  }

  async fetchCsrf(): Promise<string> {
    const res = await this.get('/api/auth/csrf-token');
    if (res.status !== 200) throw new Error(`csrf-token: ${res.status} ${res.text}`);
    this.csrf = res.body.token;
    return this.csrf!;
  }
}

export const ADMIN = { username: 'admin', password: 'correct horse battery staple' };
export const IDENTITY = { cell_name: 'home', domain: 'home.example.org' };
export const NETWORK = { wireguard_port: 51820, subnet: '10.8.0.0/24', endpoint: 'vpn.example.org:51820' };

/** Runs the whole wizard; the client ends signed in as the admin, with its CSRF token. */
export async function completeSetup(client: ApiClient): Promise<void> {
  for (const body of [ADMIN, IDENTITY, NETWORK, {}]) {
    const res = await client.post('/api/setup/step', body);
    if (res.status !== 200) throw new Error(`setup step failed: ${res.status} ${res.text}`);
  }
  const done = await client.post('/api/setup/complete');
  if (done.status !== 200) throw new Error(`setup complete failed: ${done.status} ${done.text}`);
  await client.fetchCsrf();
}
