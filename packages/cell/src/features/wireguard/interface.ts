/**
 * The cell's WireGuard interface: one network interface, the data plane of the VPN.
 *
 * It is brought up with the kernel module where there is one (`ip link add … type wireguard`), else
 * with userspace `wireguard-go`, started in a session of its own (its output goes to a log file in
 * the config dir) so that it outlives the cell. With `persist`, stop() leaves the interface up and
 * running: a restart of the cell does not cut the tunnels. The next start() adopts the interface it
 * finds and converges it to the peers it is given; only shutdown() takes it down. Who owns an
 * interface is written down (owner.ts), and another data dir's cell refuses to take it over.
 * Peer changes touch only the peers
 * that differ (`wg set … remove`, `wg addconf`; sync.ts), so every other tunnel is left alone.
 * The config (private key, preshared keys) is rendered in memory and handed to `wg` through a file
 * in RAM (/dev/shm) that lives only while `wg` reads it: the keys live in the vault, never in the
 * data dir or on disk. Where the machine cannot run an interface (no root, no tools, no TUN),
 * start() does not throw: it records running:false and the reason, and apply() still validates
 * and keeps the peer list for when it can.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCidr } from '../../lib/net.js';
import { silentLogger, type Logger } from '../../lib/logger.js';
import { CommandError, CommandRunner, findExecutable, isInterfaceName, outputTail, redactKeys } from './commands.js';
import { renderWgConfig, renderWgPeers, type WgPeer } from './config.js';
import { assertWireGuardKey, publicKeyOf } from './keys.js';
import { parseWgShowDump, type WireGuardPeerStatus } from './status.js';
import { planPeerSync, type PeerSyncPlan } from './sync.js';
import { InterfaceOwner, isAlive } from './owner.js';
import { allowPeerForwarding, removePeerForwarding } from './firewall.js';

/** How to bring the interface up: try the kernel then userspace, only one of them, or never (tests, no VPN). */
export type WireGuardMode = 'auto' | 'kernel' | 'userspace' | 'off';

export interface WireGuardInterfaceOptions {
  /** Interface name, e.g. "pic0" (letters, digits, _ and -, at most 15, starting with a letter). */
  name: string;
  /** The cell's private key (base64). Reaches `wg` only on its stdin: never a file, never a command line. */
  privateKey: string;
  listenPort: number;
  /** The cell's tunnel address with the subnet's prefix, e.g. 10.8.0.1/24. */
  address: string;
  /** Where earlier versions wrote `<name>.conf` (it held the keys; removed at start). wireguard-go logs here. */
  configDir: string;
  /** The cell's data dir: ownership is recorded beside its lock (owner.ts). Without it, none is recorded or checked. */
  dataDir?: string;
  /** Where the machine-wide ownership markers live (default /run/pic/wireguard). */
  runDir?: string;
  /** stop() leaves the interface up (the cell's restart does not cut the tunnels); shutdown() takes it down. */
  persist?: boolean;
  /** Peers reach each other through the cell: a FORWARD ACCEPT rule, the interface's forwarding flag (firewall.ts). */
  forwardBetweenPeers?: boolean;
  /** Run every command inside this network namespace (`ip netns exec`). */
  netns?: string;
  mode?: WireGuardMode;
  logger?: Logger;
  /** How long wireguard-go may take to open its control socket. */
  startTimeoutMs?: number;
  /** How often to start wireguard-go when it exits at once (3). */
  startAttempts?: number;
  /** Runs `wg`, `ip` and `wireguard-go` (default: a CommandRunner for `netns`); unit tests pass a recorder. */
  runner?: Pick<CommandRunner, 'run' | 'spawn'>;
}

export type RunningMode = 'kernel' | 'userspace' | 'existing';

export interface WireGuardStatus {
  interface: string;
  listenPort: number;
  publicKey: string;
  /** The cell's tunnel address with prefix. */
  address: string;
  running: boolean;
  /** How the interface runs: kernel module, wireguard-go, or an interface that was already there. */
  mode: RunningMode | null;
  /** This start found the interface up (left running by the cell's last run) and took it over. */
  adopted?: boolean;
  /** Forwarding between peers (firewall.ts): on, off (not asked for), or why it could not be set up. */
  forwarding?: { state: 'on' | 'off' | 'failed'; reason: string | null };
  /** Why it is not running (or what last went wrong), else null. */
  reason: string | null;
  peers: WireGuardPeerStatus[];
}

export interface ApplyResult {
  /** The peer list was accepted (always, unless rendering rejected the input); it is what the interface gets. */
  written: boolean;
  /** The live interface took the change. */
  applied: boolean;
  peers: number;
  /** Why it was not applied. */
  reason?: string;
  durationMs: number;
  /**
   * A full apply on a running interface: what it found different and changed, by public key —
   * peers it added (missing), removed (not wanted), and updated (allowed IPs, PSK or keepalive differed).
   */
  changed?: { added: string[]; removed: string[]; updated: string[] };
}

/** A change to a few peers, each given whole: no `wg show`, nothing read, no other peer touched. */
export interface PeerChange {
  /** Peers to add or update, with their complete desired settings. */
  upsert: WgPeer[];
  /** Public keys to take off the interface (absent ones are no error). */
  remove: string[];
}

export class WireGuardInterface {
  readonly name: string;
  readonly listenPort: number;
  readonly address: string;
  readonly publicKey: string;
  /** Where earlier versions kept the config with its keys in plain text; removed at start. */
  readonly legacyConfigPath: string;
  readonly netns: string | undefined;

  private readonly privateKey: string;
  private readonly mode: WireGuardMode;
  private readonly log: Logger;
  private readonly runner: Pick<CommandRunner, 'run' | 'spawn'>;
  private readonly startTimeoutMs: number;
  private readonly startAttempts: number;
  /** The peer list the interface should hold, by public key (kept for status and start when not running). */
  private peers = new Map<string, WgPeer>();
  private runningMode: RunningMode | null = null;
  private reason: string | null = 'not started';
  private child: ChildProcess | undefined;
  private childExited: Promise<void> | undefined;
  private readonly configDir: string;
  private readonly persist: boolean;
  private readonly forwardBetweenPeers: boolean;
  private forwardingProblem: string | null = null;
  private readonly owner: InterfaceOwner | undefined;
  private adopted = false;
  /** wireguard-go's pid, ours or (adopted) the one the last run recorded. */
  private goPid: number | null = null;
  private stopping = false;
  /** start/apply/stop run one at a time, in call order: two applies never interleave. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: WireGuardInterfaceOptions) {
    if (!isInterfaceName(options.name)) throw new TypeError(`invalid interface name ${JSON.stringify(options.name)}`);
    assertWireGuardKey(options.privateKey, 'the cell private key');
    if (!Number.isInteger(options.listenPort) || options.listenPort < 1 || options.listenPort > 65535) {
      throw new TypeError('listenPort must be an integer 1-65535');
    }
    if (!parseCidr(options.address))
      throw new TypeError(`address ${JSON.stringify(options.address)} must be an IPv4 CIDR like 10.8.0.1/24`);
    this.name = options.name;
    this.privateKey = options.privateKey;
    this.publicKey = publicKeyOf(options.privateKey);
    this.listenPort = options.listenPort;
    this.address = options.address;
    this.legacyConfigPath = join(options.configDir, `${options.name}.conf`);
    this.configDir = options.configDir;
    this.persist = options.persist ?? false;
    this.forwardBetweenPeers = options.forwardBetweenPeers ?? false;
    this.owner = options.dataDir
      ? new InterfaceOwner(options.dataDir, options.name, options.netns ?? null, options.runDir)
      : undefined;
    this.netns = options.netns;
    this.mode = options.mode ?? 'auto';
    this.log = options.logger ?? silentLogger;
    this.runner = options.runner ?? new CommandRunner(options.netns);
    this.startTimeoutMs = options.startTimeoutMs ?? 5_000;
    this.startAttempts = Math.max(1, options.startAttempts ?? 3);
  }

  get running(): boolean {
    return this.runningMode !== null;
  }

  /** wireguard-go's log (truncated at each start of it). */
  get logFile(): string {
    return join(this.configDir, `wireguard-go-${this.name}.log`);
  }

  /** Writes the config and brings the interface up where the machine allows; never throws for lack of means. */
  start(initialPeers: WgPeer[] = [...this.peers.values()]): Promise<void> {
    return this.serialize(async () => {
      if (this.running) return;
      this.render(initialPeers); // invalid input throws before anything changes
      this.peers = byKey(initialPeers);
      await rm(this.legacyConfigPath, { force: true });
      const problem = await this.bringUp();
      if (problem) {
        this.runningMode = null;
        this.reason = problem;
        this.log.warn('wireguard interface not running', { interface: this.name, reason: problem });
      } else {
        this.reason = null;
        this.log.info(this.adopted ? 'wireguard interface adopted' : 'wireguard interface up', {
          interface: this.name,
          mode: this.runningMode,
          peers: this.peers.size,
        });
      }
    });
  }

  /**
   * Lets the interface go: with `persist` it stays up and running for the next start() to adopt
   * (the cell's restart does not cut the tunnels); without, as shutdown().
   */
  stop(): Promise<void> {
    if (!this.persist) return this.shutdown();
    return this.serialize(async () => {
      if (!this.running && !this.child) return;
      // wireguard-go runs in a session of its own: it goes on when we exit; we only stop watching it
      this.child?.unref();
      this.child = undefined;
      this.childExited = undefined;
      this.log.info('wireguard interface left up for the next start', { interface: this.name, mode: this.runningMode });
      this.runningMode = null;
      this.reason = 'stopped (the interface was left up)';
    });
  }

  /** Takes the interface down (and wireguard-go with it): the explicit end of the VPN. */
  shutdown(): Promise<void> {
    return this.serialize(async () => {
      if (!this.running && !this.child) return;
      this.stopping = true;
      try {
        await this.tearDown();
      } finally {
        this.stopping = false;
        this.runningMode = null;
        this.reason = 'stopped';
      }
    });
  }

  /**
   * Makes `peers` the interface's complete peer list; on a running interface only the peers that
   * differ change, and every other tunnel is left untouched. Invalid input throws
   * WireGuardConfigError before anything changes.
   */
  apply(peers: WgPeer[]): Promise<ApplyResult> {
    return this.serialize(async () => {
      const started = performance.now();
      this.render(peers);
      this.peers = byKey(peers);
      if (!this.running) return this.result(started, false, this.reason ?? 'not running');
      try {
        const plan = await this.syncPeers();
        return { ...this.result(started, true), changed: describePlan(plan) };
      } catch (err) {
        return this.result(started, false, await this.applyFailed(err));
      }
    });
  }

  /**
   * Changes just the peers named, as given, with `wg set … remove` and `wg addconf` for them alone:
   * no `wg show dump`, no other peer read or touched, so it costs the same with 10 peers or 10,000.
   * It trusts that the interface holds what the cell last gave it; the periodic full apply (the
   * drift check) is what finds and repairs changes made behind the cell's back. Invalid input throws
   * WireGuardConfigError before anything changes.
   */
  applyPeerChanges(change: PeerChange): Promise<ApplyResult> {
    return this.serialize(async () => {
      const started = performance.now();
      const upsertText = change.upsert.length ? renderWgPeers(change.upsert) : '';
      for (const key of change.remove) assertWireGuardKey(key, 'a removed peer');
      for (const key of change.remove) this.peers.delete(key);
      for (const peer of change.upsert) this.peers.set(peer.publicKey, peer);
      if (!this.running) return this.result(started, false, this.reason ?? 'not running');
      try {
        // A PSK cannot be unset in place: a peer wanted without one is removed and added back.
        const bare = change.upsert.filter((p) => p.presharedKey === undefined).map((p) => p.publicKey);
        const remove = [...change.remove, ...bare];
        await this.removePeers(remove);
        if (upsertText) await this.addconf(upsertText);
        return this.result(started, true);
      } catch (err) {
        return this.result(started, false, await this.applyFailed(err));
      }
    });
  }

  private result(started: number, applied: boolean, reason?: string): ApplyResult {
    return {
      written: true,
      applied,
      peers: this.peers.size,
      ...(reason ? { reason } : {}),
      durationMs: performance.now() - started,
    };
  }

  /** Logs a failed apply and notices an interface that went away; returns the reason. */
  private async applyFailed(err: unknown): Promise<string> {
    const reason = `applying the peers failed: ${errorText(err)}`;
    this.log.warn('wireguard apply failed', { interface: this.name, reason });
    if (!(await this.interfaceExists())) {
      this.runningMode = null;
      this.reason = `the interface disappeared (${reason})`;
    }
    return reason;
  }

  /** Interface, keys, and per-peer handshake and traffic from `wg show <iface> dump`. */
  async status(): Promise<WireGuardStatus> {
    const base = () => ({
      interface: this.name,
      listenPort: this.listenPort,
      publicKey: this.publicKey,
      address: this.address,
    });
    const configured = (): WireGuardPeerStatus[] =>
      [...this.peers.values()].map((p) => ({
        publicKey: p.publicKey,
        endpoint: p.endpoint ?? null,
        allowedIps: [...p.allowedIps],
        latestHandshake: null,
        rxBytes: 0,
        txBytes: 0,
        persistentKeepalive: p.persistentKeepalive || null,
      }));
    if (this.running) {
      try {
        const dump = parseWgShowDump(await this.readDump());
        const forwarding = this.forwardingStatus();
        const live = { running: true, mode: this.runningMode, adopted: this.adopted, forwarding };
        return { ...base(), ...live, reason: null, peers: dump.peers };
      } catch (err) {
        if (this.running && !(await this.interfaceExists())) {
          this.runningMode = null;
          this.reason = `the interface disappeared (wg show: ${errorText(err)})`;
        } else {
          const reason = `wg show failed: ${errorText(err)}`;
          const live = { running: true, mode: this.runningMode, adopted: this.adopted };
          return { ...base(), ...live, reason, peers: configured() };
        }
      }
    }
    return { ...base(), running: false, mode: null, adopted: false, reason: this.reason, peers: configured() };
  }

  // ---- internals ----

  private forwardingStatus(): NonNullable<WireGuardStatus['forwarding']> {
    if (!this.forwardBetweenPeers) return { state: 'off', reason: null };
    return this.forwardingProblem ? { state: 'failed', reason: this.forwardingProblem } : { state: 'on', reason: null };
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private render(peers: WgPeer[]): string {
    return renderWgConfig({ privateKey: this.privateKey, listenPort: this.listenPort, peers });
  }

  /** Returns undefined when up, else why not. Leaves nothing half-made behind on failure. */
  private async bringUp(): Promise<string | undefined> {
    if (this.mode === 'off') return 'disabled by configuration (wireguard mode "off")';
    const wg = findExecutable('wg');
    const ip = findExecutable('ip');
    if (!wg) return "'wg' is not installed (Debian package wireguard-tools)";
    if (!ip) return "'ip' is not installed (Debian package iproute2)";

    // another data dir's cell holds this interface: never take it over
    try {
      this.owner?.assertMayTake();
    } catch (err) {
      return errorText(err);
    }
    // this data dir's VPN ran on another interface (the name or namespace changed since): end that one
    const previous = this.owner?.local();
    if (this.owner && previous && (previous.interface !== this.name || previous.netns !== (this.netns ?? null))) {
      try {
        const done = await shutdownRecordedInterface(this.owner.dataDir, this.owner.runDir);
        this.log.info('took down the interface of an earlier configuration', { interface: previous.interface, done });
      } catch (err) {
        this.log.warn('could not take down the interface of an earlier configuration', {
          interface: previous.interface,
          error: errorText(err),
        });
      }
    }
    let created = false;
    this.adopted = false;
    this.goPid = null;
    try {
      if (await this.interfaceExists()) {
        // Left up by this data dir's last run (a restart keeps the tunnels), or by a crash: adopt it if WireGuard.
        try {
          await this.runner.run(wg, ['show', this.name, 'public-key']);
        } catch {
          return `an interface named ${this.name} already exists and is not a WireGuard interface`;
        }
        const local = this.owner?.local();
        const mine = local && local.interface === this.name && local.netns === (this.netns ?? null);
        const recorded = mine ? local : undefined;
        this.runningMode = recorded?.mode ?? 'existing';
        this.goPid = recorded?.wireguard_go_pid ?? null;
        this.adopted = true;
      } else {
        const kernelProblem = this.mode === 'userspace' ? 'not tried (mode "userspace")' : await this.createKernel(ip);
        if (kernelProblem === undefined) {
          this.runningMode = 'kernel';
        } else {
          if (this.mode === 'kernel') return `kernel WireGuard unavailable: ${kernelProblem}`;
          const userspaceProblem = await this.createUserspace(wg);
          if (userspaceProblem)
            return `kernel WireGuard unavailable (${kernelProblem}); wireguard-go: ${userspaceProblem}`;
          this.runningMode = 'userspace';
          this.goPid = this.child?.pid ?? null;
        }
        created = true;
      }
      if (this.adopted) await this.convergeAdopted();
      else await this.syncconf();
      await this.runner.run(ip, ['address', 'replace', this.address, 'dev', this.name]);
      if (this.adopted) await this.dropOtherAddresses(ip);
      await this.runner.run(ip, ['link', 'set', 'dev', this.name, 'up']);
      if (this.forwardBetweenPeers) {
        this.forwardingProblem = (await allowPeerForwarding(this.runner, this.name)) ?? null;
        if (this.forwardingProblem) {
          const reason = this.forwardingProblem;
          this.log.warn('peers cannot reach each other through the cell', { interface: this.name, reason });
        }
      }
      try {
        this.owner?.claim(this.runningMode ?? 'existing', this.goPid);
      } catch (err) {
        const error = errorText(err);
        this.log.warn('could not record the owner of the wireguard interface', { interface: this.name, error });
      }
      return undefined;
    } catch (err) {
      const problem = `could not configure ${this.name}: ${errorText(err)}`;
      if (created || this.child) await this.tearDown().catch(() => undefined);
      this.runningMode = null;
      return problem;
    }
  }

  /** An adopted interface carries only the cell's address (the subnet may have changed since it was made). */
  private async dropOtherAddresses(ip: string): Promise<void> {
    const shown = (await this.runner.run(ip, ['-o', '-4', 'address', 'show', 'dev', this.name])).stdout;
    for (const [, cidr] of shown.matchAll(/\binet (\S+)/g)) {
      if (cidr !== this.address) await this.runner.run(ip, ['address', 'del', cidr!, 'dev', this.name]);
    }
  }

  private async createKernel(ip: string): Promise<string | undefined> {
    try {
      await this.runner.run(ip, ['link', 'add', 'dev', this.name, 'type', 'wireguard']);
      return undefined;
    } catch (err) {
      return errorText(err);
    }
  }

  /**
   * Starts wireguard-go, again if it dies at start: once in CI it exited with "Failed to listen on
   * uapi socket: no such file or directory" (its control socket gone between creating and watching
   * it) and the same start a moment later worked. A cell at boot should not stay without its VPN
   * for a transient like that. A child that hangs is not retried: it already had its full timeout.
   */
  private async createUserspace(wg: string): Promise<string | undefined> {
    const wireguardGo = findExecutable('wireguard-go');
    if (!wireguardGo) return 'not installed (Debian package wireguard-go)';
    if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing (no TUN support here)';
    for (let attempt = 1; ; attempt++) {
      const problem = await this.spawnUserspace(wireguardGo, wg);
      if (!problem?.startsWith(EXITED_AT_START) || attempt >= this.startAttempts) {
        return problem && attempt > 1 ? `${problem} (attempt ${attempt} of ${this.startAttempts})` : problem;
      }
      this.log.warn('wireguard-go exited at start; trying again', { interface: this.name, attempt, reason: problem });
      await sleep(250 * attempt);
    }
  }

  /** One start of wireguard-go: undefined once its control socket answers, else why not. */
  private async spawnUserspace(wireguardGo: string, wg: string): Promise<string | undefined> {
    // -f: no daemonizing of its own, so that its pid is the one we spawn and record, and an exit at
    // start is ours to see. detached: a session of its own, so it outlives the cell and no signal to
    // the cell's process group (a terminal's Ctrl-C) reaches it. Its output goes to a log file.
    // WG_PROCESS_FOREGROUND=1 also silences its "use the kernel module" banner, which would bury the real error.
    mkdirSync(this.configDir, { recursive: true, mode: 0o700 });
    const logFd = openSync(this.logFile, 'w', 0o600);
    let spawnError = '';
    let child: ChildProcess;
    try {
      child = this.runner.spawn(
        wireguardGo,
        ['-f', this.name],
        { WG_PROCESS_FOREGROUND: '1' },
        {
          detached: true,
          stdio: ['ignore', logFd, logFd],
        },
      );
    } finally {
      closeSync(logFd);
    }
    this.child = child;
    this.childExited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        spawnError = ` ${err.message}`;
        resolve();
      });
      child.once('exit', (code, signal) => {
        if (this.child === child) this.child = undefined;
        if (!this.stopping && this.runningMode === 'userspace') {
          this.runningMode = null;
          this.reason = `wireguard-go exited unexpectedly (${code ?? signal}): ${this.output()}`;
          this.log.error('wireguard-go exited', { interface: this.name, reason: this.reason });
        }
        resolve();
      });
    });
    // Ready when its control socket answers `wg show`.
    const deadline = Date.now() + this.startTimeoutMs;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null || !this.child) {
        const said = this.output() + spawnError || 'no output';
        return `${EXITED_AT_START} (${child.exitCode ?? child.signalCode}): ${said}`;
      }
      try {
        await this.runner.run(wg, ['show', this.name, 'public-key'], 2_000);
        return undefined;
      } catch {
        await sleep(50);
      }
    }
    await this.killChild();
    return `did not open its control socket within ${this.startTimeoutMs} ms: ${this.output() || 'no output'}`;
  }

  /** The tail of wireguard-go's log, for a one-line reason. */
  private output(): string {
    try {
      return outputTail(readFileSync(this.logFile, 'utf8').slice(-4000));
    } catch {
      return '';
    }
  }

  /** At bring-up: the interface's own key and port, and every peer. */
  private async syncconf(): Promise<void> {
    const wg = wgPath();
    const text = this.render([...this.peers.values()]);
    await this.withConfigFile(text, (file) => this.runner.run(wg, ['syncconf', this.name, file], 120_000));
  }

  /**
   * An adopted interface is converged like an apply (syncPeers): only the peers that differ change,
   * and its key and listen port are set only when they differ (wireguard-go reopens its socket when
   * the port is set, and packets arriving meanwhile are lost: sync.ts). A restart of the cell with
   * nothing changed touches nothing.
   */
  private async convergeAdopted(): Promise<void> {
    const live = parseWgShowDump(await this.readDump());
    if (live.publicKey !== this.publicKey || live.listenPort !== this.listenPort) {
      const wg = wgPath();
      await this.withConfigFile(`${this.privateKey}\n`, (file) =>
        this.runner.run(wg, ['set', this.name, 'listen-port', String(this.listenPort), 'private-key', file]),
      );
    }
    await this.syncPeers();
  }

  /**
   * Once up: only the peers that differ from the live interface change (sync.ts says why not
   * `wg syncconf`). Removals first, so that an address moving to a new peer is free for it.
   */
  private async syncPeers(): Promise<PeerSyncPlan> {
    const plan = planPeerSync([...this.peers.values()], await this.readDump());
    await this.removePeers(plan.remove);
    if (plan.upsert.length) await this.addconf(renderWgPeers(plan.upsert));
    return plan;
  }

  /** `wg set <iface> peer K remove …`, in chunks. */
  private async removePeers(keys: string[]): Promise<void> {
    const wg = wgPath();
    for (let i = 0; i < keys.length; i += REMOVE_PER_COMMAND) {
      const args = keys.slice(i, i + REMOVE_PER_COMMAND).flatMap((key) => ['peer', key, 'remove']);
      await this.runner.run(wg, ['set', this.name, ...args], 120_000);
    }
  }

  /** `wg addconf` of rendered [Peer] sections: adds or updates those peers, nothing else. */
  private async addconf(peersText: string): Promise<void> {
    const wg = wgPath();
    await this.withConfigFile(peersText, (file) => this.runner.run(wg, ['addconf', this.name, file], 120_000));
  }

  /** `wg show <iface> dump`: the live interface, its keys included (never quoted in an error). */
  private async readDump(): Promise<string> {
    return (await this.runner.run(wgPath(), ['show', this.name, 'dump'], 30_000)).stdout;
  }

  /**
   * Hands `text` (it holds keys) to `wg` as a file. Not /dev/stdin: Node's child stdio is a socket,
   * which wg cannot fopen. A 0600 file in a 0700 dir in RAM, removed as soon as wg returns (or
   * fails), is the nearest to wg-quick's <(…).
   */
  private async withConfigFile(text: string, use: (file: string) => Promise<unknown>): Promise<void> {
    const dir = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'pic-wg-'));
    try {
      const file = join(dir, `${this.name}.conf`);
      await writeFile(file, text, { mode: 0o600, flag: 'wx' });
      await use(file);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private async interfaceExists(): Promise<boolean> {
    const ip = findExecutable('ip');
    if (!ip) return false;
    try {
      await this.runner.run(ip, ['link', 'show', 'dev', this.name]);
      return true;
    } catch {
      return false;
    }
  }

  /** Deletes the link (wireguard-go exits when its device goes), then makes sure the child is gone. */
  private async tearDown(): Promise<void> {
    const ip = findExecutable('ip');
    if (ip && (await this.interfaceExists())) {
      try {
        await this.runner.run(ip, ['link', 'delete', 'dev', this.name]);
      } catch (err) {
        this.log.warn('could not delete wireguard interface', { interface: this.name, error: errorText(err) });
      }
    }
    await this.killChild();
    if (this.forwardBetweenPeers) await removePeerForwarding(this.runner, this.name);
    // an adopted wireguard-go is not our child: it exits when its device goes; make sure it did
    if (this.adopted && this.goPid !== null) await endWireguardGo(this.goPid, this.name);
    this.goPid = null;
    this.adopted = false;
    try {
      this.owner?.release();
    } catch (err) {
      const error = errorText(err);
      this.log.warn('could not clear the owner of the wireguard interface', { interface: this.name, error });
    }
  }

  private async killChild(): Promise<void> {
    const child = this.child;
    if (!child || !this.childExited) return;
    const exited = this.childExited;
    if (await settlesWithin(exited, 2_000)) return;
    child.kill('SIGTERM');
    if (await settlesWithin(exited, 3_000)) return;
    child.kill('SIGKILL');
    await exited;
  }
}

const EXITED_AT_START = 'exited at start';

const byKey = (peers: WgPeer[]) => new Map(peers.map((p) => [p.publicKey, p]));

/** What a full apply's plan changed: peers added that were missing, removed, and updated in place. */
function describePlan(plan: PeerSyncPlan): NonNullable<ApplyResult['changed']> {
  const missing = new Set(plan.missing);
  const upserted = new Set(plan.upsert.map((p) => p.publicKey));
  return {
    added: plan.missing,
    removed: plan.remove.filter((key) => !upserted.has(key)),
    updated: [...upserted].filter((key) => !missing.has(key)),
  };
}

/**
 * The explicit end of a data dir's VPN while its cell is stopped (`npm run vpn -- down`): deletes
 * the interface its owner record names, ends its wireguard-go, and clears the record. An interface
 * that meanwhile belongs to another data dir is left alone. Returns what it did, for the admin.
 */
export async function shutdownRecordedInterface(dataDir: string, runDir?: string): Promise<string> {
  const record = InterfaceOwner.recorded(dataDir);
  if (!record) return 'no WireGuard interface is recorded for this data dir: nothing to take down';
  const owner = new InterfaceOwner(dataDir, record.interface, record.netns, runDir);
  const where = `${record.interface}${record.netns ? ` (network namespace ${record.netns})` : ''}`;
  const holder = owner.check();
  if (holder.kind === 'other_live' || holder.kind === 'other_stopped') {
    owner.release();
    return `${where} belongs to the data dir ${holder.record.data_dir} now: left it alone, forgot this one's record`;
  }
  const runner = new CommandRunner(record.netns ?? undefined);
  const ip = findExecutable('ip');
  if (!ip) throw new Error("'ip' is not installed (Debian package iproute2)");
  let existed = true;
  try {
    await runner.run(ip, ['link', 'show', 'dev', record.interface]);
  } catch {
    existed = false;
  }
  if (existed) await runner.run(ip, ['link', 'delete', 'dev', record.interface]);
  if (record.wireguard_go_pid !== null) await endWireguardGo(record.wireguard_go_pid, record.interface);
  await removePeerForwarding(runner, record.interface);
  owner.release();
  return existed ? `took ${where} down` : `${where} was not up; cleared its record`;
}

/**
 * Waits for the wireguard-go of interface `name` (its device is gone) to exit, and ends it if it
 * does not. Only while that pid still is `wireguard-go … <name>`: a pid reused since is left alone.
 */
export async function endWireguardGo(pid: number, name: string): Promise<void> {
  const isWireguardGo = () => {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return args.some((a) => a.endsWith('wireguard-go')) && args.includes(name);
    } catch {
      return false;
    }
  };
  for (const [signal, waitMs] of [
    [null, 2_000],
    ['SIGTERM', 3_000],
    ['SIGKILL', 1_000],
  ] as const) {
    if (!isAlive(pid) || !isWireguardGo()) return;
    if (signal) process.kill(pid, signal);
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline && isAlive(pid) && isWireguardGo()) await sleep(50);
  }
}
/** Public keys per `wg set … peer K remove …` call: far below the kernel's limit on arguments. */
const REMOVE_PER_COMMAND = 500;

function wgPath(): string {
  const wg = findExecutable('wg');
  if (!wg) throw new Error("'wg' is missing");
  return wg;
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function errorText(err: unknown): string {
  if (err instanceof CommandError) return err.message;
  return redactKeys(err instanceof Error ? err.message : String(err));
}
