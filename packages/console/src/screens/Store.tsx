import { useEffect, useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, seg } from '../api';
import { ConfirmButton, CopyButton, ErrorBox, Loading, Page, formatTime } from '../ui';

interface Refusal {
  code: string;
  reason: string;
}
interface Job {
  id: number;
  service: string;
  kind: string;
  state: string;
  error: string | null;
  created_at: string;
  finished_at: string | null;
}
interface Service {
  id: string;
  name?: string;
  version: string;
  description?: string;
  subdomain?: string;
  capabilities?: string[];
  containers?: Array<{ name: string; image: string; signed: boolean }>;
  verified: boolean;
  refusal?: Refusal;
  in_catalog?: boolean;
  installed: boolean;
  state: string;
  installed_version: string | null;
  update_available?: boolean;
  job: Job | null;
}
interface StoreView {
  catalog: {
    verified: boolean;
    version?: number;
    expires?: string;
    digest?: string;
    signed_by?: string;
    refusal?: Refusal;
    highest_accepted_version: number | null;
  };
  image_verification: string;
  engine: { reachable: boolean; endpoint: string; version?: string; reason?: string; cell_id: string };
  services: Service[];
}

/** What to do about each refusal, as wiki/admin-manage-services.md lists it. */
export const REFUSAL_ADVICE: Record<string, string> = {
  missing_bundle:
    'The catalog (or, in enforce mode, an image) has no signature: get a signed catalog or signed manifest.',
  malformed_bundle: 'The signature file is not a sigstore bundle: the store must re-sign the catalog.',
  untrusted_key:
    'It is signed by a key this cell does not trust: add the key under Vault → Trust keys, ' +
    "only if it really is the store's.",
  signature_mismatch: 'The index changed after it was signed: get the catalog again from the store.',
  malformed_index: 'The index is not a valid index: the store must re-sign it.',
  rollback: 'This index is older than the newest this cell accepted: get the current catalog.',
  expired: 'The index is past its expiry date: the store must re-sign it.',
  digest_mismatch: 'The manifest is not the one the signed index lists: get the catalog again.',
  invalid_manifest: 'The listed manifest is broken: get the catalog again.',
  manifest_mismatch: 'The manifest is of another version than the index lists: get the catalog again.',
  missing_manifest: 'The listed manifest is absent: get the catalog again.',
  image_digest_mismatch: 'The local image is not the pinned one, or not loaded: load the right image.',
  not_listed: 'The catalog has no such service.',
};

function Refused({ refusal, what }: { refusal: Refusal; what: string }) {
  return (
    <div className="error" role="alert">
      <strong>{what} refused</strong> ({refusal.code}): {refusal.reason}
      <p>
        <strong>What to do:</strong>{' '}
        {REFUSAL_ADVICE[refusal.code.replace(/-/g, '_')] ?? 'See the wiki page "Manage services".'}
      </p>
    </div>
  );
}

const INSTALL_STEPS = ['verifying', 'pulling', 'creating', 'starting', 'healthy'];
const TERMINAL = new Set(['healthy', 'removed', 'failed']);

/** Follows a job until it ends: its steps, the current one, and the error if it failed. */
function JobProgress({ jobId, onEnd }: { jobId: number; onEnd: () => void }) {
  const job = useQuery({
    queryKey: ['job', jobId],
    queryFn: () => api.get<{ job: Job }>(`/api/store/jobs/${jobId}`),
    refetchInterval: (q) => (q.state.data && TERMINAL.has(q.state.data.job.state) ? false : 500),
  });
  const state = job.data?.job.state;
  useEffect(() => {
    if (state && TERMINAL.has(state)) onEnd();
  }, [state, onEnd]);
  if (job.error) return <ErrorBox error={job.error} title={`Cannot follow job ${jobId}`} />;
  if (!job.data) return <Loading what={`job ${jobId}`} />;
  const j = job.data.job;
  const steps = j.kind === 'install' ? INSTALL_STEPS : [j.state];
  const at = steps.indexOf(j.state);
  return (
    <div className="job" role="status" aria-live="polite" data-testid={`job-${j.service}`}>
      <p>
        Job {j.id} ({j.kind} {j.service}): <strong data-testid="job-state">{j.state}</strong>
      </p>
      {j.kind === 'install' && (
        <ol className="steps small">
          {steps.map((s, i) => (
            <li
              key={s}
              className={i < at || j.state === 'healthy' ? 'done' : ''}
              aria-current={s === j.state ? 'step' : undefined}
            >
              {s}
            </li>
          ))}
        </ol>
      )}
      {j.error && <ErrorBox error={new Error(j.error)} title="The job failed" />}
    </div>
  );
}

export function Store() {
  const qc = useQueryClient();
  const store = useQuery({ queryKey: ['store'], queryFn: () => api.get<StoreView>('/api/store') });
  const [jobs, setJobs] = useState<Record<string, number>>({});
  const refresh = () => void qc.invalidateQueries({ queryKey: ['store'] });
  const install = useMutation({
    mutationFn: (id: string) =>
      api.post<{ job: Job | null; already_installed?: boolean }>('/api/store/install', { id }),
    onSuccess: (res, id) => {
      if (res.job) setJobs((j) => ({ ...j, [id]: res.job!.id }));
      refresh();
    },
  });
  const remove = useMutation({
    mutationFn: (id: string) => api.post<{ job: Job | null }>('/api/store/remove', { id }),
    onSuccess: (res, id) => {
      if (res.job) setJobs((j) => ({ ...j, [id]: res.job!.id }));
      refresh();
    },
  });

  if (store.isPending) return <Loading what="the store" />;
  if (store.error) return <ErrorBox error={store.error} title="Cannot read the store" />;
  const { catalog, engine, services, image_verification } = store.data;
  return (
    <Page title="Store">
      <section className="card" aria-labelledby="catalog-h">
        <h2 id="catalog-h">Catalog</h2>
        {catalog.verified ? (
          <p>
            <span className="badge ok">verified</span> version {catalog.version}, expires {formatTime(catalog.expires)},
            signed by key{' '}
            <span className="mono" data-testid="signed-by">
              {catalog.signed_by}
            </span>
          </p>
        ) : (
          <Refused refusal={catalog.refusal!} what="The catalog was" />
        )}
        <p className="muted">
          Image verification: {image_verification}. Container engine:{' '}
          {engine.reachable
            ? `reachable (${engine.endpoint}, ${engine.version ?? 'unknown version'})`
            : `not reachable — ${engine.reason}`}
        </p>
      </section>
      <ErrorBox error={install.error} title="Not installed" />
      <ErrorBox error={remove.error} title="Not removed" />
      <ul className="services">
        {services.map((s) => (
          <li key={s.id} className="card service" aria-labelledby={`svc-${s.id}`}>
            <h2 id={`svc-${s.id}`}>
              {s.name ?? s.id} <span className="muted">{s.version}</span>{' '}
              <span className={`badge ${s.verified ? 'ok' : 'degraded'}`}>
                {s.verified ? 'verified' : 'not verified'}
              </span>{' '}
              <span className="badge" data-testid={`state-${s.id}`}>
                {s.state}
              </span>
              {s.update_available && (
                <span className="badge notice">
                  {' '}
                  update available ({s.installed_version} → {s.version})
                </span>
              )}
            </h2>
            {s.description && <p className="desc">{s.description}</p>}
            {s.refusal && <Refused refusal={s.refusal} what="This manifest was" />}
            {s.in_catalog === false && <p className="notice">Installed, but no longer in the catalog.</p>}
            {s.containers && (
              <p className="muted">
                Containers:{' '}
                {s.containers.map((c) => `${c.name} (${c.signed ? 'signed image' : 'unsigned image'})`).join(', ')}
              </p>
            )}
            <div className="actions">
              {!s.installed && s.verified && s.state === 'available' && (
                <button
                  type="button"
                  className="primary"
                  onClick={() => install.mutate(s.id)}
                  disabled={install.isPending}
                >
                  Install {s.name ?? s.id}
                </button>
              )}
              {(s.installed || s.state === 'installed') && (
                <ConfirmButton
                  label={`Remove ${s.name ?? s.id}`}
                  confirm={`Remove ${s.id}? Its data and accounts are kept.`}
                  onConfirm={() => remove.mutate(s.id)}
                />
              )}
            </div>
            {jobs[s.id] !== undefined && <JobProgress jobId={jobs[s.id]!} onEnd={refresh} />}
            {!jobs[s.id] && s.job && !TERMINAL.has(s.job.state) && <JobProgress jobId={s.job.id} onEnd={refresh} />}
            {s.job?.state === 'failed' && !jobs[s.id] && (
              <ErrorBox error={new Error(s.job.error ?? 'failed')} title={`The last ${s.job.kind} failed`} />
            )}
            {s.installed && <InstalledService service={s} />}
          </li>
        ))}
      </ul>
    </Page>
  );
}

interface ServiceStatus {
  installed: boolean;
  healthy?: boolean;
  containers?: Array<{
    name: string;
    state: string;
    running: boolean;
    healthy: boolean | null;
    reason?: string | null;
  }>;
}
interface Account {
  username: string;
  peer: string | null;
  created_at: string;
  in_service: boolean | null;
}
export interface Credential {
  label: string;
  protocol: string;
  security: string;
  host: string;
  port: number;
  username: string;
  password: string;
  path?: string;
}

function InstalledService({ service }: { service: Service }) {
  const qc = useQueryClient();
  const id = service.id;
  const status = useQuery({
    queryKey: ['svc-status', id],
    queryFn: () => api.get<ServiceStatus>(`/api/services/catalog/${seg(id)}/status`),
  });
  const restart = useMutation({
    mutationFn: () => api.post<ServiceStatus>(`/api/services/catalog/${seg(id)}/restart`),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ['svc-status', id] }),
  });
  const hasAccounts = service.capabilities?.includes('accounts');
  return (
    <div className="installed">
      <h3>Status</h3>
      <ErrorBox error={status.error} title="Cannot read the status" />
      {status.data && (
        <ul>
          {(status.data.containers ?? []).map((c) => (
            <li key={c.name}>
              {c.name}: {c.state}
              {c.healthy === true ? ', healthy' : c.healthy === false ? ', unhealthy' : ''}
              {c.reason ? ` — ${c.reason}` : ''}
            </li>
          ))}
        </ul>
      )}
      <button type="button" onClick={() => restart.mutate()} disabled={restart.isPending}>
        {restart.isPending ? 'Restarting…' : `Restart ${id}`}
      </button>
      <ErrorBox error={restart.error} title="Restart failed" />
      {hasAccounts && <Accounts id={id} />}
    </div>
  );
}

function Accounts({ id }: { id: string }) {
  const qc = useQueryClient();
  const key = ['accounts', id];
  const list = useQuery({
    queryKey: key,
    queryFn: () =>
      api.get<{ accounts: Account[]; unmanaged: string[]; service_error: string | null }>(
        `/api/services/catalog/${seg(id)}/accounts`,
      ),
  });
  const [peer, setPeer] = useState('');
  const [shown, setShown] = useState<{ username: string; credentials: Credential[] } | null>(null);
  const create = useMutation({
    mutationFn: () => api.post(`/api/services/catalog/${seg(id)}/accounts`, { peer: peer.trim() }),
    onSuccess: () => {
      setPeer('');
      void qc.invalidateQueries({ queryKey: key });
    },
  });
  const del = useMutation({
    mutationFn: (username: string) => api.delete(`/api/services/catalog/${seg(id)}/accounts/${seg(username)}`),
    onSuccess: () => void qc.invalidateQueries({ queryKey: key }),
  });
  const creds = useMutation({
    mutationFn: (username: string) =>
      api.get<{ username: string; credentials: Credential[] }>(
        `/api/services/catalog/${seg(id)}/accounts/${seg(username)}/credentials`,
      ),
    onSuccess: (res) => setShown(res),
  });
  return (
    <div>
      <h3>Accounts</h3>
      <ErrorBox error={list.error} title="Cannot list the accounts" />
      {list.data?.service_error && (
        <p className="error">The service did not answer for its own list: {list.data.service_error}</p>
      )}
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <label htmlFor={`acct-peer-${id}`}>Give a peer an account</label>
        <input id={`acct-peer-${id}`} value={peer} onChange={(e) => setPeer(e.target.value)} placeholder="peer name" />
        <button type="submit" disabled={create.isPending || !peer.trim()}>
          Create account
        </button>
      </form>
      <ErrorBox error={create.error} title="No account created" />
      <ErrorBox error={del.error} title="Not deleted" />
      <ErrorBox error={creds.error} title="Cannot read the credentials" />
      {list.data && (
        <ul>
          {list.data.accounts.map((a) => (
            <li key={a.username}>
              {a.username} {a.peer && <span className="muted">(peer {a.peer})</span>}
              {a.in_service === false && <span className="badge degraded">missing in the service</span>}{' '}
              <button type="button" className="small" onClick={() => creds.mutate(a.username)}>
                Show credentials
              </button>{' '}
              <ConfirmButton
                label="Delete account"
                confirm={`Delete ${a.username} from ${id}?`}
                onConfirm={() => del.mutate(a.username)}
              />
            </li>
          ))}
          {list.data.accounts.length === 0 && <li className="muted">No accounts yet.</li>}
        </ul>
      )}
      {shown && <CredentialList credentials={shown.credentials} />}
    </div>
  );
}

export function CredentialList({ credentials }: { credentials: Credential[] }) {
  return (
    <>
      {credentials.map((c, i) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: the list is replaced whole on each fetch, never reordered
        <dl key={i} className="kv cred" aria-label={c.label}>
          <div>
            <dt>Service</dt>
            <dd>
              {c.label} ({c.protocol}, {c.security})
            </dd>
          </div>
          {(
            [
              ['Server', c.host],
              ['Port', String(c.port)],
              ['Username', c.username],
              ['Password', c.password],
              ...(c.path ? [['Path', c.path]] : []),
            ] as Array<[string, string]>
          ).map(([k, v]) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd className="mono">
                <span data-testid={`cred-${k.toLowerCase()}`}>{v}</span>{' '}
                <CopyButton value={v} label={`${c.label} ${k.toLowerCase()}`} />
              </dd>
            </div>
          ))}
        </dl>
      ))}
    </>
  );
}
