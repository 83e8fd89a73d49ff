// Bench section: the core's GET /api/status ratio (issue 9) counted in instructions instead of
// seconds. The cell and the chosen parts alone (koa-stack.mjs) each run under valgrind's callgrind
// with instrumentation off while warming up, then on for a fixed number of requests; the figure is
// the instructions the main thread (JavaScript, the HTTP parser, garbage collection) executed per
// request. Unlike req/s or CPU-seconds it does not depend on what else the machine runs, so it
// compares two versions of the cell (with and without a piece, issue 11) on a shared machine;
// the cell's rounds have differed by up to 8 % (the parts alone's by under 1 %), so compare
// several runs. It leaves out the kernel's share (the socket writes, about a third of a
// request's CPU time), which is the same for both: the ratio is therefore a little lower than the
// throughput ratio. Skipped when valgrind is not installed.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cellLaunch } from '../cell-launch.mjs';
import { signedInSession } from './core.mjs';
import { findExecutable } from '../../packages/runtime/dist/executable.js';
import { httpJson, median, spread, tempDir, waitForOutput } from './lib.mjs';

export const name = 'instructions';
export const title =
  'Core (issue 9) in instructions: GET /api/status, the cell vs the chosen parts alone, under callgrind';

/** Requests before counting (V8 has optimised the hot paths by then), and counted requests. */
const WARM = 30_000;
const COUNTED = 5_000;
const CONNECTIONS = 8;
const ROUNDS = 2;

/** @param {{ root: string, cleanup: import('./lib.mjs').Cleanup, log: (msg: string) => void }} ctx */
export async function run({ root, cleanup, log }) {
  const valgrind = findExecutable('valgrind');
  const control = findExecutable('callgrind_control');
  if (!valgrind || !control) {
    return {
      rows: [{ label: 'skipped', text: 'valgrind is not installed (apt-get install valgrind)' }],
      json: { skipped: 'no valgrind' },
    };
  }
  const out = mkdtempSync(join(tmpdir(), 'pic-bench-callgrind-'));
  cleanup.add(() => execFileSync('rm', ['-rf', out]));
  const { nodeFlags, main: bundled } = cellLaunch(root);
  // Another build of the cell to compare with (a copy of packages/cell/bundle beside it, so that
  // its packages resolve): PIC_BENCH_CELL_MAIN=packages/cell/bundle-before/main.js
  const main = process.env.PIC_BENCH_CELL_MAIN ? join(root, process.env.PIC_BENCH_CELL_MAIN) : bundled;
  const underCallgrind = async (args, env, listening) => {
    const child = spawn(
      valgrind,
      [
        '--tool=callgrind',
        '--instr-atstart=no',
        '--separate-threads=yes',
        `--callgrind-out-file=${out}/cg.%p`,
        process.execPath,
        ...args,
      ],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let text = '';
    child.stdout.on('data', (d) => (text += d));
    child.stderr.on('data', (d) => (text += d));
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    cleanup.add(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    });
    const proc = { child, output: () => text, pid: child.pid, exited };
    const [, url] = await waitForOutput(proc, listening, 300_000);
    return { proc, url, exited };
  };

  const data = tempDir(cleanup, 'pic-bench-callgrind-cell-');
  writeFileSync(join(data.dir, 'cell.yaml'), 'rate_limit:\n  api_per_minute: 10000000\n');
  const cellEnv = { PIC_PORT: '0', PIC_HOST: '127.0.0.1', PIC_DATA_DIR: data.dir, PIC_WIREGUARD_MODE: 'off' };
  const startCell = async () => {
    const cell = await underCallgrind([...nodeFlags, main], cellEnv, /PIC cell listening on (http:\/\/\S+)/);
    const session = cookie ? { cookie } : await signedInSession(cell.url, 120_000);
    cookie = session.cookie;
    return { ...cell, target: { url: `${cell.url}/api/status`, headers: { cookie } } };
  };
  let cookie;
  let bodyFile;
  const { SESSION_ID } = await import('./koa-stack-session.mjs');
  const startStack = async () => {
    const args = [...nodeFlags, join(root, 'scripts', 'bench', 'koa-stack.mjs')];
    const stack = await underCallgrind(args, { PORT: '0', BODY_FILE: bodyFile }, /stack listening on (http:\/\/\S+)/);
    return { ...stack, target: { url: `${stack.url}/api/status`, headers: { cookie: `pic.sid=${SESSION_ID}` } } };
  };

  const counts = { cell: [], stack: [] };
  for (let r = 1; r <= ROUNDS; r++) {
    for (const which of r % 2 ? ['cell', 'stack'] : ['stack', 'cell']) {
      log(`callgrind round ${r}/${ROUNDS}: ${which}, ${WARM} requests to warm up, then ${COUNTED} counted`);
      const server = which === 'cell' ? await startCell() : await startStack();
      if (which === 'cell' && !bodyFile) {
        const probe = await httpJson(server.url, 'GET', '/api/status', {
          headers: server.target.headers,
          timeoutMs: 60_000,
        });
        bodyFile = join(data.dir, 'bench-status-body.json');
        writeFileSync(bodyFile, JSON.stringify(probe.body));
      }
      await requests(server.target, WARM);
      const pid = String(server.proc.pid);
      execFileSync(control, ['--instr=on', pid], { stdio: 'ignore' });
      await requests(server.target, COUNTED);
      execFileSync(control, ['--dump', pid], { stdio: 'ignore' });
      server.proc.child.kill('SIGKILL');
      await server.exited;
      counts[which].push(mainThreadTotal(out, pid) / COUNTED);
    }
  }
  const cell = median(counts.cell);
  const stack = median(counts.stack);
  const ratios = counts.cell.map((c, i) => counts.stack[i] / c);
  const rows = [
    {
      label: `ratio: instructions of the parts alone ÷ the cell's, per request (median of ${ROUNDS})`,
      value: stack / cell,
      digits: 3,
    },
    { label: '  per round', text: ratios.map((x) => x.toFixed(3)).join(', ') },
    { label: 'the cell: instructions per GET /api/status (main thread)', value: cell, digits: 0 },
    { label: '  per round', text: counts.cell.map(Math.round).join(', ') },
    { label: 'the chosen parts alone: instructions per request (main thread)', value: stack, digits: 0 },
    { label: '  per round', text: counts.stack.map(Math.round).join(', ') },
    { label: '  spread of the ratio', text: `${spread(ratios).min.toFixed(3)} – ${spread(ratios).max.toFixed(3)}` },
  ];
  const notes = [
    `under valgrind --tool=callgrind: ${WARM} requests with instrumentation off (V8 optimises the hot paths), ` +
      `then ${COUNTED} counted on ${CONNECTIONS} keep-alive connections; the main thread only (V8's compiler ` +
      "and GC helper threads run when they please); the kernel's share is not counted",
    'a figure for comparing versions of the cell on a busy machine; the parts alone repeat within 1 %, ' +
      "the cell's rounds have differed by up to 8 %, so compare several runs; " +
      'the goal itself is judged on req/s in the core section',
    `the cell measured: ${main === bundled ? 'packages/cell/bundle (npm start)' : main} (PIC_BENCH_CELL_MAIN picks another build)`,
  ];
  return {
    rows,
    notes,
    json: {
      cell_instructions: Math.round(cell),
      parts_alone_instructions: Math.round(stack),
      ratio: Math.round((stack / cell) * 1000) / 1000,
      rounds: counts.cell.map((c, i) => ({ cell: Math.round(c), parts_alone: Math.round(counts.stack[i]) })),
    },
  };
}

/** `count` GETs over CONNECTIONS keep-alive connections, each sent when the previous answer is in. */
function requests({ url, headers }, count) {
  const target = new URL(url);
  const head = [`GET ${target.pathname} HTTP/1.1`, `Host: ${target.host}`, 'Connection: keep-alive'];
  for (const [k, v] of Object.entries(headers)) head.push(`${k}: ${v}`);
  const bytes = Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1');
  let left = count;
  const one = () =>
    new Promise((resolve, reject) => {
      const socket = connect({ host: target.hostname, port: Number(target.port), noDelay: true });
      let buf = Buffer.alloc(0);
      const send = () => {
        if (left-- <= 0) {
          socket.destroy();
          resolve();
        } else socket.write(bytes);
      };
      socket.on('connect', send);
      socket.on('error', reject);
      socket.on('data', (chunk) => {
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const headText = buf.toString('latin1', 0, end);
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(headText);
        if (!length) return reject(new Error(`${url}: no Content-Length: ${headText.split('\r\n')[0]}`));
        if (buf.length < end + 4 + Number(length[1])) return;
        if (!/^HTTP\/1\.1 2/.test(headText)) return reject(new Error(`${url}: ${headText.split('\r\n')[0]}`));
        buf = Buffer.alloc(0);
        send();
      });
    });
  return Promise.all(Array.from({ length: CONNECTIONS }, one));
}

/** The instructions callgrind counted on the process's main thread (its dump file for thread 1). */
function mainThreadTotal(dir, pid) {
  const file = readdirSync(dir).find((f) => f.startsWith(`cg.${pid}.`) && f.endsWith('-01'));
  if (!file) throw new Error(`callgrind wrote no dump for process ${pid}`);
  const total = /^(?:summary|totals):\s*(\d+)/m.exec(readFileSync(join(dir, file), 'utf8'));
  if (!total) throw new Error(`no totals in ${file}`);
  return Number(total[1]);
}
