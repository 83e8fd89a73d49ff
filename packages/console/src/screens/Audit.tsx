import { useState } from 'react';
import { keepPreviousData, useMutation, useQuery } from '@tanstack/react-query';
import { api, query } from '../api';
import { ErrorBox, Field, Page, formatTime } from '../ui';
import { Filters, Pager, SelectField, Table } from '../lists';

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
const RESULTS = [
  ['', 'all'],
  ['ok', 'ok'],
  ['error', 'error'],
  ['denied', 'denied'],
] as const;

export function Audit() {
  const [actor, setActor] = useState('');
  const [action, setAction] = useState('');
  const [target, setTarget] = useState('');
  const [result, setResult] = useState('');
  const [offset, setOffset] = useState(0);
  /** A filter's setter that also goes back to the first page. */
  const refilter = (set: (v: string) => void) => (v: string) => {
    set(v);
    setOffset(0);
  };
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
      <Filters label="Filter the audit log">
        <Field label="Actor" name="actor" value={actor} onChange={refilter(setActor)} />
        <Field label="Action" name="action" value={action} onChange={refilter(setAction)} />
        <Field label="Target type" name="target_type" value={target} onChange={refilter(setTarget)} />
        <SelectField label="Result" value={result} onChange={refilter(setResult)} options={RESULTS} />
      </Filters>
      <ErrorBox error={list.error} title="Cannot read the audit log" />
      {list.data && (
        <>
          <Table columns={['#', 'Time', 'Actor', 'Action', 'Target', 'Result', 'IP']}>
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
          </Table>
          <Pager
            label="Pages of the audit log"
            offset={offset}
            size={PAGE}
            total={total}
            onOffset={setOffset}
            previous="Newer"
            next="Older"
          >
            {total === 0 ? 'No entries' : `${offset + 1}–${offset + list.data.entries.length} of ${total}`}
          </Pager>
        </>
      )}
    </Page>
  );
}
