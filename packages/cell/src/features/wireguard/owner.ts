/**
 * Who owns a WireGuard interface. The interface outlives the cell process (a restart or an upgrade
 * of the control plane must not cut the tunnels), so ownership is written down in two places:
 *
 * - `<data dir>/wireguard-owner.json`, beside the data dir's lock (cell.lock): this data dir's VPN
 *   is interface X (in namespace N), run by the kernel or by wireguard-go with pid P. A starting
 *   cell reads it to adopt the interface, and `npm run vpn -- down` to take it down.
 * - `/run/pic/wireguard/<name>[@<netns>].json`, machine-wide: interface X belongs to data dir D,
 *   whose cell has pid C. Another cell configured with the same name reads it and refuses to take
 *   the interface over while that cell lives. /run is emptied at boot, as interfaces are.
 *
 * A cell is "live" when its pid runs and its data dir's cell.pid (written under the data dir lock)
 * names that pid.
 */
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_RUN_DIR = '/run/pic/wireguard';
export const OWNER_FILE = 'wireguard-owner.json';

export interface OwnerRecord {
  interface: string;
  netns: string | null;
  /** The data dir (its real path) whose cell owns the interface. */
  data_dir: string;
  /** The owning cell's pid when it last started the interface or adopted it. */
  cell_pid: number;
  /** How the interface runs: the kernel's module, or wireguard-go (then its pid). */
  mode: 'kernel' | 'userspace' | 'existing';
  wireguard_go_pid: number | null;
  since: string;
}

export type Ownership =
  | { kind: 'free' }
  | { kind: 'ours'; record: OwnerRecord }
  | { kind: 'other_live'; record: OwnerRecord }
  | { kind: 'other_stopped'; record: OwnerRecord };

/** The ownership error a second cell gets: names the holder and what to do. */
export class InterfaceOwnedError extends Error {
  constructor(
    readonly record: OwnerRecord,
    readonly live: boolean,
  ) {
    const where = record.netns ? ` in network namespace ${record.netns}` : '';
    const what = `the WireGuard interface ${record.interface}${where}`;
    const own = 'give this cell its own interface (wireguard.interface in cell.yaml)';
    const down = `PIC_DATA_DIR=${record.data_dir} npm run vpn -- down`;
    super(
      live
        ? `${what} belongs to the cell running on the data dir ${record.data_dir} (pid ${record.cell_pid}): ${own}`
        : `${what} belongs to the data dir ${record.data_dir}, whose cell is stopped while its VPN runs on: ` +
            `take that VPN down first (${down}), or ${own}`,
    );
    this.name = 'InterfaceOwnedError';
  }
}

/**
 * Whether `pid` runs. A zombie does not: a wireguard-go left by an earlier cell has init as its
 * parent, and an init that does not reap (some containers and VMs) keeps it as a zombie.
 */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc to ask: the signal check is all there is
  }
};

function realDir(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return dir;
  }
}

function readJson(file: string): OwnerRecord | undefined {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as OwnerRecord;
    return typeof parsed?.data_dir === 'string' && typeof parsed.interface === 'string' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the cell of `dataDir` runs now as `pid` (its cell.pid, written under its lock, names it). */
function cellIsLive(dataDir: string, pid: number): boolean {
  if (!isAlive(pid)) return false;
  try {
    return Number(readFileSync(join(dataDir, 'cell.pid'), 'utf8').trim()) === pid;
  } catch {
    return false;
  }
}

export class InterfaceOwner {
  readonly dataDir: string;
  readonly localFile: string;
  readonly markerFile: string;

  constructor(
    dataDir: string,
    readonly name: string,
    readonly netns: string | null,
    readonly runDir = DEFAULT_RUN_DIR,
  ) {
    this.dataDir = realDir(dataDir);
    this.localFile = join(dataDir, OWNER_FILE);
    this.markerFile = join(runDir, `${name}${netns ? `@${netns}` : ''}.json`);
  }

  /** The owner record a data dir keeps of its own VPN, if any. */
  static recorded(dataDir: string): OwnerRecord | undefined {
    return readJson(join(dataDir, OWNER_FILE));
  }

  /** What this data dir recorded about its own VPN (possibly another interface name, from an older config). */
  local(): OwnerRecord | undefined {
    return readJson(this.localFile);
  }

  /** Who holds the interface, by the machine-wide marker. */
  check(): Ownership {
    const record = readJson(this.markerFile);
    if (!record) return { kind: 'free' };
    if (realDir(record.data_dir) === this.dataDir) return { kind: 'ours', record };
    if (cellIsLive(record.data_dir, record.cell_pid)) return { kind: 'other_live', record };
    // a data dir that is gone, or holds no record of this interface any more, owns nothing
    const theirs = readJson(join(record.data_dir, OWNER_FILE));
    if (!existsSync(record.data_dir) || theirs?.interface !== record.interface || theirs.netns !== record.netns) {
      return { kind: 'free' };
    }
    return { kind: 'other_stopped', record };
  }

  /** Throws InterfaceOwnedError when another cell's data dir holds the interface. */
  assertMayTake(): void {
    const owner = this.check();
    if (owner.kind === 'other_live') throw new InterfaceOwnedError(owner.record, true);
    if (owner.kind === 'other_stopped') throw new InterfaceOwnedError(owner.record, false);
  }

  /** Records this data dir (and this process) as the owner, in both places. */
  claim(mode: OwnerRecord['mode'], wireguardGoPid: number | null): OwnerRecord {
    const record: OwnerRecord = {
      interface: this.name,
      netns: this.netns,
      data_dir: this.dataDir,
      cell_pid: process.pid,
      mode,
      wireguard_go_pid: wireguardGoPid,
      since: new Date().toISOString(),
    };
    const text = `${JSON.stringify(record, null, 2)}\n`;
    writeFileSync(this.localFile, text, { mode: 0o600 });
    mkdirSync(this.runDir, { recursive: true, mode: 0o755 });
    writeFileSync(this.markerFile, text, { mode: 0o644 });
    return record;
  }

  /** Forgets the ownership (the interface is gone): the marker only when it is this data dir's. */
  release(): void {
    if (this.check().kind === 'ours') rmSync(this.markerFile, { force: true });
    const local = this.local();
    if (local && local.interface === this.name && local.netns === this.netns) rmSync(this.localFile, { force: true });
  }
}
