/**
 * Whether the clock is synchronised, asked of whichever time daemon the machine has: chrony
 * (`chronyc -c tracking`) or systemd-timesyncd (`timedatectl show`). Neither, or neither answering,
 * is "unknown" with the reason: the cell does not guess from the clock itself.
 */
import { execFile } from 'node:child_process';
import { findExecutable } from '../wireguard/commands.js';

export interface NtpStatus {
  synchronized: boolean | null;
  source: 'chrony' | 'systemd-timesyncd' | null;
  state: 'synchronized' | 'unsynchronized' | 'unknown';
  reason: string | null;
  /** chrony: the reference it follows, its stratum and the current offset. */
  reference?: string;
  stratum?: number;
  offset_seconds?: number;
}

function run(file: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      if (err) reject(new Error((stderr || err.message).trim().split('\n')[0]));
      else resolve(stdout);
    });
  });
}

/**
 * `chronyc -c tracking`: comma-separated; field 2 the reference name, 3 the stratum, 5 the offset,
 * the last the leap status.
 */
export function parseChronyTracking(
  csv: string,
): Pick<NtpStatus, 'synchronized' | 'reference' | 'stratum' | 'offset_seconds'> {
  const f = csv.trim().split(',');
  const stratum = Number(f[2]);
  const leap = f[f.length - 1] ?? '';
  const synchronized = leap !== 'Not synchronised' && stratum > 0 && stratum < 16;
  return { synchronized, reference: f[1] ?? '', stratum, offset_seconds: Number(f[4]) };
}

export async function ntpStatus(timeoutMs = 3000): Promise<NtpStatus> {
  const unknown = (reason: string, source: NtpStatus['source'] = null): NtpStatus => ({
    synchronized: null,
    source,
    state: 'unknown',
    reason,
  });
  const chronyc = findExecutable('chronyc');
  if (chronyc) {
    try {
      const t = parseChronyTracking(await run(chronyc, ['-c', 'tracking'], timeoutMs));
      return { source: 'chrony', state: t.synchronized ? 'synchronized' : 'unsynchronized', reason: null, ...t };
    } catch (err) {
      return unknown(`chronyc tracking failed: ${(err as Error).message}`, 'chrony');
    }
  }
  const timedatectl = findExecutable('timedatectl');
  if (timedatectl) {
    try {
      const value = (await run(timedatectl, ['show', '-p', 'NTPSynchronized', '--value'], timeoutMs)).trim();
      if (value !== 'yes' && value !== 'no')
        return unknown(`timedatectl answered ${JSON.stringify(value.slice(0, 40))}`, 'systemd-timesyncd');
      return {
        synchronized: value === 'yes',
        source: 'systemd-timesyncd',
        state: value === 'yes' ? 'synchronized' : 'unsynchronized',
        reason: null,
      };
    } catch (err) {
      return unknown(`timedatectl failed: ${(err as Error).message}`, 'systemd-timesyncd');
    }
  }
  return unknown('neither chrony (chronyc) nor systemd-timesyncd (timedatectl) is installed');
}
