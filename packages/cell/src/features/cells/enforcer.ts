/**
 * Routes and firewall of the links, in the namespace of the cell's WireGuard interface:
 * - each linked cell's subnet is routed into the interface (`ip route replace … proto 177`: the
 *   protocol number marks the routes as this module's, so stale ones can be found and removed);
 * - one iptables chain of the cell's own, PIC-CELLS, jumped to from INPUT and FORWARD for traffic
 *   coming in on the interface, says what each linked cell's subnet may reach here:
 *     none       nothing but peer-sync from the linked cell's own address to this cell's sync port;
 *     cell_only  this cell's tunnel address (not this cell's peers);
 *     services   the same as cell_only for now (services are reached on the cell's address).
 * Every apply rebuilds the chain from the links table (idempotent); with no links the chain and
 * its jumps are removed. Commands run through execFile with argument arrays, never a shell.
 */
import { cellAddress } from '../wireguard/addresses.js';
import { CommandRunner, findExecutable } from '../wireguard/commands.js';
import type { Logger } from '../../lib/logger.js';
import type { LinkEnforcer } from './service.js';
import type { Policy } from './schema.js';

export const CHAIN = 'PIC-CELLS';
export const ROUTE_PROTO = '177';

export interface FirewallOptions {
  iface: string;
  netns?: string;
  syncPort: number;
  logger: Logger;
  /** wireguard.mode off: no interface, so no routes or rules either. */
  off?: boolean;
}

export class LinkFirewall implements LinkEnforcer {
  private readonly runner: CommandRunner;
  private readonly ip = findExecutable('ip');
  private readonly iptables = findExecutable('iptables');

  constructor(private readonly o: FirewallOptions) {
    this.runner = new CommandRunner(o.netns);
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
  static rules(links: Array<{ subnet: string; policy: Policy }>, ownSubnet: string, syncPort: number): string[][] {
    const me = cellAddress(ownSubnet);
    const rules: string[][] = [['-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT']];
    for (const link of links) {
      const other = cellAddress(link.subnet);
      rules.push(['-s', `${other}/32`, '-d', `${me}/32`, '-p', 'tcp', '--dport', String(syncPort), '-j', 'ACCEPT']);
      if (link.policy.mode !== 'none') rules.push(['-s', link.subnet, '-d', `${me}/32`, '-j', 'ACCEPT']);
      rules.push(['-s', link.subnet, '-j', 'DROP']);
    }
    return rules;
  }

  async apply(links: Array<{ name: string; subnet: string; policy: Policy }>, ownSubnet: string): Promise<void> {
    const why = this.unavailable();
    if (why) {
      this.o.logger.debug('link routes and firewall not applied', { reason: why });
      return;
    }
    await this.applyRoutes(links.map((l) => l.subnet));
    if (links.length === 0) return this.removeChain();
    if (!(await this.iptOk(['-n', '-L', CHAIN]))) await this.ipt(['-N', CHAIN]);
    await this.ipt(['-F', CHAIN]);
    for (const rule of LinkFirewall.rules(links, ownSubnet, this.o.syncPort)) await this.ipt(['-A', CHAIN, ...rule]);
    for (const hook of ['INPUT', 'FORWARD']) {
      const jump = [hook, '-i', this.o.iface, '-j', CHAIN];
      if (!(await this.iptOk(['-C', ...jump]))) await this.ipt(['-I', ...jump]);
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

  private async applyRoutes(subnets: string[]): Promise<void> {
    const ip = this.ip!;
    let current: string[] = [];
    try {
      const { stdout } = await this.runner.run(ip, ['-o', 'route', 'show', 'dev', this.o.iface, 'proto', ROUTE_PROTO]);
      current = stdout
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[0]!)
        .filter(Boolean);
    } catch {
      return; // no interface (yet): nothing to route into
    }
    for (const subnet of subnets) {
      await this.runner.run(ip, ['route', 'replace', subnet, 'dev', this.o.iface, 'proto', ROUTE_PROTO]);
    }
    for (const stale of current.filter((c) => !subnets.includes(c))) {
      await this.runner
        .run(ip, ['route', 'del', stale, 'dev', this.o.iface, 'proto', ROUTE_PROTO])
        .catch(() => undefined);
    }
  }
}
