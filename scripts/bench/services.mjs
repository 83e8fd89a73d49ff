// Bench section for issue 12 (first-party services): from POST /api/store/install to healthy for
// calendar, files and email with their images present, provisioning one account, and one IMAP login
// plus fetch of the newest message with the credentials the cell hands out.
//
// It runs its own cell on the tests' private engine (packages/runtime testing: started or joined),
// builds the images with the cached first-party builder (a no-op when they exist), and installs them
// from a catalog signed with a throwaway key that pins the images just built, with host ports moved
// to free ones. Needs root, debootstrap and a docker CLI; otherwise the section says why and skips.
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createServer } from 'node:net';
import { cellArgs, median, spawnNode, tempDir, waitForOutput } from './lib.mjs';

export const name = 'services';
export const title =
  'First-party services (issue 12): install to healthy with the image present, provisioning one account, ' +
  'IMAP login + fetch newest';

const SERVICES = ['calendar', 'files', 'email'];
const USERS_PATH = { calendar: '/api/calendar/users', files: '/api/files/users', email: '/api/email/mailboxes' };
const ADMIN = { username: 'admin', password: 'bench-password-0123456789' };
const DOMAIN = 'bench.example.org';
const LISTENING = /PIC cell listening on (http:\/\/\S+)/;
const ACCOUNTS = 7;
const IMAP_ROUNDS = 15;

/** A free port for a host publication, below the ephemeral range the engine takes its own from. */
async function freePort() {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/** A session client for the cell's API (cookie + CSRF), JSON in and out. */
function client(baseUrl) {
  const state = { cookie: undefined, csrf: undefined };
  const call = async (method, path, json) => {
    const headers = {};
    if (state.cookie) headers.cookie = state.cookie;
    if (method !== 'GET' && state.csrf) headers['x-csrf-token'] = state.csrf;
    if (json !== undefined) headers['content-type'] = 'application/json';
    const t0 = performance.now();
    const res = await fetch(new URL(path, baseUrl), {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
    });
    const text = await res.text();
    const ms = performance.now() - t0;
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('pic.sid='));
    if (cookie) state.cookie = cookie.split(';')[0];
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    return { status: res.status, body, text, ms };
  };
  const must = async (method, path, json, want = 200) => {
    const res = await call(method, path, json);
    if (res.status !== want) throw new Error(`${method} ${path} → ${res.status} ${res.text.slice(0, 300)}`);
    return res;
  };
  return { state, call, must };
}

export async function run(ctx) {
  const { root, cleanup, log } = ctx;
  const imp = (...p) => import(pathToFileURL(join(root, ...p)).href);
  const builder = await imp('scripts', 'images', 'first-party', 'build.mjs');
  const why = builder.buildProblem();
  if (why) return { rows: [{ label: 'services', text: `skipped: ${why}` }], notes: [], json: { skipped: why } };
  const { startDockerEngine } = await imp('packages', 'runtime', 'dist', 'testing', 'index.js');
  const m = await imp('packages', 'manifest', 'dist', 'index.js');
  const engine = await startDockerEngine();
  if (engine.skip)
    return {
      rows: [{ label: 'services', text: `skipped: ${engine.skip}` }],
      notes: [],
      json: { skipped: engine.skip },
    };
  cleanup.add(() => engine.stop());

  const images = {};
  for (const id of SERVICES) {
    log(`services: building (or finding) the ${id} image`);
    images[id] = await builder.buildFirstPartyImage(id, { dockerHost: engine.dockerHost, log });
  }

  // A catalog signed by a throwaway key, pinning the images just built, host ports moved to free ones.
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const catalog = tempDir(cleanup, 'pic-bench-services-catalog-');
  mkdirSync(join(catalog.dir, 'manifests'));
  mkdirSync(join(catalog.dir, 'services-index'));
  const ports = {};
  const manifests = [];
  for (const id of SERVICES) {
    const man = m.parseManifest(readFileSync(join(root, 'manifests', `${id}.yaml`), 'utf8'), `manifests/${id}.yaml`);
    for (const c of man.containers) {
      c.image = `${images[id].image}@${images[id].id}`;
      c.signature = await m.signImage(c.image, key.privateKey);
      for (const p of c.ports ?? [])
        if (p.host !== undefined) p.host = ports[`${id}:${p.container}`] = await freePort();
    }
    for (const cr of man.credentials ?? []) if (ports[`${id}:${cr.port}`]) cr.port = ports[`${id}:${cr.port}`];
    manifests.push(man);
    writeFileSync(join(catalog.dir, 'manifests', `${id}.yaml`), JSON.stringify(man));
  }
  const index = {
    version: 1,
    expires: new Date(Date.now() + 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    services: manifests.map((x) => ({
      id: x.id,
      version: x.version,
      manifest: `manifests/${x.id}.yaml`,
      digest: m.manifestDigest(x),
    })),
  };
  const signed = await m.signIndex(index, key.privateKey);
  writeFileSync(join(catalog.dir, 'services-index', 'index.json'), JSON.stringify(index));
  writeFileSync(join(catalog.dir, 'services-index', 'index.sig.json'), JSON.stringify(signed.bundle));

  const data = tempDir(cleanup, 'pic-bench-services-');
  writeFileSync(
    join(data.dir, 'cell.yaml'),
    `store:\n  catalog_dir: ${catalog.dir}\n  engine_socket: ${engine.socketPath}\n` +
      'rate_limit:\n  api_per_minute: 10000000\n',
  );
  const cell = spawnNode(cleanup, cellArgs(root), {
    env: { PIC_PORT: '0', PIC_HOST: '127.0.0.1', PIC_DATA_DIR: data.dir, PIC_WIREGUARD_MODE: 'off' },
  });
  const [, url] = await waitForOutput(cell, LISTENING, 60_000);
  const api = client(url);
  for (const body of [
    ADMIN,
    { cell_name: 'bench', domain: DOMAIN },
    { wireguard_port: 51820, subnet: '10.97.0.0/24', endpoint: `vpn.${DOMAIN}:51820` },
    {},
  ]) {
    await api.must('POST', '/api/setup/step', body);
  }
  await api.must('POST', '/api/setup/complete', {});
  api.state.csrf = (await api.must('GET', '/api/auth/csrf-token')).body.token;
  await api.must('POST', '/api/vault/trust-keys', { name: 'bench', public_key: m.publicKeyPem(key.publicKey) }, 201);
  await api.must('POST', '/api/peers', { name: 'alice' }, 201);
  await api.must('POST', '/api/peers', { name: 'bob' }, 201);
  cleanup.add(async () => {
    for (const id of SERVICES) await api.call('POST', '/api/store/remove', { id, purge: true }).catch(() => undefined);
  });

  const rows = [];
  const json = { install_ms: {}, provision_ms: {}, imap_ms: null };
  for (const id of SERVICES) {
    log(`services: installing ${id}`);
    const res = await api.must('POST', '/api/store/install', { id, wait: true });
    if (res.body.job?.state !== 'healthy') throw new Error(`${id} did not install: ${res.text.slice(0, 300)}`);
    json.install_ms[id] = res.ms;
    rows.push({
      label: `${id}: POST /api/store/install → healthy (ms)`,
      value: res.ms,
      digits: 0,
      goal: { cmp: '<', target: 5000 },
    });
  }
  for (const id of SERVICES) {
    const times = [];
    for (let i = 0; i < ACCOUNTS; i++)
      times.push((await api.must('POST', USERS_PATH[id], { username: `bench${i}` }, 201)).ms);
    await api.must('POST', USERS_PATH[id], { peer: 'alice' }, 201);
    await api.must('POST', USERS_PATH[id], { peer: 'bob' }, 201);
    json.provision_ms[id] = median(times);
    rows.push({
      label: `${id}: provision one account (ms, median of ${ACCOUNTS})`,
      value: median(times),
      digits: 0,
      goal: { cmp: '<', target: 200 },
    });
  }

  // IMAP: alice mails bob through submission; then bob logs in and fetches the newest message, again and again.
  const ca = (await api.must('GET', '/api/vault/ca.crt')).text;
  const creds = async (peer) =>
    (await api.must('GET', `/api/peers/${peer}/service-credentials`)).body.services.find((s) => s.service === 'email')
      .credentials;
  const [, smtp] = await creds('alice');
  const [imap] = await creds('bob');
  const { default: nodemailer } = await import('nodemailer');
  const { ImapFlow } = await import('imapflow');
  const tls = { ca, servername: smtp.host };
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: smtp.port,
    secure: false,
    requireTLS: true,
    auth: { user: smtp.username, pass: smtp.password },
    tls,
  });
  await transport.sendMail({ from: smtp.username, to: imap.username, subject: 'bench', text: 'bench' });
  transport.close();
  const fetchNewest = async () => {
    const t0 = performance.now();
    const c = new ImapFlow({
      host: '127.0.0.1',
      port: imap.port,
      secure: true,
      servername: imap.host,
      tls: { ca },
      auth: { user: imap.username, pass: imap.password },
      logger: false,
    });
    await c.connect();
    const lock = await c.getMailboxLock('INBOX');
    let msg;
    try {
      msg = await c.fetchOne('*', { envelope: true });
    } finally {
      lock.release();
    }
    await c.logout();
    return msg ? performance.now() - t0 : undefined;
  };
  let first;
  for (let i = 0; i < 100 && first === undefined; i++) first = await fetchNewest().catch(() => undefined);
  if (first === undefined) throw new Error("the bench mail never reached bob's INBOX");
  const times = [];
  for (let i = 0; i < IMAP_ROUNDS; i++) times.push(await fetchNewest());
  json.imap_ms = { median: median(times), max: Math.max(...times) };
  rows.push({
    label: `email: IMAP login + fetch newest over TLS (ms, median of ${IMAP_ROUNDS})`,
    value: median(times),
    digits: 1,
    goal: { cmp: '<', target: 100 },
  });

  const notes = [
    `images: ${SERVICES.map((id) => `${images[id].image} (${images[id].id.slice(0, 19)}…)`).join(', ')}`,
    'install is timed with "wait": true, from the request to the answer with the healthy job; ' +
      'the image is on the engine',
    'provisioning is POST /api/<service>/… {username}: row + vault secret + pic-account in the container ' +
      '(docker exec, bcrypt cost 5)',
  ];
  return { rows, notes, json };
}
