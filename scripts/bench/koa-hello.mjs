// The baseline for the core bench: a bare Koa hello-world, with the same Koa the cell uses
// (resolved from packages/cell, where it is installed). Listens on PORT (0: any free port) and
// prints "koa listening on <url>".
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = join(import.meta.dirname, '..', '..');
const require = createRequire(join(root, 'packages', 'cell', 'package.json'));
const { default: Koa } = await import(pathToFileURL(require.resolve('koa')).href);

const app = new Koa();
app.use((ctx) => {
  ctx.body = 'Hello World';
});
const server = createServer(app.callback());
server.keepAliveTimeout = 65_000; // as the cell sets it
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`koa listening on http://127.0.0.1:${server.address().port}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
