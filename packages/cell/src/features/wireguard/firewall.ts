/**
 * What the cell needs from the firewall for the traffic it forwards: peers reaching each other
 * through the cell (in on the WireGuard interface, out on it again). Traffic to the cell itself
 * (ping, the API on its WireGuard address) is INPUT and needs nothing here.
 *
 * A plain Docker engine (`dockerd` with its iptables management, the default) turns the FORWARD
 * policy to DROP, and then peer-to-peer traffic dies. So, on the interface's own namespace:
 * - `iptables -I FORWARD -i <if> -o <if> -j ACCEPT`, added only when `iptables -C` does not find
 *   it (idempotent: a restart or an adopted interface adds nothing twice). Docker leaves rules it
 *   did not make alone, and its own chains only act on its bridges.
 * - `net.ipv4.conf.<if>.forwarding=1`: forwarding of what arrives on this interface only, not the
 *   machine-wide ip_forward.
 * Removed again when the VPN is shut down. Commands run with argument arrays, never a shell.
 */
import { type CommandRunner, findExecutable } from './commands.js';

const rule = (iface: string) => ['FORWARD', '-i', iface, '-o', iface, '-j', 'ACCEPT'];

/** Lets peers reach each other through `iface`. Resolves with undefined, or why it could not. */
export async function allowPeerForwarding(
  runner: Pick<CommandRunner, 'run'>,
  iface: string,
): Promise<string | undefined> {
  const iptables = findExecutable('iptables');
  const sysctl = findExecutable('sysctl');
  if (!iptables) return "'iptables' is not installed (Debian package iptables)";
  if (!sysctl) return "'sysctl' is not installed (Debian package procps)";
  try {
    await runner.run(sysctl, ['-q', '-w', `net.ipv4.conf.${iface}.forwarding=1`]);
    try {
      await runner.run(iptables, ['-w', '-C', ...rule(iface)]);
    } catch {
      await runner.run(iptables, ['-w', '-I', ...rule(iface)]);
    }
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Removes the rule (every copy of it); quiet when there is none or no iptables. */
export async function removePeerForwarding(runner: Pick<CommandRunner, 'run'>, iface: string): Promise<void> {
  const iptables = findExecutable('iptables');
  if (!iptables) return;
  for (let i = 0; i < 10; i++) {
    try {
      await runner.run(iptables, ['-w', '-D', ...rule(iface)]);
    } catch {
      return;
    }
  }
}
