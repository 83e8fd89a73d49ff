import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WireGuardConfigError, type WgPeer } from './config.js';
import { findExecutable } from './commands.js';
import { WireGuardInterface } from './interface.js';
import { generateKeyPair, generatePresharedKey } from './keys.js';
import { parseWgShowDump } from './status.js';
import { createNetns, deleteNetns, runIn, uniqueName, wireguardTestSkipReason } from './netns.test-support.js';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'pic-wg-'));
  dirs.push(dir);
  return dir;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const cell = generateKeyPair();
const peerA = {
  publicKey: generateKeyPair().publicKey,
  presharedKey: generatePresharedKey(),
  allowedIps: ['10.77.0.2/32'],
};
const peerB = { publicKey: generateKeyPair().publicKey, allowedIps: ['10.77.0.3/32'] };

/** Every file under `dir` (the config dir) is free of the private key and the preshared key. */
function assertNoKeysOnDisk(dir: string): void {
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    const text = readFileSync(path, 'utf8');
    assert.ok(!text.includes(cell.privateKey) && !text.includes(peerA.presharedKey), `${name} holds a key`);
  }
}

/** An interface in mode "off" (configs only) writing to `dir`. */
const offInterface = (dir: string) =>
  new WireGuardInterface({
    name: 'pic0',
    privateKey: cell.privateKey,
    listenPort: 51820,
    address: '10.77.0.1/24',
    configDir: dir,
    mode: 'off',
  });

describe('WireGuardInterface where it cannot or may not run', () => {
  it('mode "off": start does not throw, reports why, and apply keeps the peers — with no key ever written to disk', async () => {
    const dir = tempDir();
    // an earlier version left its config (with the private key) here: start removes it
    writeFileSync(join(dir, 'pic0.conf'), `[Interface]\nPrivateKey = ${cell.privateKey}\n`, { mode: 0o600 });
    const wgi = offInterface(dir);
    await wgi.start();
    const status = await wgi.status();
    assert.equal(status.running, false);
    assert.match(status.reason ?? '', /disabled by configuration/);
    assert.equal(status.publicKey, cell.publicKey);
    const result = await wgi.apply([peerA, peerB]);
    assert.equal(result.written, true);
    assert.equal(result.applied, false);
    assertNoKeysOnDisk(dir);
    assert.deepEqual(
      (await wgi.status()).peers.map((p) => [p.publicKey, p.latestHandshake, p.rxBytes]),
      [
        [peerA.publicKey, null, 0],
        [peerB.publicKey, null, 0],
      ],
    );
    // the reason never carries the private key
    assert.ok(!JSON.stringify(await wgi.status()).includes(cell.privateKey));
    await wgi.stop();
  });

  it('rejects invalid input before writing anything', async () => {
    const dir = tempDir();
    for (const name of ['pic0; rm -rf /', 'averyveryverylongname'])
      assert.throws(
        () =>
          new WireGuardInterface({
            name,
            privateKey: cell.privateKey,
            listenPort: 1,
            address: '10.77.0.1/24',
            configDir: dir,
          }),
        /invalid interface name/,
      );
    assert.throws(
      () =>
        new WireGuardInterface({
          name: 'pic0',
          privateKey: 'nope',
          listenPort: 1,
          address: '10.77.0.1/24',
          configDir: dir,
        }),
      /not a WireGuard key/,
    );
    assert.throws(
      () =>
        new WireGuardInterface({
          name: 'pic0',
          privateKey: cell.privateKey,
          listenPort: 1,
          address: '10.77.0.1/24',
          configDir: dir,
          netns: '../x',
        }),
      /invalid network namespace/,
    );
    const wgi = offInterface(dir);
    await wgi.apply([peerA]);
    await assert.rejects(
      wgi.apply([{ publicKey: peerB.publicKey, allowedIps: ['10.77.0.3/32\n[Peer]'] }]),
      WireGuardConfigError,
    );
    assert.deepEqual(
      (await wgi.status()).peers.map((p) => p.publicKey),
      [peerA.publicKey],
      'the peer list is unchanged',
    );
  });

  it('a namespace that does not exist: start records the reason instead of throwing', async (t) => {
    const skip = wireguardTestSkipReason();
    if (skip) return t.skip(`SKIPPED: ${skip}`);
    const wgi = new WireGuardInterface({
      name: uniqueName('pict'),
      privateKey: cell.privateKey,
      listenPort: 51820,
      address: '10.77.0.1/24',
      configDir: tempDir(),
      netns: uniqueName('picnone'),
    });
    await wgi.start();
    const status = await wgi.status();
    assert.equal(status.running, false);
    assert.match(status.reason ?? '', /Cannot open network namespace|No such file/);
    assert.equal((await wgi.apply([peerA])).applied, false);
  });

  it('not root: start records running:false with the kernel and wireguard-go reasons', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('SKIPPED: needs root to drop to an unprivileged user for this check');
    const dir = tempDir();
    chmodSync(dir, 0o777);
    const moduleUrl = new URL('./interface.js', import.meta.url).href;
    const script = `
      const { WireGuardInterface } = await import(${JSON.stringify(moduleUrl)});
      const wgi = new WireGuardInterface({ name: ${JSON.stringify(uniqueName('pict'))}, privateKey: ${JSON.stringify(cell.privateKey)},
        listenPort: 51820, address: '10.77.0.1/24', configDir: ${JSON.stringify(dir)} });
      await wgi.start();
      const applied = await wgi.apply([]);
      console.log(JSON.stringify({ status: await wgi.status(), applied }));`;
    const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      uid: 65534,
      gid: 65534,
      encoding: 'utf8',
      timeout: 30_000,
    });
    if (res.status !== 0 && /EACCES|Cannot find module|permission denied/i.test(res.stderr)) {
      return t.skip(`SKIPPED: user nobody cannot read the build here: ${res.stderr.split('\n')[0]}`);
    }
    assert.equal(res.status, 0, res.stderr);
    const { status, applied } = JSON.parse(res.stdout.trim().split('\n').pop()!);
    assert.equal(status.running, false);
    assert.match(status.reason, /kernel WireGuard unavailable .*wireguard-go: .*(permission denied|not permitted)/i);
    assert.ok(!status.reason.includes(cell.privateKey));
    assert.equal(applied.written, true);
    assert.equal(applied.applied, false);
  });
});

describe('WireGuardInterface on a real interface (in a throwaway network namespace)', () => {
  const skip = wireguardTestSkipReason();
  let netns: string | undefined;
  const started: WireGuardInterface[] = [];

  before(async () => {
    if (!skip) netns = await createNetns('picwgt');
  });
  after(async () => {
    for (const wgi of started) await wgi.shutdown().catch(() => undefined); // also those that persist
    if (netns) await deleteNetns(netns);
  });

  let dir = '';
  const make = (name: string) => {
    dir = tempDir();
    const wgi = new WireGuardInterface({
      name,
      privateKey: cell.privateKey,
      listenPort: 51820,
      address: '10.77.0.1/24',
      configDir: dir,
      netns: netns!,
    });
    started.push(wgi);
    return wgi;
  };

  it('comes up (kernel or wireguard-go), carries its address, applies peers, and stops cleanly', async (t) => {
    if (skip) return t.skip(`SKIPPED: ${skip}`);
    const name = uniqueName('pict');
    const wgi = make(name);
    await wgi.start([peerA]);
    let status = await wgi.status();
    assert.equal(status.running, true, status.reason ?? '');
    assert.ok(status.mode === 'kernel' || status.mode === 'userspace', String(status.mode));
    assert.equal(status.reason, null);
    assert.deepEqual(
      status.peers.map((p) => p.publicKey),
      [peerA.publicKey],
    );
    const addr = await runIn(netns!, 'ip', ['-o', 'address', 'show', 'dev', name]);
    assert.match(addr, /inet 10\.77\.0\.1\/24/);
    assert.match(await runIn(netns!, 'ip', ['-o', 'link', 'show', 'dev', name]), /[<,]UP[,>]/);
    assert.equal((await runIn(netns!, 'wg', ['show', name, 'public-key'])).trim(), cell.publicKey);
    assert.equal((await runIn(netns!, 'wg', ['show', name, 'listen-port'])).trim(), '51820');

    const result = await wgi.apply([peerA, peerB]);
    assert.equal(result.applied, true, result.reason);
    assertNoKeysOnDisk(dir);
    const peers = (await runIn(netns!, 'wg', ['show', name, 'peers'])).trim().split('\n').sort();
    assert.deepEqual(peers, [peerA.publicKey, peerB.publicKey].sort());
    const psks = await runIn(netns!, 'wg', ['show', name, 'preshared-keys']);
    assert.ok(psks.includes(`${peerA.publicKey}\t${peerA.presharedKey}`), 'the preshared key reached the interface');
    status = await wgi.status();
    assert.deepEqual(
      status.peers.map((p) => [p.publicKey, p.allowedIps]).sort(),
      [
        [peerA.publicKey, ['10.77.0.2/32']],
        [peerB.publicKey, ['10.77.0.3/32']],
      ].sort(),
    );
    assert.ok(!JSON.stringify(status).includes(peerA.presharedKey), 'status never carries the preshared key');

    // removing a peer
    assert.equal((await wgi.apply([peerB])).applied, true);
    assert.equal((await runIn(netns!, 'wg', ['show', name, 'peers'])).trim(), peerB.publicKey);

    await wgi.stop();
    assert.equal((await wgi.status()).running, false);
    await assert.rejects(runIn(netns!, 'ip', ['link', 'show', 'dev', name]), /does not exist/);
  });

  /**
   * A wireguard-go first on PATH (for the body of `use`) that fails the way CI saw it for its first
   * `failures` starts, then runs the real one with its verbose log going to `log`.
   */
  async function withWrappedWireguardGo(
    use: (w: { starts: () => number; failures: (n: number) => void; log: () => string }) => Promise<void>,
  ): Promise<void> {
    const real = findExecutable('wireguard-go')!;
    const bin = tempDir();
    const count = join(bin, 'starts');
    const log = join(bin, 'log');
    writeFileSync(join(bin, 'failures'), '0');
    writeFileSync(count, '');
    writeFileSync(log, '');
    writeFileSync(
      join(bin, 'wireguard-go'),
      `#!/bin/sh\necho x >> '${count}'\n` +
        `if [ "$(wc -l < '${count}')" -le "$(cat '${bin}/failures')" ]; then echo 'ERROR: (pict) Failed to listen on uapi socket: no such file or directory' >&2; exit 1; fi\n` +
        `LOG_LEVEL=verbose exec '${real}' "$@" >> '${log}'\n`,
      { mode: 0o755 },
    );
    const path = process.env['PATH'];
    process.env['PATH'] = `${bin}:${path ?? ''}`;
    try {
      await use({
        starts: () => readFileSync(count, 'utf8').split('\n').filter(Boolean).length,
        failures: (n) => {
          writeFileSync(count, '');
          writeFileSync(join(bin, 'failures'), String(n));
        },
        log: () => readFileSync(log, 'utf8'),
      });
    } finally {
      process.env['PATH'] = path;
    }
  }
  const userspace = (name: string) => {
    const wgi = new WireGuardInterface({
      name,
      privateKey: cell.privateKey,
      listenPort: 51820,
      address: '10.77.0.1/24',
      configDir: tempDir(),
      netns: netns!,
      mode: 'userspace',
    });
    started.push(wgi);
    return wgi;
  };
  /** wireguard-go's log names a peer by the first and last four characters of its key (without the = padding). */
  const logName = (publicKey: string) => `peer(${publicKey.slice(0, 4)}…${publicKey.slice(-5, -1)})`;

  it('starts wireguard-go again when it exits at start (a transient seen in CI), and gives up after its attempts', async (t) => {
    if (skip) return t.skip(`SKIPPED: ${skip}`);
    await withWrappedWireguardGo(async (wrapped) => {
      wrapped.failures(1);
      const name = uniqueName('pict');
      const wgi = userspace(name);
      await wgi.start([peerA]);
      const status = await wgi.status();
      assert.equal(status.running, true, status.reason ?? '');
      assert.equal(status.mode, 'userspace');
      assert.equal(wrapped.starts(), 2, 'one failed start, one that worked');
      assert.equal((await runIn(netns!, 'wg', ['show', name, 'peers'])).trim(), peerA.publicKey);
      await wgi.stop();

      // Failing every time: three starts, then the reason names the last error and the attempts.
      wrapped.failures(99);
      const failing = userspace(uniqueName('pict'));
      await failing.start([peerA]);
      const down = await failing.status();
      assert.equal(down.running, false);
      assert.match(
        down.reason ?? '',
        /wireguard-go: exited at start \(1\): .*Failed to listen on uapi socket.* \(attempt 3 of 3\)$/,
      );
      assert.equal(wrapped.starts(), 3);
    });
  });

  it("apply changes only the peers that differ: no socket reopened, unchanged peers untouched (wireguard-go's own log)", async (t) => {
    if (skip) return t.skip(`SKIPPED: ${skip}`);
    await withWrappedWireguardGo(async (wrapped) => {
      const name = uniqueName('pict');
      const wgi = userspace(name);
      await wgi.start([peerA]);
      assert.equal((await wgi.status()).running, true);
      const peerC = {
        publicKey: generateKeyPair().publicKey,
        presharedKey: generatePresharedKey(),
        allowedIps: ['10.77.0.4/32'],
        persistentKeepalive: 25,
      };
      const steps: { peers: WgPeer[]; touched: string[] }[] = [
        { peers: [peerA, peerB], touched: [peerB.publicKey] }, // one added
        { peers: [peerA, peerB], touched: [] }, // nothing changed
        { peers: [peerA, { ...peerB, allowedIps: ['10.77.0.3/32', '10.77.1.0/24'] }], touched: [peerB.publicKey] }, // one changed
        { peers: [peerA, peerC], touched: [peerB.publicKey, peerC.publicKey] }, // one removed, one added
        { peers: [peerA, { ...peerC, persistentKeepalive: 0 }], touched: [peerC.publicKey] }, // keepalive off
      ];
      for (const [i, step] of steps.entries()) {
        const before = wrapped.log().length;
        const result = await wgi.apply(step.peers);
        assert.equal(result.applied, true, result.reason);
        const lines = wrapped
          .log()
          .slice(before)
          .split('\n')
          .filter((l) => l.includes('UAPI'));
        assert.ok(
          !lines.some((l) => /listen port|private key|bind/i.test(l)),
          `step ${i}: the interface itself was not touched:\n${lines.join('\n')}`,
        );
        for (const p of [peerA, peerB, peerC]) {
          const touched = lines.some((l) => l.includes(logName(p.publicKey)));
          assert.equal(
            touched,
            step.touched.includes(p.publicKey),
            `step ${i}: ${logName(p.publicKey)} ${touched ? 'was' : 'was not'} touched:\n${lines.join('\n')}`,
          );
        }
        // and the live interface is exactly what was asked for
        const dump = parseWgShowDump(await runIn(netns!, 'wg', ['show', name, 'dump']));
        assert.deepEqual(
          dump.peers.map((p) => [p.publicKey, [...p.allowedIps].sort(), p.persistentKeepalive ?? 0]).sort(),
          step.peers.map((p) => [p.publicKey, [...p.allowedIps].sort(), p.persistentKeepalive ?? 0]).sort(),
          `step ${i}`,
        );
      }
      const psks = await runIn(netns!, 'wg', ['show', name, 'preshared-keys']);
      assert.ok(
        psks.includes(`${peerC.publicKey}\t${peerC.presharedKey}`),
        "the new peer's preshared key reached the interface",
      );
      await wgi.stop();
    });
  });

  it('persist: stop leaves it up; the next start adopts it, changing only what differs', async (t) => {
    if (skip) return t.skip(`SKIPPED: ${skip}`);
    await withWrappedWireguardGo(async (wrapped) => {
      const name = uniqueName('pict');
      const dataDir = tempDir();
      const runDir = tempDir();
      const persistent = () => {
        const configDir = join(dataDir, 'wireguard');
        const options = { name, privateKey: cell.privateKey, listenPort: 51820, address: '10.77.0.1/24', configDir };
        const more = { dataDir, runDir, persist: true, netns: netns!, mode: 'userspace' as const };
        const wgi = new WireGuardInterface({ ...options, ...more });
        started.push(wgi);
        return wgi;
      };
      const uapiSince = (at: number) =>
        wrapped
          .log()
          .slice(at)
          .split('\n')
          .filter((l) => l.includes('UAPI'));
      const first = persistent();
      await first.start([peerA]);
      await first.stop();
      assert.equal((await runIn(netns!, 'wg', ['show', name, 'peers'])).trim(), peerA.publicKey, 'still up after stop');
      const owner = JSON.parse(readFileSync(join(dataDir, 'wireguard-owner.json'), 'utf8'));
      assert.equal(owner.mode, 'userspace');
      assert.ok(owner.wireguard_go_pid > 0);

      // a new instance (a restarted cell) with one peer more: adopted, and only that peer is touched
      let at = wrapped.log().length;
      const second = persistent();
      await second.start([peerA, peerB]);
      const status = await second.status();
      assert.equal(status.running, true, status.reason ?? '');
      assert.equal(status.adopted, true);
      assert.equal(status.mode, 'userspace', 'the mode the owner record keeps');
      assert.equal(wrapped.starts(), 1, 'no second wireguard-go');
      let lines = uapiSince(at);
      const itself = lines.filter((l) => /listen port|private key|bind/i.test(l));
      assert.deepEqual(itself, [], 'the interface itself was not touched');
      assert.ok(!lines.some((l) => l.includes(logName(peerA.publicKey))), `peer A untouched:\n${lines.join('\n')}`);
      assert.ok(
        lines.some((l) => l.includes(logName(peerB.publicKey))),
        `peer B added:\n${lines.join('\n')}`,
      );

      // nothing changed: a restart touches nothing at all
      await second.stop();
      at = wrapped.log().length;
      const third = persistent();
      await third.start([peerA, peerB]);
      assert.equal((await third.status()).adopted, true);
      lines = uapiSince(at);
      const touched = lines.filter((l) => /listen port|private key|bind|peer\(/i.test(l));
      assert.deepEqual(touched, [], 'an unchanged restart sets nothing');

      // the configured name changes: the next start takes the old interface down and makes the new one
      await third.stop();
      const renamed = uniqueName('pict');
      const fourth = new WireGuardInterface({
        name: renamed,
        privateKey: cell.privateKey,
        listenPort: 51820,
        address: '10.77.0.1/24',
        configDir: join(dataDir, 'wireguard'),
        ...{ dataDir, runDir, persist: true, netns: netns!, mode: 'userspace' as const },
      });
      started.push(fourth);
      await fourth.start([peerA]);
      assert.equal((await fourth.status()).running, true);
      const oldLink = runIn(netns!, 'ip', ['link', 'show', 'dev', name]);
      await assert.rejects(oldLink, /does not exist/, 'the old name is gone');
      assert.equal(JSON.parse(readFileSync(join(dataDir, 'wireguard-owner.json'), 'utf8')).interface, renamed);

      // the explicit end: the interface, its wireguard-go and the owner records go
      await fourth.shutdown();
      await assert.rejects(runIn(netns!, 'ip', ['link', 'show', 'dev', renamed]), /does not exist/);
      await assert.rejects(runIn(netns!, 'ip', ['link', 'show', 'dev', name]), /does not exist/);
      assert.throws(() => readFileSync(join(dataDir, 'wireguard-owner.json')), /ENOENT/);
      assert.deepEqual(readdirSync(runDir), []);
    });
  });

  it('notices when the interface goes away underneath it, and adopts an interface left from an earlier run', async (t) => {
    if (skip) return t.skip(`SKIPPED: ${skip}`);
    const name = uniqueName('pict');
    const first = make(name);
    await first.start([peerA]);
    assert.equal((await first.status()).running, true);

    // A second instance (a restarted cell) finds the interface up and takes it over without recreating it.
    const second = make(name);
    await second.start([peerA, peerB]);
    const adopted = await second.status();
    assert.equal(adopted.running, true, adopted.reason ?? '');
    assert.equal(adopted.mode, 'existing');
    assert.equal(adopted.peers.length, 2);

    // Someone deletes the link: both instances report it instead of claiming to run.
    await runIn(netns!, 'ip', ['link', 'delete', 'dev', name]);
    for (let i = 0; i < 50 && (await first.status()).running; i++) await new Promise((r) => setTimeout(r, 100));
    const lost = await first.status();
    assert.equal(lost.running, false);
    assert.match(lost.reason ?? '', /wireguard-go exited unexpectedly|disappeared/);
    const gone = await second.status();
    assert.equal(gone.running, false);
    assert.match(gone.reason ?? '', /disappeared/);
    assert.equal((await second.apply([peerA])).applied, false);
  });
});
