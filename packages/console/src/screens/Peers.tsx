import { useEffect, useState, type FormEvent } from 'react';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Link, useSearch } from 'wouter';
import { navigate } from 'wouter/use-browser-location';
import { api, query, seg } from '../api';
import { CredentialList, type Credential } from './Store';
import {
  ConfirmButton,
  CopyButton,
  ErrorBox,
  Field,
  LineChart,
  Loading,
  Page,
  fieldError,
  formatBytes,
  formatTime,
} from '../ui';
import { Filters, Pager, SelectField, Table } from '../lists';

export interface Peer {
  name: string;
  description: string;
  address: string;
  public_key: string;
  group: string | null;
  tags: string[];
  enabled: boolean;
  expires_at: string | null;
  expired: boolean;
  active: boolean;
  online: boolean;
  latest_handshake: string | null;
  rx_bytes: number;
  tx_bytes: number;
  created_at: string;
}
interface PeerPage {
  peers: Peer[];
  total: number;
  limit: number;
  offset: number;
}

const PAGE = 50;
const PERIODS = [
  ['24h', 'last 24 hours'],
  ['7d', 'last 7 days'],
  ['30d', 'last 30 days'],
] as const;
const STATES = [
  ['', 'all'],
  ['true', 'enabled'],
  ['false', 'disabled'],
] as const;
const tagsOf = (s: string): string[] =>
  s
    .split(/[,\s]+/)
    .map((t) => t.trim())
    .filter(Boolean);
/** `<input type="datetime-local">` value (local time) → ISO-8601 UTC, or null when empty. */
const isoOf = (local: string): string | null =>
  local ? new Date(local).toISOString().replace(/\.\d{3}Z$/, 'Z') : null;
const localOf = (iso: string | null): string => {
  if (!iso) return '';
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
};

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

export function PeerState({ peer }: { peer: Peer }) {
  const state = !peer.enabled ? 'disabled' : peer.expired ? 'expired' : peer.online ? 'online' : 'offline';
  return (
    <span className={`badge ${state === 'online' ? 'ok' : state === 'offline' ? 'muted' : 'degraded'}`}>{state}</span>
  );
}

/** Find, add and act on peers: the list is paged by the API (50 a page), so 10,000 peers cost one page. */
export function Peers() {
  const qc = useQueryClient();
  const params = new URLSearchParams(useSearch());
  const [q, setQ] = useState(params.get('q') ?? '');
  const [group, setGroup] = useState(params.get('group') ?? '');
  const [tag, setTag] = useState(params.get('tag') ?? '');
  const [enabled, setEnabled] = useState(params.get('enabled') ?? '');
  const [offset, setOffset] = useState(Number(params.get('offset') ?? 0) || 0);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [adding, setAdding] = useState(false);
  const dq = useDebounced(q.trim(), 250);
  const dGroup = useDebounced(group.trim(), 250);
  const dTag = useDebounced(tag.trim(), 250);

  // biome-ignore lint/correctness/useExhaustiveDependencies: the filters are the trigger: a new filter starts at page 1
  useEffect(() => setOffset(0), [dq, dGroup, dTag, enabled]);
  const qs = query({ q: dq, group: dGroup, tag: dTag, enabled, limit: PAGE, offset });
  useEffect(() => {
    const shown = query({ q: dq, group: dGroup, tag: dTag, enabled, offset: offset || undefined });
    if (window.location.search !== shown) window.history.replaceState(null, '', `/peers${shown}`);
  }, [dq, dGroup, dTag, enabled, offset]);

  const list = useQuery({
    queryKey: ['peers', qs],
    queryFn: () => api.get<PeerPage>(`/api/peers${qs}`),
    placeholderData: keepPreviousData,
  });
  const batch = useMutation({
    mutationFn: (action: 'enable' | 'disable' | 'delete') =>
      api.post('/api/peers/batch', { action, names: [...selected] }),
    onSuccess: () => {
      setSelected(new Set());
      void qc.invalidateQueries({ queryKey: ['peers'] });
    },
  });

  const peers = list.data?.peers ?? [];
  const total = list.data?.total ?? 0;
  const toggle = (name: string) =>
    setSelected((old) => {
      const n = new Set(old);
      if (n.has(name)) n.delete(name);
      else n.add(name);
      return n;
    });
  const allOnPage = peers.length > 0 && peers.every((p) => selected.has(p.name));

  return (
    <Page
      title="Peers"
      actions={
        <button type="button" className="primary" onClick={() => setAdding((a) => !a)} aria-expanded={adding}>
          {adding ? 'Close the new peer form' : 'Add a peer'}
        </button>
      }
    >
      {adding && <AddPeer onDone={() => void qc.invalidateQueries({ queryKey: ['peers'] })} />}
      <Filters label="Find peers">
        <Field label="Search name or description" name="q" value={q} onChange={setQ} type="search" />
        <Field label="Group" name="group" value={group} onChange={setGroup} />
        <Field label="Tag" name="tag" value={tag} onChange={setTag} />
        <SelectField label="State" value={enabled} onChange={setEnabled} options={STATES} />
      </Filters>
      <ErrorBox error={list.error} title="Cannot list the peers" />
      {list.isPending && <Loading what="the peers" />}
      {selected.size > 0 && (
        // biome-ignore lint/a11y/useSemanticElements: a row of buttons, not form fields: <fieldset> would be the wrong element
        <div className="batch" role="group" aria-label="Actions on the selected peers">
          <span>{selected.size} selected</span>
          <button type="button" onClick={() => batch.mutate('enable')} disabled={batch.isPending}>
            Enable
          </button>
          <button type="button" onClick={() => batch.mutate('disable')} disabled={batch.isPending}>
            Disable
          </button>
          <ConfirmButton
            label="Delete"
            confirm={`Delete ${selected.size} peers and their service accounts?`}
            onConfirm={() => batch.mutate('delete')}
          />
          <button type="button" onClick={() => setSelected(new Set())}>
            Clear selection
          </button>
        </div>
      )}
      <ErrorBox error={batch.error} title="The batch action failed; nothing was changed" />
      {batch.isSuccess && batch.data && (
        <p className="ok" role="status">
          Done: {String(batch.data['action'])} of {(batch.data['names'] as string[]).length} peers.
        </p>
      )}
      {list.data && (
        <>
          <p className="muted" aria-live="polite">
            {total === 0 ? 'No peers match.' : `Peers ${offset + 1}–${offset + peers.length} of ${total}`}
          </p>
          <Table
            className="peers"
            columns={[
              <input
                key="all"
                type="checkbox"
                aria-label="Select every peer on this page"
                checked={allOnPage}
                onChange={() =>
                  setSelected((old) => {
                    const n = new Set(old);
                    for (const p of peers) allOnPage ? n.delete(p.name) : n.add(p.name);
                    return n;
                  })
                }
              />,
              'Name',
              'Address',
              'State',
              'Group / tags',
              'Description',
              'Expires',
            ]}
          >
            {peers.map((p) => (
              <tr key={p.name}>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`Select ${p.name}`}
                    checked={selected.has(p.name)}
                    onChange={() => toggle(p.name)}
                  />
                </td>
                <td>
                  <Link href={`/peers/${seg(p.name)}`}>{p.name}</Link>
                </td>
                <td className="mono">{p.address}</td>
                <td>
                  <PeerState peer={p} />
                </td>
                <td>
                  {p.group && <span className="chip">{p.group}</span>}
                  {p.tags.map((t) => (
                    <span key={t} className="chip tag">
                      {t}
                    </span>
                  ))}
                </td>
                <td className="desc">{p.description}</td>
                <td>{p.expires_at ? formatTime(p.expires_at) : 'never'}</td>
              </tr>
            ))}
          </Table>
          <Pager label="Pages of peers" offset={offset} size={PAGE} total={total} onOffset={setOffset}>
            Page {Math.floor(offset / PAGE) + 1} of {Math.max(1, Math.ceil(total / PAGE))}
          </Pager>
        </>
      )}
    </Page>
  );
}

interface Created {
  peer: Peer;
  login: { username: string; password: string };
}

/** What a peer has besides its name, as the add and edit forms hold it (text, local time). */
interface PeerForm {
  description: string;
  group: string;
  tags: string;
  expires: string;
}
const NO_PEER: PeerForm = { description: '', group: '', tags: '', expires: '' };

/** The description, group, tags and expiry fields, each with the API's error for it. */
function PeerFields({
  form,
  onChange,
  error,
  expiresLabel,
}: {
  form: PeerForm;
  onChange: (form: PeerForm) => void;
  error: unknown;
  expiresLabel: string;
}) {
  const set = (key: keyof PeerForm) => (v: string) => onChange({ ...form, [key]: v });
  return (
    <>
      <Field
        label="Description"
        name="description"
        value={form.description}
        onChange={set('description')}
        error={fieldError(error, 'description')}
      />
      <Field label="Group" name="group" value={form.group} onChange={set('group')} error={fieldError(error, 'group')} />
      <Field
        label="Tags (comma separated)"
        name="tags"
        value={form.tags}
        onChange={set('tags')}
        error={fieldError(error, 'tags') ?? fieldError(error, 'tags/0')}
      />
      <Field
        label={expiresLabel}
        name="expires_at"
        type="datetime-local"
        value={form.expires}
        onChange={set('expires')}
        error={fieldError(error, 'expires_at')}
      />
    </>
  );
}

function AddPeer({ onDone }: { onDone: () => void }) {
  const [name, setName] = useState('');
  const [form, setForm] = useState(NO_PEER);
  const create = useMutation({
    mutationFn: () =>
      api.post<Created>('/api/peers', {
        name: name.trim(),
        ...(form.description ? { description: form.description } : {}),
        ...(form.group.trim() ? { group: form.group.trim() } : {}),
        ...(form.tags.trim() ? { tags: tagsOf(form.tags) } : {}),
        ...(form.expires ? { expires_at: isoOf(form.expires) } : {}),
      }),
    onSuccess: () => {
      setName('');
      setForm(NO_PEER);
      onDone();
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  const err = create.error;
  return (
    <div className="card">
      <h2>New peer</h2>
      <form onSubmit={submit}>
        <Field
          label="Name"
          name="name"
          value={name}
          onChange={setName}
          required
          hint="Lowercase letters, digits and inner hyphens"
          error={fieldError(err, 'name')}
        />
        <PeerFields form={form} onChange={setForm} error={err} expiresLabel="Expires at (optional)" />
        <ErrorBox error={err} title="The peer was not added" />
        <button type="submit" className="primary" disabled={create.isPending}>
          Add peer
        </button>
      </form>
      {create.data && <NewPeerSecret created={create.data} />}
    </div>
  );
}

/** The one time the peer's login password is shown, with its QR code. */
function NewPeerSecret({ created }: { created: Created }) {
  const { peer, login } = created;
  return (
    <div className="secret" role="status" aria-label={`Peer ${peer.name} added`}>
      <h3>Peer {peer.name} added</h3>
      <p>
        <strong>Write this down now:</strong> the password is shown only this once. The peer signs in to the portal with
        it.
      </p>
      <dl className="kv">
        <div>
          <dt>Login</dt>
          <dd className="mono" data-testid="new-login">
            {login.username} <CopyButton value={login.username} label="login name" />
          </dd>
        </div>
        <div>
          <dt>Password</dt>
          <dd className="mono" data-testid="new-password">
            {login.password} <CopyButton value={login.password} label="password" />
          </dd>
        </div>
      </dl>
      <PeerQr name={peer.name} />
    </div>
  );
}

export function PeerQr({ name, self }: { name: string; self?: boolean }) {
  const base = self ? '/api/peer' : `/api/peers/${seg(name)}`;
  const [failed, setFailed] = useState(false);
  return (
    <div className="qr">
      {failed ? (
        <p className="error" role="alert">
          The QR code could not be loaded; download the configuration instead.
        </p>
      ) : (
        <img
          src={`${base}/qr`}
          alt={`WireGuard configuration of ${name} as a QR code`}
          width={280}
          height={280}
          onError={() => setFailed(true)}
        />
      )}
      <a className="button" href={`${base}/config?download=1`} download>
        Download the configuration file
      </a>
    </div>
  );
}

export function PeerDetail({ name }: { name: string }) {
  const qc = useQueryClient();
  const peer = useQuery({
    queryKey: ['peer', name],
    queryFn: () => api.get<{ peer: Peer }>(`/api/peers/${seg(name)}`),
  });
  const [period, setPeriod] = useState<'24h' | '7d' | '30d'>('24h');
  const traffic = useQuery({
    queryKey: ['traffic', name, period],
    queryFn: () =>
      api.get<{
        points: Array<{ ts: string; rx_bytes: number; tx_bytes: number }>;
        rx_bytes: number;
        tx_bytes: number;
      }>(`/api/peers/${seg(name)}/traffic?period=${period}`),
  });
  const remove = useMutation({
    mutationFn: () => api.delete(`/api/peers/${seg(name)}`),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: ['peers'] });
      navigate('/peers');
    },
  });
  const toggle = useMutation({
    mutationFn: (enabled: boolean) => api.put(`/api/peers/${seg(name)}`, { enabled }),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ['peer', name] }),
  });
  if (peer.isPending) return <Loading what={`peer ${name}`} />;
  if (peer.error) return <ErrorBox error={peer.error} title={`Cannot read peer ${name}`} />;
  const p = peer.data.peer;
  return (
    <Page
      title={`Peer ${p.name}`}
      actions={
        <>
          <button type="button" onClick={() => toggle.mutate(!p.enabled)} disabled={toggle.isPending}>
            {p.enabled ? 'Disable' : 'Enable'}
          </button>
          <ConfirmButton
            label="Delete"
            confirm={`Delete ${p.name} and its service accounts?`}
            onConfirm={() => remove.mutate()}
          />
        </>
      }
    >
      <p>
        <Link href="/peers">← All peers</Link>
      </p>
      <ErrorBox error={toggle.error} title="Not changed" />
      <ErrorBox error={remove.error} title="Not deleted" />
      <div className="cols">
        <div>
          <dl className="kv">
            <div>
              <dt>State</dt>
              <dd>
                <PeerState peer={p} />
              </dd>
            </div>
            <div>
              <dt>Address</dt>
              <dd className="mono">{p.address}</dd>
            </div>
            <div>
              <dt>Public key</dt>
              <dd className="mono">{p.public_key}</dd>
            </div>
            <div>
              <dt>Description</dt>
              <dd className="desc">{p.description || '–'}</dd>
            </div>
            <div>
              <dt>Last handshake</dt>
              <dd>{formatTime(p.latest_handshake)}</dd>
            </div>
            <div>
              <dt>Traffic</dt>
              <dd>
                ↓ {formatBytes(p.rx_bytes)} ↑ {formatBytes(p.tx_bytes)}
              </dd>
            </div>
          </dl>
          <EditPeer peer={p} />
          <ServiceCredentials name={p.name} />
        </div>
        <PeerQr name={p.name} />
      </div>
      <h2>Traffic</h2>
      <SelectField
        className="field inline"
        label="Period"
        value={period}
        onChange={(v) => setPeriod(v as typeof period)}
        options={PERIODS}
      />
      <ErrorBox error={traffic.error} title="Cannot read the traffic" />
      {traffic.data && (
        <LineChart
          label={`Traffic of ${p.name}`}
          format={formatBytes}
          series={[
            {
              name: 'received',
              className: 's1',
              points: traffic.data.points.map((x) => ({ t: Date.parse(x.ts), v: x.rx_bytes })),
            },
            {
              name: 'sent',
              className: 's2',
              points: traffic.data.points.map((x) => ({ t: Date.parse(x.ts), v: x.tx_bytes })),
            },
          ]}
        />
      )}
    </Page>
  );
}

function EditPeer({ peer }: { peer: Peer }) {
  const qc = useQueryClient();
  const [form, setForm] = useState<PeerForm>({
    description: peer.description,
    group: peer.group ?? '',
    tags: peer.tags.join(', '),
    expires: localOf(peer.expires_at),
  });
  const save = useMutation({
    mutationFn: () =>
      api.put(`/api/peers/${seg(peer.name)}`, {
        description: form.description,
        group: form.group.trim() || null,
        tags: tagsOf(form.tags),
        expires_at: isoOf(form.expires),
      }),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: ['peer', peer.name] });
      void qc.invalidateQueries({ queryKey: ['peers'] });
    },
  });
  const err = save.error;
  return (
    <form
      className="card"
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate();
      }}
    >
      <h2>Edit</h2>
      <PeerFields form={form} onChange={setForm} error={err} expiresLabel="Expires at (empty: never)" />
      <ErrorBox error={err} title="Not saved" />
      {save.isSuccess && (
        <p className="ok" role="status">
          Saved.
        </p>
      )}
      <button type="submit" className="primary" disabled={save.isPending}>
        Save
      </button>
    </form>
  );
}

interface PeerServices {
  services: Array<{ service: string; name: string; username: string; credentials: Credential[] }>;
}

/** The peer's accounts in installed services; read on request only (each read is audited). */
function ServiceCredentials({ name }: { name: string }) {
  const read = useMutation({ mutationFn: () => api.get<PeerServices>(`/api/peers/${seg(name)}/service-credentials`) });
  return (
    <section className="card" aria-labelledby="peer-services-h">
      <h2 id="peer-services-h">Service accounts</h2>
      <button type="button" onClick={() => read.mutate()} disabled={read.isPending}>
        Show {name}&apos;s service credentials
      </button>
      <ErrorBox error={read.error} title="Cannot read the service credentials" />
      {read.data?.services.length === 0 && <p className="muted">{name} has no service accounts.</p>}
      {read.data?.services.map((s) => (
        <article key={s.service} aria-label={s.name}>
          <h3>{s.name}</h3>
          <CredentialList credentials={s.credentials} />
        </article>
      ))}
    </section>
  );
}
