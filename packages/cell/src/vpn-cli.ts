/**
 * `npm run vpn -- down`: the explicit end of the VPN. The cell leaves its WireGuard interface up
 * when it stops (a restart must not cut the tunnels); this takes it down while the cell is stopped.
 * It takes the data dir's lock, so it refuses while a cell runs on the data dir.
 */
import { ConfigError, loadConfig } from './config.js';
import { DataDirLock } from './db/data-dir-lock.js';
import { shutdownRecordedInterface } from './features/wireguard/interface.js';

const USAGE = "usage: npm run vpn -- down   (takes down the WireGuard interface this data dir's cell left up)";

async function main(args: string[]): Promise<number> {
  if (args[0] !== 'down' || args.length !== 1) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const config = loadConfig();
  const lock = new DataDirLock(config.dataDir);
  lock.start(); // a running cell owns the interface: stop it first
  try {
    process.stdout.write(`pic vpn: ${await shutdownRecordedInterface(config.dataDir)}\n`);
    return 0;
  } finally {
    lock.stop();
  }
}

main(process.argv.slice(3)).then(
  (code) => process.exit(code),
  (err) => {
    const prefix = err instanceof ConfigError ? 'configuration error' : 'vpn down failed';
    process.stderr.write(`pic: ${prefix}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
