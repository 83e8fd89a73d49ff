import { useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, seg } from '../api';
import { ConfirmButton, ErrorBox, Field, Loading, Page, fieldError, formatTime } from '../ui';
import { Table } from '../lists';

interface Cert {
  serial: string;
  name: string;
  type: string;
  subject: string;
  sans: string[];
  not_after: string;
  revoked: boolean;
}
interface TrustKey {
  name: string;
  key_type: string;
  fingerprint: string;
  created_at: string;
}

/** SHA-256 of the PEM's SPKI bytes, as the cell computes a trust key's fingerprint (needs a secure context). */
async function fingerprintOf(pem: string): Promise<string | undefined> {
  const m = /-----BEGIN PUBLIC KEY-----([\s\S]+?)-----END PUBLIC KEY-----/.exec(pem);
  if (!m || !globalThis.crypto?.subtle) return undefined;
  try {
    const der = Uint8Array.from(atob(m[1]!.replace(/\s+/g, '')), (c) => c.charCodeAt(0));
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', der));
    return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
  } catch {
    return undefined;
  }
}

export function Vault() {
  const qc = useQueryClient();
  const certs = useQuery({ queryKey: ['certs'], queryFn: () => api.get<{ certificates: Cert[] }>('/api/vault/certs') });
  const keys = useQuery({
    queryKey: ['trust-keys'],
    queryFn: () => api.get<{ trust_keys: TrustKey[] }>('/api/vault/trust-keys'),
  });
  const [name, setName] = useState('');
  const [pem, setPem] = useState('');
  const [fingerprint, setFingerprint] = useState<string | undefined | null>(null);
  const [confirmed, setConfirmed] = useState(false);
  const add = useMutation({
    mutationFn: () => api.post('/api/vault/trust-keys', { name: name.trim(), public_key: pem.trim() }),
    onSuccess: () => {
      setName('');
      setPem('');
      setFingerprint(null);
      setConfirmed(false);
      void qc.invalidateQueries({ queryKey: ['trust-keys'] });
    },
  });
  const del = useMutation({
    mutationFn: (n: string) => api.delete(`/api/vault/trust-keys/${seg(n)}`),
    onSuccess: () => void qc.invalidateQueries({ queryKey: ['trust-keys'] }),
  });
  return (
    <Page title="Vault">
      <section className="card">
        <h2>Certificate authority</h2>
        <p>
          Install the cell's CA certificate on your devices so they trust the cell's own certificates.{' '}
          <a className="button" href="/api/vault/ca.crt" download>
            Download the CA certificate
          </a>
        </p>
      </section>
      <section className="card">
        <h2>Issued certificates</h2>
        <ErrorBox error={certs.error} title="Cannot list the certificates" />
        {certs.isPending && <Loading what="certificates" />}
        {certs.data?.certificates.length === 0 && <p className="muted">No certificates issued yet.</p>}
        {certs.data && certs.data.certificates.length > 0 && (
          <Table columns={['Name', 'Type', 'Names', 'Valid until', 'State']}>
            {certs.data.certificates.map((c) => (
              <tr key={c.serial}>
                <td>{c.name}</td>
                <td>{c.type}</td>
                <td>{c.sans.join(', ')}</td>
                <td>{formatTime(c.not_after)}</td>
                <td>{c.revoked ? 'revoked' : 'valid'}</td>
              </tr>
            ))}
          </Table>
        )}
      </section>
      <section className="card">
        <h2>Trusted store keys</h2>
        <p className="muted">The store's catalog must be signed by one of these keys.</p>
        <ErrorBox error={keys.error} title="Cannot list the trust keys" />
        <ErrorBox error={del.error} title="Not removed" />
        <ul>
          {keys.data?.trust_keys.map((k) => (
            <li key={k.name}>
              <strong>{k.name}</strong> ({k.key_type}) <span className="mono">{k.fingerprint}</span>{' '}
              <ConfirmButton label="Remove" confirm={`Stop trusting ${k.name}?`} onConfirm={() => del.mutate(k.name)} />
            </li>
          ))}
        </ul>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            add.mutate();
          }}
        >
          <h3>Trust another key</h3>
          <Field label="Name" name="name" value={name} onChange={setName} error={fieldError(add.error, 'name')} />
          <div className="field">
            <label htmlFor="trust-pem">Public key (PEM)</label>
            <textarea
              id="trust-pem"
              rows={5}
              value={pem}
              onChange={(e) => {
                setPem(e.target.value);
                setConfirmed(false);
                void fingerprintOf(e.target.value).then(setFingerprint);
              }}
              aria-invalid={fieldError(add.error, 'public_key') ? true : undefined}
            />
            {fieldError(add.error, 'public_key') && (
              <small className="field-error">{fieldError(add.error, 'public_key')}</small>
            )}
          </div>
          {pem.trim() && (
            <p role="status">
              {fingerprint ? (
                <>
                  Fingerprint (SHA-256): <span className="mono">{fingerprint}</span>. Compare it with the one the store
                  publishes.
                </>
              ) : (
                'The fingerprint cannot be computed in this browser; the cell shows it once added. ' +
                'Compare it before you install anything.'
              )}
            </p>
          )}
          <label className="check">
            <input type="checkbox" checked={confirmed} onChange={(e) => setConfirmed(e.target.checked)} /> I compared
            the fingerprint with the store's
          </label>
          <ErrorBox error={add.error} title="Key not added" />
          <button type="submit" className="primary" disabled={!confirmed || add.isPending}>
            Trust this key
          </button>
        </form>
      </section>
    </Page>
  );
}
