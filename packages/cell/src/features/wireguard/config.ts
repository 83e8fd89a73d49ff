/**
 * WireGuard config text, both dialects:
 * - the `wg` format that `wg setconf` / `wg syncconf` read (the cell's interface). It has no
 *   Address, DNS or MTU: those are wg-quick's and `wg` rejects them.
 * - the `wg-quick` format a peer imports (file or QR code), and a parser for it.
 * Every value is validated before it becomes a line, so nothing (a newline, a second key) can be
 * smuggled into a config. Errors name the field, never a key's value.
 */
import { isIPv6 } from 'node:net';
import { endpointProblem, isDnsName, parseCidr, parseIPv4 } from '../../lib/net.js';
import { isWireGuardKey } from './keys.js';

/** A peer as both dialects write it under [Peer]. */
export interface WgPeer {
  publicKey: string;
  presharedKey?: string;
  /** host:port; a server usually leaves it out (the peer roams), a client names the cell. */
  endpoint?: string;
  /** CIDRs routed to this peer (server side: the peer's own address, e.g. 10.8.0.2/32). */
  allowedIps: string[];
  /** Seconds between keepalives; 0 or absent means off. */
  persistentKeepalive?: number;
}

/** The `wg setconf` / `wg syncconf` config of one interface. */
export interface WgConfig {
  privateKey: string;
  listenPort?: number;
  peers: WgPeer[];
}

/** [Interface] of a wg-quick config. */
export interface WgQuickInterface {
  privateKey: string;
  /** Interface addresses with prefix, e.g. 10.8.0.2/32 (a bare address means /32). */
  addresses: string[];
  /** DNS servers (IP addresses) and search domains. */
  dns: string[];
  listenPort?: number;
  mtu?: number;
}

export interface WgQuickConfig {
  interface: WgQuickInterface;
  peers: WgPeer[];
}

/** The result of parsing: the config, plus wg-quick keys that were present but are never applied. */
export interface ParsedWgQuickConfig extends WgQuickConfig {
  /** e.g. PostUp, Table: hooks run shell commands, so the cell never acts on them. */
  ignoredKeys: string[];
}

/** What a peer's client config is made of (the peer's secrets, the cell's public side). */
export interface ClientConfigInput {
  /** The peer's private key. */
  privateKey: string;
  /** The peer's tunnel address, e.g. 10.8.0.2 or 10.8.0.2/32. */
  address: string;
  dns?: string[];
  mtu?: number;
  /** The cell's public key. */
  cellPublicKey: string;
  presharedKey?: string;
  /** Where the phone reaches the cell: host:port. */
  endpoint: string;
  /** What the client sends through the tunnel: the cell subnet (split) or 0.0.0.0/0 (full). */
  allowedIps: string[];
  /** Default 25 s: keeps NAT mappings open so the cell can reach a phone behind NAT. */
  persistentKeepalive?: number;
}

export class WireGuardConfigError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
    this.name = 'WireGuardConfigError';
  }
}

// ---- validators (also exported for schema-level checks elsewhere) ----

export function isIpAddress(text: string): boolean {
  return parseIPv4(text) !== undefined || isIPv6(text);
}

/** An IPv4 or IPv6 CIDR (host bits may be set, as `wg` accepts and masks them). */
export function isCidr(text: string): boolean {
  if (parseCidr(text)) return true;
  const m = /^([0-9a-fA-F:.]+)\/(\d{1,3})$/.exec(text);
  return !!m && isIPv6(m[1]!) && Number(m[2]) <= 128 && !/^0\d/.test(m[2]!);
}

const isPort = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 65535;
const isKeepalive = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 65535;
const isMtu = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 576 && (n as number) <= 65535;

function checkKey(value: unknown, field: string): string {
  if (!isWireGuardKey(value)) throw new WireGuardConfigError(field, 'must be a WireGuard key (base64 of 32 bytes)');
  return value;
}

function checkList(values: unknown, field: string, ok: (s: string) => boolean, what: string): string[] {
  if (!Array.isArray(values)) throw new WireGuardConfigError(field, 'must be a list');
  values.forEach((v, i) => {
    if (typeof v !== 'string' || !ok(v))
      throw new WireGuardConfigError(`${field}[${i}]`, `${JSON.stringify(v)} is not ${what}`);
  });
  return values as string[];
}

function checkEndpoint(value: unknown, field: string): string {
  const problem = typeof value === 'string' ? endpointProblem(value) : 'must be a string';
  if (problem) throw new WireGuardConfigError(field, problem);
  return value as string;
}

const isInterfaceAddress = (s: string): boolean => isIpAddress(s) || isCidr(s);
const isDnsEntry = (s: string): boolean => isIpAddress(s) || isDnsName(s);

function checkPeer(peer: WgPeer, field: string): void {
  checkKey(peer.publicKey, `${field}.publicKey`);
  if (peer.presharedKey !== undefined) checkKey(peer.presharedKey, `${field}.presharedKey`);
  if (peer.endpoint !== undefined) checkEndpoint(peer.endpoint, `${field}.endpoint`);
  checkList(peer.allowedIps, `${field}.allowedIps`, isCidr, 'a CIDR');
  if (peer.persistentKeepalive !== undefined && !isKeepalive(peer.persistentKeepalive)) {
    throw new WireGuardConfigError(`${field}.persistentKeepalive`, 'must be an integer 0-65535');
  }
}

function checkWgQuick(config: WgQuickConfig): void {
  const i = config.interface;
  checkKey(i.privateKey, 'interface.privateKey');
  checkList(i.addresses, 'interface.addresses', isInterfaceAddress, 'an IP address or CIDR');
  checkList(i.dns, 'interface.dns', isDnsEntry, 'an IP address or DNS name');
  if (i.listenPort !== undefined && !isPort(i.listenPort))
    throw new WireGuardConfigError('interface.listenPort', 'must be 1-65535');
  if (i.mtu !== undefined && !isMtu(i.mtu)) throw new WireGuardConfigError('interface.mtu', 'must be 576-65535');
  config.peers.forEach((p, n) => {
    checkPeer(p, `peers[${n}]`);
  });
}

// ---- rendering ----

function peerLines(peer: WgPeer, keepaliveOff = false): string[] {
  const lines = ['[Peer]', `PublicKey = ${peer.publicKey}`];
  if (peer.presharedKey !== undefined) lines.push(`PresharedKey = ${peer.presharedKey}`);
  if (peer.endpoint !== undefined) lines.push(`Endpoint = ${peer.endpoint}`);
  if (peer.allowedIps.length) lines.push(`AllowedIPs = ${peer.allowedIps.join(', ')}`);
  if (peer.persistentKeepalive) lines.push(`PersistentKeepalive = ${peer.persistentKeepalive}`);
  else if (keepaliveOff) lines.push('PersistentKeepalive = 0');
  return lines;
}

/**
 * Peer sections only, for `wg addconf`: it adds or updates these peers and leaves the interface's
 * own settings and every other peer alone. Keepalive is always written (0 = off), so a peer that
 * had one and no longer does is updated too. AllowedIPs, when given, replace the peer's list.
 */
export function renderWgPeers(peers: WgPeer[]): string {
  return peers
    .map((peer, n) => {
      checkPeer(peer, `peers[${n}]`);
      return `${peerLines(peer, true).join('\n')}\n`;
    })
    .join('\n');
}

/**
 * The `wg` format for `wg setconf` / `wg syncconf`. Peers are written in the order given. Throws
 * WireGuardConfigError on the first invalid value. Built as one array join: 10,000 peers take a few ms.
 */
export function renderWgConfig(config: WgConfig): string {
  checkKey(config.privateKey, 'privateKey');
  if (config.listenPort !== undefined && !isPort(config.listenPort))
    throw new WireGuardConfigError('listenPort', 'must be 1-65535');
  const lines = ['[Interface]', `PrivateKey = ${config.privateKey}`];
  if (config.listenPort !== undefined) lines.push(`ListenPort = ${config.listenPort}`);
  config.peers.forEach((peer, n) => {
    checkPeer(peer, `peers[${n}]`);
    lines.push('', ...peerLines(peer));
  });
  return `${lines.join('\n')}\n`;
}

/** A full wg-quick config (what a phone or laptop imports). */
export function renderWgQuickConfig(config: WgQuickConfig): string {
  checkWgQuick(config);
  const i = config.interface;
  const lines = ['[Interface]', `PrivateKey = ${i.privateKey}`];
  if (i.addresses.length) lines.push(`Address = ${i.addresses.join(', ')}`);
  if (i.dns.length) lines.push(`DNS = ${i.dns.join(', ')}`);
  if (i.listenPort !== undefined) lines.push(`ListenPort = ${i.listenPort}`);
  if (i.mtu !== undefined) lines.push(`MTU = ${i.mtu}`);
  for (const peer of config.peers) lines.push('', ...peerLines(peer));
  return `${lines.join('\n')}\n`;
}

/** A peer's client config as a structure: its own key and address, the cell as its one [Peer]. */
export function clientConfig(input: ClientConfigInput): WgQuickConfig {
  const address =
    parseIPv4(input.address) !== undefined || isIPv6(input.address)
      ? `${input.address}/${isIPv6(input.address) ? 128 : 32}`
      : input.address;
  return {
    interface: {
      privateKey: input.privateKey,
      addresses: [address],
      dns: input.dns ?? [],
      ...(input.mtu !== undefined ? { mtu: input.mtu } : {}),
    },
    peers: [
      {
        publicKey: input.cellPublicKey,
        ...(input.presharedKey !== undefined ? { presharedKey: input.presharedKey } : {}),
        endpoint: input.endpoint,
        allowedIps: input.allowedIps,
        persistentKeepalive: input.persistentKeepalive ?? 25,
      },
    ],
  };
}

/** A peer's full wg-quick config text (the file and the QR code carry exactly this). */
export function renderClientConfig(input: ClientConfigInput): string {
  return renderWgQuickConfig(clientConfig(input));
}

/** The `wg setconf` part of a wg-quick config (drops Address, DNS, MTU), as `wg-quick strip` does. */
export function toWgConfig(config: WgQuickConfig): WgConfig {
  return {
    privateKey: config.interface.privateKey,
    ...(config.interface.listenPort !== undefined ? { listenPort: config.interface.listenPort } : {}),
    peers: config.peers,
  };
}

// ---- parsing ----

/** wg-quick keys that are valid but that the cell never applies (hooks run shell commands). */
const IGNORED_INTERFACE_KEYS = new Set(['table', 'fwmark', 'saveconfig', 'preup', 'postup', 'predown', 'postdown']);

const splitList = (value: string): string[] =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function parseInteger(value: string, field: string): number {
  if (!/^\d{1,5}$/.test(value)) throw new WireGuardConfigError(field, 'must be a whole number');
  return Number(value);
}

/**
 * Parses a wg-quick config (sections and keys case-insensitive, `#` comments, comma lists, repeated
 * Address/DNS/AllowedIPs lines add up). Throws WireGuardConfigError with the line number on anything
 * it does not understand, and validates the result as strictly as the renderers do.
 */
export function parseWgQuickConfig(text: string): ParsedWgQuickConfig {
  let section: 'none' | 'interface' | 'peer' = 'none';
  let iface: (Partial<WgQuickInterface> & { addresses: string[]; dns: string[] }) | undefined;
  const peers: Array<Partial<WgPeer> & { allowedIps: string[] }> = [];
  const ignoredKeys: string[] = [];
  const seen = new Set<string>();

  text.split(/\r?\n/).forEach((rawLine, index) => {
    const where = `line ${index + 1}`;
    const line = rawLine.replace(/#.*$/, '').trim();
    if (!line) return;
    const header = /^\[\s*([A-Za-z]+)\s*\]$/.exec(line);
    if (header) {
      const name = header[1]!.toLowerCase();
      seen.clear();
      if (name === 'interface') {
        if (iface) throw new WireGuardConfigError(where, 'a second [Interface] section');
        section = 'interface';
        iface = { addresses: [], dns: [] };
      } else if (name === 'peer') {
        section = 'peer';
        peers.push({ allowedIps: [] });
      } else {
        throw new WireGuardConfigError(where, `unknown section [${header[1]}]`);
      }
      return;
    }
    const kv = /^([A-Za-z]+)\s*=\s*(.*)$/.exec(line);
    if (!kv) throw new WireGuardConfigError(where, 'expected "Key = Value" or a [Section]');
    const key = kv[1]!.toLowerCase();
    const value = kv[2]!.trim();
    const field = `${where} (${kv[1]})`;
    const repeatable = key === 'address' || key === 'dns' || key === 'allowedips';
    if (!repeatable && !IGNORED_INTERFACE_KEYS.has(key)) {
      if (seen.has(key)) throw new WireGuardConfigError(field, 'given twice in one section');
      seen.add(key);
    }
    if (section === 'interface' && iface) {
      if (key === 'privatekey') iface.privateKey = value;
      else if (key === 'address') iface.addresses.push(...splitList(value));
      else if (key === 'dns') iface.dns.push(...splitList(value));
      else if (key === 'listenport') iface.listenPort = parseInteger(value, field);
      else if (key === 'mtu') iface.mtu = parseInteger(value, field);
      else if (IGNORED_INTERFACE_KEYS.has(key)) ignoredKeys.push(kv[1]!);
      else throw new WireGuardConfigError(field, 'unknown [Interface] key');
    } else if (section === 'peer') {
      const peer = peers[peers.length - 1]!;
      if (key === 'publickey') peer.publicKey = value;
      else if (key === 'presharedkey') peer.presharedKey = value;
      else if (key === 'endpoint') peer.endpoint = value;
      else if (key === 'allowedips') peer.allowedIps.push(...splitList(value));
      else if (key === 'persistentkeepalive')
        peer.persistentKeepalive = value === 'off' ? 0 : parseInteger(value, field);
      else throw new WireGuardConfigError(field, 'unknown [Peer] key');
    } else {
      throw new WireGuardConfigError(field, 'a key outside any section');
    }
  });

  if (!iface) throw new WireGuardConfigError('interface', 'the [Interface] section is missing');
  if (iface.privateKey === undefined) throw new WireGuardConfigError('interface.privateKey', 'is missing');
  const config: ParsedWgQuickConfig = {
    interface: iface as WgQuickInterface,
    peers: peers.map((p, n) => {
      if (p.publicKey === undefined) throw new WireGuardConfigError(`peers[${n}].publicKey`, 'is missing');
      return p as WgPeer;
    }),
    ignoredKeys,
  };
  checkWgQuick(config);
  return config;
}
