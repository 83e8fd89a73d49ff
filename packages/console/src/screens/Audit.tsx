import { useState } from 'react';
import { keepPreviousData, useMutation, useQuery } from '@tanstack/react-query';
import { api, query } from '../api';
import { ErrorBox, Field, Page, formatTime } from '../ui';

interface Entry {
  id: number;
  ts: string;
  actor: string;
  action: string;
  target_type: string;
  target_id: string | null;
  result: string;
  ip: string | null;
  details: Record<string, unknown>;
}
const PAGE = 50;

export function Audit() {
  const [actor, setActor] = useState('');
  const [action, setAction] = useState('');
  const [target, setTarget] = useState('');
  const [result, setResult] = useState('');
  const [offset, setOffset] = useState(0);
  const filters = { actor: actor.trim(), action: action.trim(), target_type: target.trim(), result };
  const qs = query({ ...filters, limit: PAGE, offset });
  const list = useQuery({
    queryKey: ['audit', qs],
    queryFn: () => api.get<{ entries: Entry[]; total: number }>(`/api/audit${qs}`),
    placeholderData: keepPreviousData,
  });
  const verify = useMutation({
    mutationFn: () =>
      api.get<{ valid: boolean; entries: number; reason?: string; first_broken_id?: number }>('/api/audit/verify'),
  });
  const total = list.data?.total ?? 0;
  return (
    <Page
      title="Audit log"
      actions={
        <>
          <button type="button" onClick={() => verify.mutate()} disabled={verify.isPending}>
            Verify the chain
          </button>
          <a className="button" href={`/api/audit/export${query({ ...filters, format: 'csv' })}`} download>
            Export CSV
          </a>
          <a className="button" href={`/api/audit/export${query({ ...filters, format: 'json' })}`} download>
            Export JSON
          </a>
        </>
      }
    >
      <ErrorBox error={verify.error} title="Verification failed to run" />
      {verify.data && (
        <p className={verify.data.valid ? 'ok' : 'error'} role="status">
          {verify.data.valid
            ? `The chain is intact: ${verify.data.entries} entries verified.`
            : `The chain is broken${verify.data.first_broken_id ? ` at entry ${verify.data.first_broken_id}` : ''}: ` +
              (verify.data.reason ?? 'see the API answer')}
        </p>
      )}
      {/* biome-ignore lint/a11y/useSemanticElements: <form role="search"> is the landmark every browser knows; <search> is newer than some phones' browsers */}
      <form className="filters" role="search" aria-label="Filter the audit log" onSubmit={(e) => e.preventDefault()}>
        <Field
          label="Actor"
          name="actor"
          value={actor}
          onChange={(v) => {
            setActor(v);
            setOffset(0);
          }}
        />
        <Field
          label="Action"
          name="action"
          value={action}
          onChange={(v) => {
            setAction(v);
            setOffset(0);
          }}
        />
        <Field
          label="Target type"
          name="target_type"
          value={target}
          onChange={(v) => {
            setTarget(v);
            setOffset(0);
          }}
        />
        <div className="field">
          <label htmlFor="audit-result">Result</label>
          <select
            id="audit-result"
            value={result}
            onChange={(e) => {
              setResult(e.target.value);
              setOffset(0);
            }}
          >
            <option value="">all</option>
            <option value="ok">ok</option>
            <option value="error">error</option>
            <option value="denied">denied</option>
          </select>
        </div>
      </form>
      <ErrorBox error={list.error} title="Cannot read the audit log" />
      {list.data && (
        <>
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">Time</th>
                  <th scope="col">Actor</th>
                  <th scope="col">Action</th>
                  <th scope="col">Target</th>
                  <th scope="col">Result</th>
                  <th scope="col">IP</th>
                </tr>
              </thead>
              <tbody>
                {list.data.entries.map((e) => (
                  <tr key={e.id}>
                    <td>{e.id}</td>
                    <td>{formatTime(e.ts)}</td>
                    <td>{e.actor}</td>
                    <td>{e.action}</td>
                    <td>
                      {e.target_type}
                      {e.target_id ? `: ${e.target_id}` : ''}
                    </td>
                    <td>{e.result}</td>
                    <td>{e.ip ?? '–'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <nav className="pager" aria-label="Pages of the audit log">
            <button type="button" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
              Newer
            </button>
            <span>{total === 0 ? 'No entries' : `${offset + 1}–${offset + list.data.entries.length} of ${total}`}</span>
            <button type="button" disabled={offset + PAGE >= total} onClick={() => setOffset(offset + PAGE)}>
              Older
            </button>
          </nav>
        </>
      )}
    </Page>
  );
}
