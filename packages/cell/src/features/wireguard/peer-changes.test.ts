/**
 * A change to one peer runs commands for that peer alone: no `wg show dump`, no other peer's key on
 * any command line or in any file handed to `wg`. The commands go to a recorder standing in for
 * CommandRunner (the real interface is exercised in interface.test.ts and the e2e tests).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable, type CommandResult } from './commands.js';
import { WireGuardInterface } from './interface.js';
import { generateKeyPair, generatePresharedKey } from './keys.js';

interface Call {
  command: string;
  args: string[];
  /** For `wg addconf`: the file's text while wg would read it. */
  file?: string;
}

/** The interface line of `wg show <iface> dump` for an interface with no peers yet. */
const EMPTY_DUMP = `${generateKeyPair().privateKey}\t${generateKeyPair().publicKey}\t51820\toff\n`;

/** Answers like a healthy existing WireGuard interface, and remembers every command. */
class RecordingRunner {
  readonly calls: Call[] = [];
  /** What `wg show <iface> dump` prints: the empty interface at start, then nothing (status falls back). */
  dump = EMPTY_DUMP;
  async run(path: string, args: string[]): Promise<CommandResult> {
    const command = path.split('/').pop()!;
    const call: Call = { command, args };
    const readsFile = command === 'wg' && (args[0] === 'addconf' || args[0] === 'syncconf');
    if (readsFile) call.file = readFileSync(args[2]!, 'utf8');
    this.calls.push(call);
    // an adopted interface is read once at start (its converge is a plan, like an apply)
    const dump = command === 'wg' && args[0] === 'show' && args[2] === 'dump';
    return { stdout: dump ? this.dump : '', stderr: '' };
  }
  spawn(): ChildProcess {
    throw new Error('nothing is spawned when the interface already exists');
  }
}

const skip =
  !findExecutable('wg') || !findExecutable('ip')
    ? "needs 'wg' and 'ip' on PATH (wireguard-tools, iproute2)"
    : undefined;
if (skip) console.log(`# SKIP peer-changes: ${skip}`);

const peer = (n: number) => ({
  publicKey: generateKeyPair().publicKey,
  presharedKey: generatePresharedKey(),
  allowedIps: [`10.70.${n >> 8}.${n & 255}/32`],
});
/** An interface that `ip link show` says exists, so start() adopts it through the recorder. */
const recorded = (name: string, configDir: string, runner: RecordingRunner) =>
  new WireGuardInterface({
    name,
    privateKey: generateKeyPair().privateKey,
    listenPort: 51820,
    address: '10.70.0.1/16',
    configDir,
    mode: 'userspace',
    runner,
  });

describe('WireGuardInterface.applyPeerChanges', { skip }, () => {
  it('adds, updates and removes exactly the peers named, and reads nothing of the others', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pic-wg-changes-'));
    const runner = new RecordingRunner();
    const wgi = recorded('picrec0', dir, runner);
    try {
      const all = Array.from({ length: 200 }, (_, i) => peer(i + 2));
      await wgi.start(all);
      // adopting the existing interface converges the whole set: every peer in one addconf
      const converge = runner.calls.find((c) => c.args[0] === 'addconf' || c.args[0] === 'syncconf');
      assert.equal(converge?.file?.match(/\[Peer\]/g)?.length, all.length, 'start converges the whole set');
      runner.dump = '';
      const fresh = peer(400);
      const gone = all[17]!;

      runner.calls.length = 0;
      const added = await wgi.applyPeerChanges({ upsert: [fresh], remove: [] });
      assert.equal(added.applied, true);
      assert.deepEqual(
        runner.calls.map((c) => [c.command, c.args[0]]),
        [['wg', 'addconf']],
        'one command, no wg show',
      );
      const text = runner.calls[0]!.file!;
      assert.equal(text.match(/\[Peer\]/g)?.length, 1, 'the file holds one peer');
      assert.ok(text.includes(fresh.publicKey) && text.includes(fresh.presharedKey));
      assert.ok(
        all.every((p) => !text.includes(p.publicKey)),
        "no other peer's key",
      );

      runner.calls.length = 0;
      await wgi.applyPeerChanges({ upsert: [], remove: [gone.publicKey] });
      assert.deepEqual(
        runner.calls.map((c) => c.args),
        [['set', 'picrec0', 'peer', gone.publicKey, 'remove']],
      );

      // a peer wanted without a PSK is re-created (wg cannot unset one in place): still that peer alone
      runner.calls.length = 0;
      const bare = { publicKey: all[3]!.publicKey, allowedIps: all[3]!.allowedIps };
      await wgi.applyPeerChanges({ upsert: [bare], remove: [] });
      assert.deepEqual(
        runner.calls.map((c) => c.args.slice(0, 2)),
        [
          ['set', 'picrec0'],
          ['addconf', 'picrec0'],
        ],
      );
      assert.deepEqual(runner.calls[0]!.args.slice(2), ['peer', bare.publicKey, 'remove']);
      const others = all.filter((p) => p !== all[3]).map((p) => p.publicKey);
      assert.ok(runner.calls.every((c) => others.every((k) => !c.args.includes(k) && !(c.file ?? '').includes(k))));

      // status and a later start see the change list as applied
      const keys = new Set((await wgi.status()).peers.map((p) => p.publicKey));
      assert.ok(keys.has(fresh.publicKey) && !keys.has(gone.publicKey) && keys.size === 200);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an invalid peer before running anything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pic-wg-changes-'));
    const runner = new RecordingRunner();
    const wgi = recorded('picrec1', dir, runner);
    try {
      await wgi.start([]);
      runner.calls.length = 0;
      const bad = { publicKey: 'nope', allowedIps: ['10.70.0.9/32'] };
      await assert.rejects(wgi.applyPeerChanges({ upsert: [bad], remove: [] }));
      await assert.rejects(wgi.applyPeerChanges({ upsert: [], remove: ['not-a-key'] }));
      assert.deepEqual(runner.calls, []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
