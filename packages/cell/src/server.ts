import { ConfigError, loadConfig, type CellConfig } from './config.js';
import { createLogger } from './lib/logger.js';
import { startCell, type CellHooks } from './cell.js';

/** Loads config, starts the cell, and stops it cleanly on SIGTERM, SIGINT or SIGHUP. */
async function main(hooks: CellHooks): Promise<void> {
  let config: CellConfig;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`pic: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  const cell = await startCell(config, logger, hooks);
  logger.info('cell listening', { url: cell.url, data_dir: config.dataDir });
  // A line people (and tests) can wait for.
  process.stdout.write(`PIC cell listening on ${cell.url}\n`);

  let stopping = false;
  const shutdown = (signal: string) => {
    // A terminal's Ctrl-C reaches both `npm start` (which passes it on) and the cell: the second
    // copy must not end the process by default while the database is being closed.
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    cell.stop().then(
      () => process.exit(0),
      (err) => {
        logger.error('stop failed', { error: String(err) });
        process.exit(1);
      },
    );
  };
  // SIGHUP too: a closed terminal or a dropped SSH session sends it, and by default it would end
  // the process on the spot, cutting off requests and the database close.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => shutdown(signal));
}

/** The process entry (main.ts, and test entry points that pass hooks): exits 1 when the start fails. */
export function serve(hooks: CellHooks = {}): void {
  main(hooks).catch((err) => {
    process.stderr.write(`pic: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
