/**
 * Routes, firewall and forwarding of the links, in the namespace of the cell's WireGuard interface:
 * - each linked cell's subnet is routed into the interface (`ip route replace … proto 177`: the
 *   protocol number marks the routes as this module's, so stale ones can be found and removed);
 * - the interface forwards (`net.ipv4.conf.<if>.forwarding=1`) while there are links: a linked
 *   cell's packets come in on the interface and leave on it again, to this cell's peers and back.
 *   That is the only forwarding a link needs, so the machine-wide `ip_forward` is left alone;
 * - one iptables chain of the cell's own, PIC-CELLS, jumped to first from INPUT and FORWARD for
 *   traffic coming in on the interface, says what each linked cell's subnet may reach here
 *   (an allow-list: anything not named is dropped):
 *     none       nothing but peer-sync from the linked cell's own address to this cell's sync port;
 *     cell_only  also the cell itself on its tunnel address: ping, its API and its resolver;
 *     services   also the host ports of the named installed services on the tunnel address
 *                (matched on the connection's original destination, so it holds through Docker's DNAT).
 *   Caddy's HTTPS port is not opened to a linked subnet: one port serves every service's
 *   subdomain and the firewall cannot tell them apart.
 * Every apply rebuilds the chain from the links table (idempotent); with no links the chain and
 * its jumps are removed. Commands run through execFile with argument arrays, never a shell.
 */
import { cellAddress } from '../wireguard/addresses.js';
import { CommandRunner, findExecutable } from '../wireguard/commands.js';
import type { Logger } from '../../lib/logger.js';
import type { LinkEnforcer, ServicePort } from './service.js';
import type { Policy } from './schema.js';

export const CHAIN = 'PIC-CELLS';
export const ROUTE_PROTO = '177';

/** The cell's own listeners on its tunnel address that a linked subnet may reach (cell_only and services). */
export interface CellPorts {
  tcp: number[];
  udp: number[];
}

export interface FirewallOptions {
  iface: string;
  netns?: string;
  syncPort: number;
  logger: Logger;
  /** wireguard.mode off: no interface, so no routes or rules either. */
  off?: boolean;
  /** Asked at each apply: the API's port (while it listens on the tunnel) and the resolver's. */
  cellPorts?: () => CellPorts;
}

/** Forwarding on the interface, as `GET /api/status` shows it under `cells.forwarding`. */
export interface ForwardingStatus {
  /** on: set (or found set) for the links; not_needed: no links; failed: could not be set (reason). */
  state: 'on' | 'not_needed' | 'failed';
  setting: string;
  reason: string | null;
}

export interface LinkRuleInput {
  subnet: string;
  policy: Policy;
  /** policy services: the host ports of the named services that are installed. */
  servicePorts?: ServicePort[];
}

export class LinkFirewall implements LinkEnforcer {
  private readonly runner: CommandRunner;
  private readonly ip = findExecutable('ip');
  private readonly iptables = findExecutable('iptables');
  private readonly sysctl = findExecutable('sysctl');
  private forwardingState: ForwardingStatus;

  constructor(private readonly o: FirewallOptions) {
    this.runner = new CommandRunner(o.netns);
    this.forwardingState = { state: 'not_needed', setting: this.forwardingKey, reason: null };
  }

  private get forwardingKey(): string {
    return `net.ipv4.conf.${this.o.iface}.forwarding`;
  }

  forwarding(): ForwardingStatus {
    return { ...this.forwardingState };
  }

  /** Why it cannot run here, or undefined. */
  unavailable(): string | undefined {
    if (this.o.off) return 'WireGuard is off (wireguard.mode: off)';
    if (!this.ip) return "'ip' is not installed (Debian package iproute2)";
    if (!this.iptables) return "'iptables' is not installed (Debian package iptables)";
    if (process.getuid?.() !== 0) return 'not running as root';
    return undefined;
  }

  private ipt(args: string[]) {
    return this.runner.run(this.iptables!, ['-w', '5', ...args]);
  }

  private async iptOk(args: string[]): Promise<boolean> {
    try {
      await this.ipt(args);
      return true;
    } catch {
      return false;
    }
  }

  /** The rules of the chain for these links, in order (without the leading `-A CHAIN`). */
  static rules(links: LinkRuleInput[], ownSubnet: string, syncPort: number, cell: CellPorts = { tcp: [], udp: [] }) {
    const me = `${cellAddress(ownSubnet)}/32`;
    const rules: string[][] = [['-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT']];
    for (const link of links) {
      const from = ['-s', link.subnet];
      const sync = ['-p', 'tcp', '--dport', String(syncPort), '-j', 'ACCEPT'];
      rules.push(['-s', `${cellAddress(link.subnet)}/32`, '-d', me, ...sync]);
      if (link.policy.mode !== 'none') {
        rules.push([...from, '-d', me, '-p', 'icmp', '--icmp-type', 'echo-request', '-j', 'ACCEPT']);
        for (const proto of ['tcp', 'udp'] as const) {
          for (const port of unique(cell[proto])) {
            rules.push([...from, '-d', me, '-p', proto, '--dport', String(port), '-j', 'ACCEPT']);
          }
        }
      }
      if (link.policy.mode === 'services') {
        const seen = new Set<string>();
        for (const p of link.servicePorts ?? []) {
          if (seen.has(`${p.protocol}/${p.port}`)) continue;
          seen.add(`${p.protocol}/${p.port}`);
          const dest = ['-m', 'conntrack', '--ctorigdst', me, '--ctorigdstport', String(p.port)];
          rules.push([...from, '-p', p.protocol, ...dest, '-j', 'ACCEPT']);
        }
      }
      rules.push([...from, '-j', 'DROP']);
    }
    return rules;
  }

  async apply(links: Array<LinkRuleInput & { name: string }>, ownSubnet: string): Promise<void> {
    const why = this.unavailable();
    if (why) {
      this.o.logger.debug('link routes and firewall not applied', { reason: why });
      if (links.length > 0) this.forwardingState = { state: 'failed', setting: this.forwardingKey, reason: why };
      return;
    }
    const up = await this.applyRoutes(links.map((l) => l.subnet));
    await this.applyForwarding(links.length > 0, up);
    if (links.length === 0) return this.removeChain();
    if (!(await this.iptOk(['-n', '-L', CHAIN]))) await this.ipt(['-N', CHAIN]);
    await this.ipt(['-F', CHAIN]);
    const cell = this.o.cellPorts?.() ?? { tcp: [], udp: [] };
    for (const rule of LinkFirewall.rules(links, ownSubnet, this.o.syncPort, cell))
      await this.ipt(['-A', CHAIN, ...rule]);
    for (const hook of ['INPUT', 'FORWARD']) await this.jumpFirst(hook);
  }

  /**
   * The jump must come before anything that accepts: Docker puts its own FORWARD jumps first when
   * it starts (and its chains accept traffic to published ports), so a jump found lower is moved up.
   */
  private async jumpFirst(hook: string): Promise<void> {
    const jump = ['-i', this.o.iface, '-j', CHAIN];
    const { stdout } = await this.ipt(['-S', hook]);
    const first = stdout.split('\n').find((l) => l.startsWith(`-A ${hook} `));
    if (first === `-A ${hook} ${jump.join(' ')}`) return;
    while (await this.iptOk(['-D', hook, ...jump]));
    await this.ipt(['-I', hook, '1', ...jump]);
  }

  /**
   * Links need the interface to forward (in on it, out on it again). Set when it is not; never
   * turned off here (the WireGuard module may want it for peer-to-peer traffic too).
   */
  private async applyForwarding(needed: boolean, interfaceUp: boolean): Promise<void> {
    const setting = this.forwardingKey;
    if (!needed) {
      this.forwardingState = { state: 'not_needed', setting, reason: null };
      return;
    }
    if (!interfaceUp) {
      const reason = `the interface ${this.o.iface} is not up yet`;
      this.forwardingState = { state: 'failed', setting, reason };
      return;
    }
    if (!this.sysctl) {
      const reason = `'sysctl' is not installed (Debian package procps): cannot set ${setting}=1`;
      this.forwardingState = { state: 'failed', setting, reason };
      return;
    }
    try {
      const { stdout } = await this.runner.run(this.sysctl, ['-n', setting]);
      if (stdout.trim() !== '1') {
        await this.runner.run(this.sysctl, ['-q', '-w', `${setting}=1`]);
        this.o.logger.info('forwarding turned on for the links', { setting });
      }
      this.forwardingState = { state: 'on', setting, reason: null };
    } catch (err) {
      const reason = `cannot set ${setting}=1, so linked cells cannot reach this cell's peers: ${String((err as Error).message ?? err)}`;
      if (this.forwardingState.state !== 'failed') this.o.logger.warn('link forwarding not set', { reason });
      this.forwardingState = { state: 'failed', setting, reason };
    }
  }

  private async removeChain(): Promise<void> {
    // no chain, no jumps (iptables cannot jump to a chain that does not exist): one command when unlinked
    if (!(await this.iptOk(['-n', '-L', CHAIN]))) return;
    for (const hook of ['INPUT', 'FORWARD']) {
      while (await this.iptOk(['-D', hook, '-i', this.o.iface, '-j', CHAIN]));
    }
    await this.ipt(['-F', CHAIN]);
    await this.ipt(['-X', CHAIN]);
  }

  /** False when there is no interface (yet): nothing to route into. */
  private async applyRoutes(subnets: string[]): Promise<boolean> {
    const ip = this.ip!;
    let current: string[] = [];
    try {
      const { stdout } = await this.runner.run(ip, ['-o', 'route', 'show', 'dev', this.o.iface, 'proto', ROUTE_PROTO]);
      current = stdout
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[0]!)
        .filter(Boolean);
    } catch {
      return false;
    }
    for (const subnet of subnets) {
      await this.runner.run(ip, ['route', 'replace', subnet, 'dev', this.o.iface, 'proto', ROUTE_PROTO]);
    }
    for (const stale of current.filter((c) => !subnets.includes(c))) {
      await this.runner
        .run(ip, ['route', 'del', stale, 'dev', this.o.iface, 'proto', ROUTE_PROTO])
        .catch(() => undefined);
    }
    return true;
  }
}

function unique(ports: number[]): number[] {
  return [...new Set(ports)];
}
