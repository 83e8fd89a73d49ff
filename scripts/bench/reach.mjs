// Bench section for issue 14: what the Caddy hop adds to GET /api/status over HTTPS keep-alive,
// against the direct call to the cell in the same run, and how fast the resolver answers the cell's
// names. It runs the real parts the cell runs: Debian's caddy configured through its admin API with
// the config the cell builds (features/caddy/config.js) and a certificate from the cell's own CA
// (POST /api/vault/certs), and dnsmasq with the config the cell writes (features/dns/config.js).
// Both listen on 127.0.0.1 here (no tunnel needed to time the hop itself).
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { Resolver } from 'node:dns/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cellArgs, freePort, httpJson, sleep, spawnNode, tempDir, waitForOutput } from './lib.mjs';
// The one PATH lookup (built before any bench runs).
import { findExecutable } from '../../packages/runtime/dist/executable.js';

export const name = 'reach';
export const title =
  'Reach (issue 14): the Caddy hop for GET /api/status over HTTPS keep-alive, DNS answers for the cell names';

const LISTENING = /PIC cell listening on (http:\/\/\S+)/;
const ADMIN = { username: 'admin', password: 'correct horse battery staple' };
const DOMAIN = 'bench.example.org';
const dist = (root, p) => pathToFileURL(join(root, 'packages/cell/dist', p)).href;

const percentile = (values, p) => {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

/** `count` sequential GETs on one keep-alive connection; returns each one's time in ms. */
async function timeGets(send, count) {
  const times = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    const status = await send();
    times.push(performance.now() - t);
    if (status !== 200) throw new Error(`GET /api/status → ${status}`);
  }
  return times;
}

function getter(requestFn, options) {
  return () =>
    new Promise((resolve, reject) => {
      const req = requestFn({ ...options, method: 'GET', path: '/api/status' }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', reject);
      req.end();
    });
}

async function setUpCell(ctx) {
  if (ctx.shared.cell) return ctx.shared.cell;
  const data = tempDir(ctx.cleanup, 'pic-bench-reach-');
  writeFileSync(join(data.dir, 'cell.yaml'), 'rate_limit:\n  api_per_minute: 10000000\n');
  const cell = spawnNode(ctx.cleanup, cellArgs(ctx.root), {
    env: {
      PIC_PORT: '0',
      PIC_HOST: '127.0.0.1',
      PIC_DATA_DIR: data.dir,
      PIC_WIREGUARD_MODE: 'off',
      PIC_REACH_MODE: 'off',
    },
  });
  const [, url] = await waitForOutput(cell, LISTENING);
  let cookie;
  const cookieFrom = (res) =>
    [res.headers['set-cookie'] ?? []]
      .flat()
      .find((c) => c.startsWith('pic.sid='))
      ?.split(';')[0];
  for (const body of [
    ADMIN,
    { cell_name: 'bench', domain: DOMAIN },
    { wireguard_port: 51820, subnet: '10.8.0.0/24', endpoint: 'vpn.bench.example.org:51820' },
    {},
  ]) {
    const res = await httpJson(url, 'POST', '/api/setup/step', { json: body, headers: cookie ? { cookie } : {} });
    if (res.status !== 200) throw new Error(`setup step → ${res.status}`);
    cookie = cookieFrom(res) ?? cookie;
  }
  await httpJson(url, 'POST', '/api/setup/complete', { json: {}, headers: { cookie } });
  const login = await httpJson(url, 'POST', '/api/auth/login', { json: ADMIN });
  const fresh = cookieFrom(login);
  const token = await httpJson(url, 'GET', '/api/auth/csrf-token', { headers: { cookie: fresh } });
  return { url, cookie: fresh, csrf: token.body.token };
}

export async function run(ctx) {
  const { root, cleanup, log } = ctx;
  const caddyBin = findExecutable('caddy');
  const dnsmasqBin = findExecutable('dnsmasq');
  const notes = [
    'sequential requests on one keep-alive connection each; rounds alternate direct / through Caddy; ' +
      'the CPU is shared with the load generator',
  ];
  const rows = [];
  const json = {};
  const cell = await setUpCell(ctx);
  const cellUrl = new URL(cell.url);
  const domain =
    (await httpJson(cell.url, 'GET', '/api/config', { headers: { cookie: cell.cookie } })).body?.config?.identity
      ?.domain ?? DOMAIN;

  if (!caddyBin) rows.push({ label: 'Caddy hop', text: "skipped: 'caddy' is not installed (Debian package caddy)" });
  else {
    const { buildCaddyConfig, bootstrapConfig } = await import(dist(root, 'features/caddy/config.js'));
    const { adminRequest, waitForAdmin, ADMIN_ORIGIN } = await import(dist(root, 'features/caddy/admin.js'));
    const dir = tempDir(cleanup, 'pic-bench-caddy-').dir;
    const socket = join(dir, 'admin.sock');
    writeFileSync(join(dir, 'boot.json'), JSON.stringify(bootstrapConfig(socket, ADMIN_ORIGIN)));
    const caddy = spawn(caddyBin, ['run', '--config', join(dir, 'boot.json')], {
      stdio: 'ignore',
      env: { PATH: process.env.PATH, HOME: dir, XDG_DATA_HOME: join(dir, 'd'), XDG_CONFIG_HOME: join(dir, 'c') },
    });
    cleanup.add(() => caddy.exitCode === null && caddy.kill('SIGTERM'));
    await waitForAdmin(socket);
    const issued = await httpJson(cell.url, 'POST', '/api/vault/certs', {
      json: { name: domain, type: 'server', days: 30 },
      headers: { cookie: cell.cookie, 'x-csrf-token': cell.csrf },
    });
    if (issued.status !== 201)
      throw new Error(`issuing the bench certificate → ${issued.status} ${JSON.stringify(issued.body)}`);
    const port = await freePort();
    await adminRequest(
      socket,
      'POST',
      '/load',
      buildCaddyConfig({
        adminSocket: socket,
        adminOrigin: ADMIN_ORIGIN,
        storageDir: join(dir, 'd'),
        listen: [`127.0.0.1:${port}`],
        domain,
        cellUpstream: cellUrl.host,
        services: [],
        tls: { mode: 'internal', certificatePem: issued.body.certificate_pem, keyPem: issued.body.private_key_pem },
      }),
    );
    const headers = { cookie: cell.cookie, host: domain };
    const direct = getter(httpRequest, {
      host: cellUrl.hostname,
      port: cellUrl.port,
      headers,
      agent: new HttpAgent({ keepAlive: true, maxSockets: 1 }),
    });
    const viaCaddy = getter(httpsRequest, {
      host: '127.0.0.1',
      port,
      servername: domain,
      ca: issued.body.ca_certificate_pem,
      headers,
      agent: new HttpsAgent({ keepAlive: true, maxSockets: 1, ca: issued.body.ca_certificate_pem, servername: domain }),
    });
    log('reach: warming both paths, then 3 alternating rounds of 2,000 sequential GET /api/status each');
    await timeGets(direct, 300);
    await timeGets(viaCaddy, 300);
    const d = [];
    const c = [];
    for (let round = 0; round < 3; round++) {
      d.push(...(await timeGets(direct, 2000)));
      c.push(...(await timeGets(viaCaddy, 2000)));
    }
    const dp50 = percentile(d, 50);
    const cp50 = percentile(c, 50);
    json.caddy = {
      direct_p50_ms: dp50,
      caddy_p50_ms: cp50,
      added_p50_ms: cp50 - dp50,
      direct_p99_ms: percentile(d, 99),
      caddy_p99_ms: percentile(c, 99),
    };
    rows.push(
      { label: 'GET /api/status direct, HTTP keep-alive p50 (ms)', value: dp50, digits: 3 },
      { label: 'GET /api/status via Caddy, HTTPS keep-alive p50 (ms)', value: cp50, digits: 3 },
      { label: 'added by the Caddy hop, p50 (ms)', value: cp50 - dp50, digits: 3, goal: { cmp: '<', target: 1 } },
    );
  }

  if (!dnsmasqBin)
    rows.push({ label: 'DNS', text: "skipped: 'dnsmasq' is not installed (Debian package dnsmasq-base)" });
  else if (process.getuid?.() !== 0)
    rows.push({ label: 'DNS', text: 'skipped: dnsmasq drops privileges to nobody, which needs root' });
  else {
    const { renderDnsmasqConfig } = await import(dist(root, 'features/dns/config.js'));
    const dir = tempDir(cleanup, 'pic-bench-dns-').dir;
    const port = await freePort();
    const conf = join(dir, 'dnsmasq.conf');
    writeFileSync(
      conf,
      renderDnsmasqConfig({ listen: '127.0.0.1', port, domain, upstreams: ['127.0.0.1'], records: [] }),
      { mode: 0o644 },
    );
    const dns = spawn(dnsmasqBin, ['--keep-in-foreground', `--conf-file=${conf}`], { stdio: 'ignore' });
    cleanup.add(() => dns.exitCode === null && dns.kill('SIGTERM'));
    const resolver = new Resolver({ timeout: 1000, tries: 1 });
    resolver.setServers([`127.0.0.1:${port}`]);
    for (let i = 0; i < 50; i++) {
      try {
        await resolver.resolve4(domain);
        break;
      } catch {
        await sleep(50);
      }
    }
    log('reach: 5,000 sequential A queries for the cell names');
    const times = [];
    for (let i = 0; i < 5000; i++) {
      const t = performance.now();
      const answer = await resolver.resolve4(i % 2 ? domain : `svc${i % 7}.${domain}`);
      times.push(performance.now() - t);
      if (answer[0] !== '127.0.0.1') throw new Error(`unexpected answer ${answer}`);
    }
    json.dns = { p50_ms: percentile(times, 50), p99_ms: percentile(times, 99) };
    rows.push(
      { label: 'DNS A answer for the cell names, p50 (ms)', value: json.dns.p50_ms, digits: 3 },
      {
        label: 'DNS A answer for the cell names, p99 (ms)',
        value: json.dns.p99_ms,
        digits: 3,
        goal: { cmp: '<', target: 5 },
      },
    );
    notes.push("DNS timed with node's resolver (c-ares) as the client, over UDP on loopback");
  }
  return { rows, notes, json };
}
