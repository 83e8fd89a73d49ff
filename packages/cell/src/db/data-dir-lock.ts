/**
 * One cell per data directory. Two cells on one data dir (a service manager's and a hand-started
 * one, say) would both drive the same WireGuard interface, containers and vault key: the second
 * one refuses to start instead, naming the first one's pid.
 *
 * The lock is an exclusive SQLite lock on `<data dir>/cell.lock`, held by a connection of its own
 * for the cell's lifetime. SQLite takes it with POSIX record locks, which the kernel drops when
 * the process ends however it ends (SIGKILL, power loss): there is no stale lock to clean up,
 * unlike a pid file. `cell.pid` beside it only names the holder for the message.
 */
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';

export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holderPid: number | undefined,
  ) {
    super(
      `another cell is already running on the data dir ${dataDir}` +
        (holderPid ? ` (pid ${holderPid})` : '') +
        ': stop it first, or give this one its own PIC_DATA_DIR',
    );
    this.name = 'DataDirInUseError';
  }
}

export class DataDirLock {
  private connection: SQLite.Database | undefined;
  private readonly lockFile: string;
  private readonly pidFile: string;

  constructor(readonly dataDir: string) {
    this.lockFile = join(dataDir, 'cell.lock');
    this.pidFile = join(dataDir, 'cell.pid');
  }

  /** Takes the lock, or throws DataDirInUseError at once (no waiting) when another cell holds it. */
  start(): void {
    if (this.connection) return;
    const connection = new SQLite(this.lockFile, { timeout: 0 });
    try {
      chmodSync(this.lockFile, 0o600);
      connection.pragma('journal_mode = MEMORY'); // nothing is ever written: no journal file beside it
      connection.exec('BEGIN EXCLUSIVE');
    } catch (err) {
      connection.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY')
        throw new DataDirInUseError(this.dataDir, this.holderPid());
      throw err;
    }
    this.connection = connection;
    writeFileSync(this.pidFile, `${process.pid}\n`, { mode: 0o600 });
  }

  stop(): void {
    if (!this.connection) return;
    rmSync(this.pidFile, { force: true });
    this.connection.close(); // the open transaction ends with it, and so does the lock
    this.connection = undefined;
  }

  private holderPid(): number | undefined {
    try {
      const pid = Number(readFileSync(this.pidFile, 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }
}
