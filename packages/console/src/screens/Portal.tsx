import { useQuery } from '@tanstack/react-query';
import { Link } from 'wouter';
import { api } from '../api';
import { ErrorBox, Loading, Page } from '../ui';
import { PeerQr, PeerState, type Peer } from './Peers';
import { CredentialList, type Credential } from './Store';

interface ServiceCreds {
  service: string;
  name: string;
  username: string;
  credentials: Credential[];
}

/** Short set-up notes for the apps people use, by the protocols a service offers. */
function Notes({ protocols }: { protocols: Set<string> }) {
  const mail = protocols.has('imap') || protocols.has('smtp') || protocols.has('submission');
  const dav = protocols.has('caldav') || protocols.has('carddav');
  const webdav = protocols.has('webdav');
  return (
    <details className="notes">
      <summary>How to set it up on your phone or computer</summary>
      {mail && (
        <>
          <h4>Mail on iPhone or iPad</h4>
          <p>
            Settings → Mail → Accounts → Add Account → Other → Add Mail Account. Enter the username and password above,
            then the IMAP and SMTP servers and ports shown.
          </p>
          <h4>Mail on Android</h4>
          <p>
            In your mail app (e.g. Gmail or K-9/Thunderbird): Add account → Other → Personal (IMAP). Use "manual setup"
            and copy the server, port and security shown above.
          </p>
        </>
      )}
      {dav && (
        <>
          <h4>Calendar and contacts on Android (DAVx⁵)</h4>
          <p>
            Install DAVx⁵, add an account "with URL and user name", paste the server address (https:// + server + path),
            your username and password. Pick the calendars and address books to sync.
          </p>
          <h4>Calendar and contacts on iPhone</h4>
          <p>
            Settings → Calendar → Accounts → Add Account → Other → Add CalDAV Account (and CardDAV for contacts);
            server, username and password as above.
          </p>
        </>
      )}
      {webdav && (
        <>
          <h4>Files (WebDAV)</h4>
          <p>
            In a WebDAV client (Files on iPhone: Connect to Server; Android: e.g. Material Files or Solid Explorer;
            Windows/macOS: map a network drive), use https:// + server + path, your username and password.
          </p>
        </>
      )}
      {!mail && !dav && !webdav && (
        <p>Use the server, port, username and password above in the app for this service.</p>
      )}
      <p>All of these work only while your VPN connection to the cell is on.</p>
    </details>
  );
}

/** The peer's own page, laid out for a phone: connect, then the services and their credentials. */
export function Portal() {
  const me = useQuery({ queryKey: ['peer-me'], queryFn: () => api.get<{ peer: Peer }>('/api/peer/me') });
  const creds = useQuery({
    queryKey: ['peer-creds'],
    queryFn: () => api.get<{ services: ServiceCreds[] }>('/api/peer/service-credentials'),
  });
  return (
    <Page title="My connection">
      <ErrorBox error={me.error} title="Cannot read your peer" />
      {me.isPending && <Loading what="your connection" />}
      {me.data && (
        <section aria-labelledby="vpn-h" className="card">
          <h2 id="vpn-h">
            VPN <PeerState peer={me.data.peer} />
          </h2>
          <p>
            Scan this code with the WireGuard app (Add tunnel → Scan from QR code), or download the file and import it.
          </p>
          <PeerQr name={me.data.peer.name} self />
          <p className="muted">
            Your address in the cell: <span className="mono">{me.data.peer.address}</span>
          </p>
        </section>
      )}
      <section aria-labelledby="svc-h" className="card">
        <h2 id="svc-h">My services</h2>
        <ErrorBox error={creds.error} title="Cannot read your service credentials" />
        {creds.isPending && <Loading what="your services" />}
        {creds.data?.services.length === 0 && <p>You have no service accounts yet. Ask the cell's administrator.</p>}
        {creds.data?.services.map((s) => (
          <article key={s.service} aria-labelledby={`ps-${s.service}`}>
            <h3 id={`ps-${s.service}`}>{s.name}</h3>
            <CredentialList credentials={s.credentials} />
            <Notes protocols={new Set(s.credentials.map((c) => c.protocol.toLowerCase()))} />
          </article>
        ))}
      </section>
      <p>
        <Link href="/change-password">Change my password</Link>
      </p>
    </Page>
  );
}
