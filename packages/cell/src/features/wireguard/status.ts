/**
 * Parsing `wg show <iface> dump`. Its first line carries the interface's private key and every peer
 * line its preshared key: parseWgShowDump drops those columns (sync.ts alone compares the
 * preshared keys, through splitWgShowDump), and no error message quotes a line.
 */

export interface WireGuardPeerStatus {
  publicKey: string;
  /** Where the peer was last seen (host:port), or null before its first packet. */
  endpoint: string | null;
  allowedIps: string[];
  /** null until the first handshake. */
  latestHandshake: Date | null;
  rxBytes: number;
  txBytes: number;
  /** Seconds, or null when off. */
  persistentKeepalive: number | null;
}

export interface WgShowDump {
  publicKey: string | null;
  listenPort: number | null;
  peers: WireGuardPeerStatus[];
}

const count = (field: string, what: string, line: number): number => {
  if (!/^\d+$/.test(field)) throw new Error(`wg show dump: line ${line}: ${what} is not a number`);
  return Number(field);
};

type PeerFields = [
  publicKey: string,
  presharedKey: string,
  endpoint: string,
  allowedIps: string,
  handshake: string,
  rx: string,
  tx: string,
  keepalive: string,
];

/**
 * The dump's lines as fields, shapes checked: the interface line (4 fields) and a line per peer
 * (8, the second being its preshared key). Callers decide which columns they keep.
 */
export function splitWgShowDump(text: string): { head: string[]; peers: PeerFields[] } {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const head = lines[0]?.split('\t');
  if (head?.length !== 4) throw new Error('wg show dump: the interface line has an unexpected shape');
  const peers = lines.slice(1).map((line, i) => {
    const f = line.split('\t');
    if (f.length !== 8) throw new Error(`wg show dump: line ${i + 2} has ${f.length} fields, expected 8`);
    return f as PeerFields;
  });
  return { head, peers };
}

export function parseWgShowDump(text: string): WgShowDump {
  const { head, peers: lines } = splitWgShowDump(text);
  const peers = lines.map(
    ([publicKey, , endpoint, allowedIps, handshake, rx, tx, keepalive], i): WireGuardPeerStatus => {
      const n = i + 2;
      const handshakeSeconds = count(handshake, 'latest handshake', n);
      return {
        publicKey,
        endpoint: endpoint === '(none)' ? null : endpoint,
        allowedIps: allowedIps === '(none)' ? [] : allowedIps.split(','),
        latestHandshake: handshakeSeconds === 0 ? null : new Date(handshakeSeconds * 1000),
        rxBytes: count(rx, 'rx bytes', n),
        txBytes: count(tx, 'tx bytes', n),
        persistentKeepalive: keepalive === 'off' ? null : count(keepalive, 'keepalive', n),
      };
    },
  );
  return {
    publicKey: head[1] === '(none)' ? null : head[1]!,
    listenPort: head[2] === '0' ? null : count(head[2]!, 'listen port', 1),
    peers,
  };
}
