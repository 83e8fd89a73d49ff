import { useQuery } from '@tanstack/react-query';
import { api } from '../api';
import { ErrorBox, LineChart, Loading, Page, formatBytes, formatTime } from '../ui';

interface Subsystem {
  state: string;
  reason?: string;
  error?: string;
  [k: string]: unknown;
}
interface Status {
  status: string;
  version: string;
  uptime_s: number;
  subsystems: Record<string, Subsystem>;
}
interface Sample {
  ts: string;
  status: string;
  duration_ms: number;
  checks: { memory?: { rss_bytes?: number } };
}
interface WgStatus {
  interface: string;
  running: boolean;
  reason?: string | null;
  listen_port: number | null;
  public_key: string | null;
  address: string | null;
  peers: Array<{
    name: string | null;
    public_key: string;
    online: boolean;
    latest_handshake: string | null;
    rx_bytes: number;
    tx_bytes: number;
  }>;
}

export function Dashboard() {
  const status = useQuery({
    queryKey: ['status'],
    queryFn: () => api.get<Status>('/api/status'),
    refetchInterval: 15_000,
  });
  const history = useQuery({
    queryKey: ['health-history'],
    queryFn: () => api.get<{ samples: Sample[]; interval_s: number }>('/api/health/history?limit=200'),
    refetchInterval: 60_000,
  });
  const wg = useQuery({
    queryKey: ['wg'],
    queryFn: () => api.get<WgStatus>('/api/wireguard/status'),
    refetchInterval: 15_000,
  });

  const samples = [...(history.data?.samples ?? [])].reverse();
  return (
    <Page title="Dashboard">
      <h2>Status</h2>
      <ErrorBox error={status.error} title="Cannot read the status" />
      {status.isPending && <Loading what="the status" />}
      {status.data && (
        <>
          <p>
            Overall: <span className={`badge ${status.data.status}`}>{status.data.status}</span> · version{' '}
            {status.data.version} · up {Math.round(status.data.uptime_s / 60)} min
          </p>
          <ul className="tiles">
            {Object.entries(status.data.subsystems).map(([name, s]) => (
              <li key={name} className="tile">
                <strong>{name}</strong> <span className={`badge ${s.state}`}>{s.state}</span>
                {(s.reason ?? s.error) && <p className="muted">{String(s.reason ?? s.error)}</p>}
              </li>
            ))}
          </ul>
        </>
      )}
      <h2>Health over time</h2>
      <ErrorBox error={history.error} title="Cannot read the health history" />
      {history.data && (
        <>
          <LineChart
            label="Health check duration (ms)"
            format={(v) => `${v.toFixed(1)} ms`}
            series={[
              {
                name: 'duration',
                className: 's1',
                points: samples.map((s) => ({ t: Date.parse(s.ts), v: s.duration_ms })),
              },
            ]}
          />
          <LineChart
            label="Memory of the cell process"
            format={formatBytes}
            series={[
              {
                name: 'rss',
                className: 's2',
                points: samples.map((s) => ({ t: Date.parse(s.ts), v: s.checks.memory?.rss_bytes ?? 0 })),
              },
            ]}
          />
          <p className="muted">
            {samples.filter((s) => s.status !== 'ok').length} of {samples.length} checks not ok; one every{' '}
            {history.data.interval_s} s.
          </p>
        </>
      )}
      <h2>WireGuard</h2>
      <ErrorBox error={wg.error} title="Cannot read the WireGuard state" />
      {wg.data && (
        <>
          <dl className="kv">
            <div>
              <dt>Interface</dt>
              <dd>
                {wg.data.interface}{' '}
                <span className={`badge ${wg.data.running ? 'ok' : 'degraded'}`}>
                  {wg.data.running ? 'running' : 'not running'}
                </span>
              </dd>
            </div>
            {wg.data.reason && (
              <div>
                <dt>Why</dt>
                <dd>{wg.data.reason}</dd>
              </div>
            )}
            <div>
              <dt>Address</dt>
              <dd>{wg.data.address ?? '–'}</dd>
            </div>
            <div>
              <dt>Listen port</dt>
              <dd>{wg.data.listen_port ?? '–'}</dd>
            </div>
            <div>
              <dt>Public key</dt>
              <dd className="mono">{wg.data.public_key ?? '–'}</dd>
            </div>
            <div>
              <dt>Peers online</dt>
              <dd>
                {wg.data.peers.filter((p) => p.online).length} of {wg.data.peers.length}
              </dd>
            </div>
          </dl>
          {wg.data.peers.some((p) => p.online) && (
            <ul>
              {wg.data.peers
                .filter((p) => p.online)
                .map((p) => (
                  <li key={p.public_key}>
                    {p.name ?? p.public_key}: last handshake {formatTime(p.latest_handshake)}, ↓
                    {formatBytes(p.rx_bytes)} ↑{formatBytes(p.tx_bytes)}
                  </li>
                ))}
            </ul>
          )}
        </>
      )}
    </Page>
  );
}
