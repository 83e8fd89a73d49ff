// A small closed-loop HTTP/1.1 load generator: N keep-alive connections over raw sockets, each
// sending its next request as soon as the previous response has fully arrived (no pipelining).
// Raw sockets and a minimal response parser keep the generator's own CPU use low, which matters
// because it shares the machine's cores with the server it measures. Every response must be a 2xx
// with a Content-Length; anything else aborts the run, so a figure never counts errors as work.
import { connect } from 'node:net';

const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * @param {object} o
 * @param {string} o.url          e.g. http://127.0.0.1:3000/api/status
 * @param {Record<string,string>} [o.headers]
 * @param {number} [o.connections]
 * @param {number} [o.warmupMs]    responses in this phase are not counted
 * @param {number} [o.durationMs]  the measured phase
 * @returns {Promise<{ rps, requests, seconds, p50_ms, p99_ms, connections, reconnects }>}
 */
export async function runLoad({ url, headers = {}, connections = 16, warmupMs = 1000, durationMs = 5000 }) {
  const target = new URL(url);
  const port = Number(target.port || 80);
  const host = target.hostname;
  const head = [`GET ${target.pathname}${target.search} HTTP/1.1`, `Host: ${target.host}`, 'Connection: keep-alive'];
  for (const [k, v] of Object.entries(headers)) head.push(`${k}: ${v}`);
  const requestBytes = Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1');

  const started = performance.now();
  const measureFrom = started + warmupMs;
  const measureUntil = measureFrom + durationMs;
  const latencies = [];
  let counted = 0;
  let reconnects = 0;
  let failure;

  const oneConnection = () =>
    new Promise((resolve) => {
      let socket;
      let buf = Buffer.alloc(0);
      let sentAt = 0;
      let finished = false;
      const finish = (err) => {
        if (finished) return;
        finished = true;
        if (err && !failure) failure = err;
        socket?.destroy();
        resolve();
      };
      const send = () => {
        if (failure || performance.now() >= measureUntil) return finish();
        sentAt = performance.now();
        socket.write(requestBytes);
      };
      const open = () => {
        buf = Buffer.alloc(0);
        socket = connect({ host, port, noDelay: true });
        socket.on('connect', send);
        socket.on('data', onData);
        socket.on('error', (err) => finish(new Error(`${url}: ${err.message}`)));
        socket.on('close', () => {
          if (!finished) finish(new Error(`${url}: the server closed a keep-alive connection mid-run`));
        });
      };
      const onData = (chunk) => {
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        const end = buf.indexOf(CRLFCRLF);
        if (end === -1) return;
        const headText = buf.toString('latin1', 0, end);
        const status = Number(headText.slice(9, 12));
        const lengthMatch = /\r\ncontent-length:\s*(\d+)/i.exec(headText);
        if (!lengthMatch) {
          return finish(new Error(`${url}: response without Content-Length (chunked?): ${headText.split('\r\n')[0]}`));
        }
        const total = end + 4 + Number(lengthMatch[1]);
        if (buf.length < total) return; // body still arriving
        if (buf.length > total)
          return finish(new Error(`${url}: more bytes than one response (unexpected pipelining)`));
        if (status < 200 || status > 299) {
          return finish(
            new Error(`${url}: HTTP ${status}: ${buf.toString('utf8', end + 4, Math.min(total, end + 404))}`),
          );
        }
        const now = performance.now();
        if (now >= measureFrom && now < measureUntil) {
          counted++;
          latencies.push(now - sentAt);
        }
        buf = Buffer.alloc(0);
        if (/\r\nconnection:\s*close/i.test(headText)) {
          reconnects++;
          socket.removeAllListeners('close');
          socket.destroy();
          if (performance.now() >= measureUntil) return finish();
          return open();
        }
        send();
      };
      open();
    });

  await Promise.all(Array.from({ length: connections }, oneConnection));
  if (failure) throw failure;
  if (counted === 0) throw new Error(`${url}: no response completed inside the measured window`);
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
  return {
    rps: counted / (durationMs / 1000),
    requests: counted,
    seconds: durationMs / 1000,
    p50_ms: round2(pct(50)),
    p99_ms: round2(pct(99)),
    connections,
    reconnects,
  };
}

const round2 = (n) => Math.round(n * 100) / 100;
