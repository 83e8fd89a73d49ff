import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Agent } from 'node:https';
import { createDAVClient } from 'tsdav';
import { createClient as createWebdavClient } from 'webdav';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { REPO_ROOT, startCellProcess, type CellProcess } from '../support/cell-process.js';
import { ApiClient, completeSetup, IDENTITY } from '../support/client.js';
import { startDockerEngine, type DockerEngine } from '../support/docker-engine.js';
import { engineView, eventually, loadManifestModule, type EngineView, type ManifestModule } from './store-helpers.js';
import {
  agentFetch,
  cellAgent,
  freePort,
  loadImageBuilder,
  writeMultiCatalog,
  type BuiltImage,
} from './services-helpers.js';

// The first-party services (issue 12) end to end: images built from Debian packages by the cached
// builder, a catalog signed with a throwaway key that pins each image's real ID, a real cell that
// installs them on the real engine, hands each peer its credentials, and real protocol clients
// (tsdav, webdav, nodemailer, imapflow) that use those credentials over TLS checked against the
// cell's CA. Host ports are rewritten to free ones in the test's own catalog.
const SERVICES = ['calendar', 'files', 'email'] as const;
type ServiceId = (typeof SERVICES)[number];
const start = await startDockerEngine();
const builder = await loadImageBuilder();
const buildSkip = builder.buildProblem();
if (buildSkip) process.stderr.write(`\n*** SKIPPING the first-party services e2e tests: ${buildSkip}\n\n`);

/** How many messages the INBOX holds (imapflow's status() answers false when it cannot tell). */
async function messagesIn(client: ImapFlow): Promise<number> {
  const status = await client.status('INBOX', { messages: true });
  if (!status) throw new Error('STATUS INBOX failed');
  return status.messages ?? 0;
}

describe('first-party services (calendar, files, email) with real clients', () => {
  if ('skip' in start || buildSkip) {
    it('needs a container engine, root and debootstrap', {
      skip: `NOT RUN: ${'skip' in start ? start.skip : buildSkip}`,
    }, () => {});
    return;
  }
  const engine: DockerEngine = start;
  let m: ManifestModule;
  let key: { privateKey: KeyObject; publicKey: KeyObject };
  let catalogDir: string;
  let cell: CellProcess;
  let api: ApiClient;
  let view: EngineView;
  let cellId: string;
  let caPem: string;
  let agent: Agent;
  const images = new Map<string, BuiltImage>();
  const peers: Record<string, string> = {}; // peer name → its login password
  const ports: Record<string, number> = {};

  const manifestOf = async (id: ServiceId) => {
    const man = m.parseManifest(
      readFileSync(join(REPO_ROOT, 'manifests', `${id}.yaml`), 'utf8'),
      `manifests/${id}.yaml`,
    );
    const built = images.get(id)!;
    for (const c of man.containers) {
      c.image = `${built.image}@${built.id}`;
      c.signature = await m.signImage(c.image, key.privateKey);
      for (const p of c.ports ?? [])
        if (p.host !== undefined) p.host = ports[`${id}:${p.container}`] ??= await freePort();
    }
    // The credentials name the published ports: the same rewrite.
    for (const cr of man.credentials ?? []) {
      const published = man.containers.flatMap((c: any) => c.ports ?? []).find((p: any) => p.container === cr.port);
      if (published) cr.port = published.host;
    }
    return man;
  };

  const waitJob = async (jobId: number) =>
    eventually(
      `job ${jobId} to finish`,
      async () => {
        const j = (await api.get(`/api/store/jobs/${jobId}`)).body.job;
        return j.state === 'healthy' || j.state === 'failed' || j.state === 'removed' ? j : undefined;
      },
      120_000,
      100,
    );

  const install = async (id: ServiceId) => {
    const t0 = Date.now();
    const res = await api.post('/api/store/install', { id });
    assert.equal(res.status, 202, res.text);
    const job = await waitJob(res.body.job.id);
    assert.equal(job.state, 'healthy', `${id} install failed: ${job.error}\n${cell.output().slice(-3000)}`);
    return Date.now() - t0;
  };

  const credentialsOf = async (peer: string, service: ServiceId) => {
    const res = await api.get(`/api/peers/${peer}/service-credentials`);
    assert.equal(res.status, 200, res.text);
    const s = res.body.services.find((x: any) => x.service === service);
    assert.ok(s, `${peer} has ${service} credentials: ${res.text}`);
    return s.credentials as Array<{
      protocol: string;
      security: string;
      host: string;
      port: number;
      username: string;
      password: string;
      path?: string;
    }>;
  };

  const accountsIn = async (id: ServiceId) => {
    const container = { calendar: 'radicale', files: 'webdav', email: 'mail' }[id];
    const res = await view.exec(`pic-${cellId}-${id}-${container}`, ['pic-account', 'list']);
    assert.equal(res.exitCode, 0, res.stderr);
    return res.stdout.split('\n').filter(Boolean).sort();
  };

  before(async () => {
    m = await loadManifestModule();
    const log = (line: string) => process.stderr.write(`[images] ${line}\n`);
    // One at a time: the first builds the shared base (about a minute, once per engine), the others reuse it.
    for (const id of SERVICES)
      images.set(id, await builder.buildFirstPartyImage(id, { dockerHost: engine.dockerHost, log }));
    // Cached by the recipe's hash: asking again builds nothing and names the same image.
    const t0 = Date.now();
    assert.deepEqual(
      await builder.buildFirstPartyImage('calendar', { dockerHost: engine.dockerHost }),
      images.get('calendar'),
    );
    assert.ok(Date.now() - t0 < 5_000, `a cached build is a lookup (${Date.now() - t0} ms)`);
    key = m.generateStoreKeyPair();
    catalogDir = mkdtempSync(join(tmpdir(), 'pic-services-catalog-'));
    await writeMultiCatalog(m, catalogDir, {
      version: 1,
      key: key.privateKey,
      manifests: await Promise.all(SERVICES.map(manifestOf)),
    });
    cell = await startCellProcess({
      cellYaml:
        `store:\n  catalog_dir: ${catalogDir}\n  engine_socket: ${engine.socketPath}\n` +
        'rate_limit:\n  api_per_minute: 100000\n',
      timeoutMs: 30_000,
    });
    api = new ApiClient(cell.url);
    await completeSetup(api);
    const trusted = await api.post('/api/vault/trust-keys', {
      name: 'test-services',
      public_key: m.publicKeyPem(key.publicKey),
    });
    assert.equal(trusted.status, 201, trusted.text);
    cellId = (await api.get('/api/store')).body.engine.cell_id;
    view = await engineView(engine.socketPath, cellId);
    const ca = await api.get('/api/vault/ca.crt');
    assert.equal(ca.status, 200, ca.text);
    caPem = ca.text;
    agent = cellAgent(caPem, IDENTITY.domain);
    for (const name of ['alice', 'bob']) {
      const peer = await api.post('/api/peers', { name });
      assert.equal(peer.status, 201, peer.text);
      peers[name] = peer.body.login.password;
    }
  });

  after(async () => {
    try {
      if (cell) {
        for (const id of SERVICES) await api.post('/api/store/remove', { id, purge: true }).catch(() => undefined);
        await cell.destroy();
        rmSync(cell.dataDir, { recursive: true, force: true });
      }
      if (catalogDir) rmSync(catalogDir, { recursive: true, force: true });
      agent?.destroy();
    } finally {
      await engine.stop();
    }
  });

  it('lists the three services verified, pinned to the images just built; routes 404 until installed', async () => {
    const store = await api.get('/api/store');
    assert.equal(store.body.catalog.verified, true, JSON.stringify(store.body.catalog));
    for (const id of SERVICES) {
      const s = store.body.services.find((x: any) => x.id === id);
      assert.ok(s, id);
      assert.equal(s.verified, true, JSON.stringify(s));
      assert.deepEqual(
        s.containers.map((c: any) => c.image),
        [`${images.get(id)!.image}@${images.get(id)!.id}`],
      );
    }
    for (const path of ['/api/calendar/users', '/api/files/usage', '/api/email/mailboxes', '/api/email/aliases']) {
      assert.equal((await api.get(path)).status, 404, path);
    }
  });

  it('installs each service to healthy (TLS from the cell CA, servers not root where they allow it)', async () => {
    for (const id of SERVICES) {
      const ms = await install(id);
      process.stderr.write(`[services] ${id}: install to healthy in ${ms} ms\n`);
    }
    const whoami = async (container: string, pid1: boolean) => {
      const argv = pid1 ? ['sh', '-c', 'id -un'] : ['id', '-un'];
      return (await view.exec(container, argv)).stdout.trim();
    };
    assert.equal(await whoami(`pic-${cellId}-calendar-radicale`, true), 'radicale');
    assert.equal(await whoami(`pic-${cellId}-files-webdav`, true), 'www-data');
    // The key is readable by the server's group only, and the certificate chains to the cell's CA.
    const key = await view.exec(`pic-${cellId}-files-webdav`, ['stat', '-c', '%a %U %G', '/etc/pic/tls/key.pem']);
    assert.equal(key.stdout.trim(), '640 root www-data');
    const certs = (await api.get('/api/vault/certs')).body;
    const names = JSON.stringify(certs);
    for (const sub of ['dav', 'files', 'mail'])
      assert.ok(names.includes(`${sub}.${IDENTITY.domain}`), `a certificate for ${sub}: ${names.slice(0, 500)}`);
  });

  it('provisions alice and bob everywhere; credentials name host, port, TLS mode, username, password', async () => {
    const paths: Record<ServiceId, string> = {
      calendar: '/api/calendar/users',
      files: '/api/files/users',
      email: '/api/email/mailboxes',
    };
    for (const id of SERVICES) {
      for (const peer of ['alice', 'bob']) {
        const res = await api.post(paths[id], { peer });
        assert.equal(res.status, 201, `${id} ${peer}: ${res.text}`);
        assert.ok(!res.text.includes('password'), 'no password in the create answer');
      }
      assert.deepEqual(await accountsIn(id), ['alice', 'bob']);
    }
    const cal = await credentialsOf('alice', 'calendar');
    assert.deepEqual(
      cal.map((c) => [c.protocol, c.security, c.host, c.port, c.username, c.path]),
      [
        ['caldav', 'tls', `dav.${IDENTITY.domain}`, ports['calendar:5232'], 'alice', '/alice/'],
        ['carddav', 'tls', `dav.${IDENTITY.domain}`, ports['calendar:5232'], 'alice', '/alice/'],
      ],
    );
    const mail = await credentialsOf('alice', 'email');
    assert.deepEqual(
      mail.map((c) => [c.protocol, c.security, c.port, c.username]),
      [
        ['imap', 'tls', ports['email:993'], `alice@${IDENTITY.domain}`],
        ['smtp', 'starttls', ports['email:587'], `alice@${IDENTITY.domain}`],
      ],
    );
    // a peer's own view: the same, for itself only
    const own = new ApiClient(cell.url);
    assert.equal((await own.login('alice', peers['alice']!)).status, 200);
    const mine = await own.get('/api/peer/service-credentials');
    assert.equal(mine.status, 200, mine.text);
    assert.deepEqual(
      mine.body.services.map((s: any) => s.service),
      ['calendar', 'email', 'files'],
    );
    assert.equal((await own.get('/api/peers/bob/service-credentials')).status, 403);
    // the passwords are in the vault and these answers only: not in the log, not in the audit log
    const audit = await api.get('/api/audit?limit=500');
    for (const c of [...cal, ...mail]) {
      assert.ok(!cell.output().includes(c.password), 'not in the cell log');
      assert.ok(!audit.text.includes(c.password), 'not in the audit log');
    }
  });

  it('refuses bad account input with the error shape, and creates nothing', async () => {
    const before = await accountsIn('calendar');
    const rows = (await api.get('/api/calendar/users')).body.accounts.length;
    for (const username of [
      '../alice',
      'a:b',
      'a\nb',
      'alice@evil.example',
      '@alice',
      'alice/..',
      '.hidden',
      'UPPER',
      'a b',
      '',
    ]) {
      const res = await api.post('/api/calendar/users', { username });
      assert.equal(res.status, 400, `${JSON.stringify(username)}: ${res.text}`);
      assert.equal(res.body.ok, false);
      assert.equal(res.body.code, 'validation_failed', res.text);
    }
    const huge = await api.post('/api/calendar/users', { username: 'a'.repeat(10 * 1024 * 1024) });
    assert.equal(huge.status, 413, huge.text.slice(0, 200));
    assert.equal(huge.body.ok, false);
    const nobody = await api.post('/api/email/mailboxes', { peer: 'nobody' });
    assert.equal(nobody.status, 404, nobody.text);
    assert.equal(nobody.body.ok, false);
    const alias = await api.post('/api/email/aliases', { alias: '../x', mailbox: 'alice' });
    assert.equal(alias.status, 400, alias.text);
    const aliasNoBox = await api.post('/api/email/aliases', { alias: 'info', mailbox: 'nobody' });
    assert.equal(aliasNoBox.status, 409, aliasNoBox.text);
    assert.deepEqual(await accountsIn('calendar'), before);
    assert.equal((await api.get('/api/calendar/users')).body.accounts.length, rows);
    assert.deepEqual(await accountsIn('email'), ['alice', 'bob']);
    assert.deepEqual((await api.get('/api/email/aliases')).body.result, []);
    const refused = (await api.get('/api/audit?action=calendar.accounts.create&limit=100')).body.entries.filter(
      (e: any) => e.result === 'error',
    );
    assert.ok(refused.length >= 10, `refused creates are audited: ${refused.length}`);
  });

  const davClient = async (peer: string, password?: string) => {
    const [c] = await credentialsOf(peer, 'calendar');
    return createDAVClient({
      serverUrl: `https://${c!.host}:${c!.port}${c!.path}`,
      credentials: { username: c!.username, password: password ?? c!.password },
      authMethod: 'Basic',
      defaultAccountType: 'caldav',
      fetch: agentFetch(agent),
    });
  };
  const EVENT = [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//pic//test//EN',
    'BEGIN:VEVENT',
    'UID:pic-test-event-1',
    'DTSTAMP:20261201T100000Z',
    'DTSTART:20261224T180000Z',
    'DTEND:20261224T200000Z',
    'SUMMARY:Dinner with Bob',
    'END:VEVENT',
    'END:VCALENDAR',
    '',
  ].join('\r\n');
  const VCARD = [
    'BEGIN:VCARD',
    'VERSION:3.0',
    'UID:pic-test-card-1',
    'FN:Bob Example',
    'N:Example;Bob;;;',
    'EMAIL:bob@example.org',
    'END:VCARD',
    '',
  ].join('\r\n');

  it('calendar: alice creates an event (CalDAV) and a contact (CardDAV), reads them back; bob cannot', async () => {
    const [c] = await credentialsOf('alice', 'calendar');
    const base = `https://${c!.host}:${c!.port}/alice/`;
    const alice = await davClient('alice');
    await alice.makeCalendar({ url: `${base}personal/`, props: { 'd:displayname': 'Personal' } });
    await alice.makeCollection({
      url: `${base}contacts/`,
      props: { 'd:resourcetype': { 'd:collection': {}, 'card:addressbook': {} }, 'd:displayname': 'Contacts' },
    });
    const made = await alice.createCalendarObject({
      calendar: { url: `${base}personal/` },
      filename: 'dinner.ics',
      iCalString: EVENT,
    });
    assert.ok(made.ok, `PUT event: ${made.status}`);
    const card = await alice.createVCard({
      addressBook: { url: `${base}contacts/` },
      filename: 'bob.vcf',
      vCardString: VCARD,
    });
    assert.ok(card.ok, `PUT contact: ${card.status}`);

    const calendars = await alice.fetchCalendars();
    const personal = calendars.find((x) => x.url.endsWith('/alice/personal/'));
    assert.ok(personal, JSON.stringify(calendars.map((x) => x.url)));
    const events = await alice.fetchCalendarObjects({ calendar: personal! });
    assert.equal(events.length, 1);
    assert.match(events[0]!.data, /SUMMARY:Dinner with Bob/);
    const books = await alice.fetchAddressBooks();
    const contacts = books.find((x) => x.url.endsWith('/alice/contacts/'));
    assert.ok(contacts, JSON.stringify(books.map((x) => x.url)));
    const cards = await alice.fetchVCards({ addressBook: contacts! });
    assert.equal(cards.length, 1);
    assert.match(cards[0]!.data, /FN:Bob Example/);

    // the admin API sees the collections
    const listed = await api.get('/api/calendar/users/alice/calendars');
    assert.equal(listed.status, 200, listed.text);
    assert.deepEqual(listed.body.result, [{ href: '/alice/personal/', name: 'Personal', items: 1 }]);
    assert.deepEqual((await api.get('/api/calendar/users/alice/addressbooks')).body.result, [
      { href: '/alice/contacts/', name: 'Contacts', items: 1 },
    ]);

    // bob, with his own valid login, gets nothing of alice's
    const bobFetch = agentFetch(agent);
    const [b] = await credentialsOf('bob', 'calendar');
    const auth = `Basic ${Buffer.from(`${b!.username}:${b!.password}`).toString('base64')}`;
    const own = await bobFetch(`https://${b!.host}:${b!.port}/bob/`, {
      method: 'PROPFIND',
      headers: { authorization: auth, depth: '0' },
    });
    assert.equal(own.status, 207, 'bob reaches his own principal');
    for (const path of ['/alice/personal/dinner.ics', '/alice/contacts/bob.vcf', '/alice/personal/']) {
      const res = await bobFetch(`https://${b!.host}:${b!.port}${path}`, {
        method: path.endsWith('/') ? 'PROPFIND' : 'GET',
        headers: { authorization: auth, depth: '1' },
      });
      assert.equal(res.status, 403, `bob ${path}`);
    }
    const put = await bobFetch(`https://${b!.host}:${b!.port}/alice/personal/evil.ics`, {
      method: 'PUT',
      headers: { authorization: auth, 'content-type': 'text/calendar' },
      body: EVENT.replace('pic-test-event-1', 'evil'),
    });
    assert.equal(put.status, 403);
    // a wrong password is refused
    const wrong = await bobFetch(`https://${b!.host}:${b!.port}/bob/`, {
      method: 'PROPFIND',
      headers: { authorization: `Basic ${Buffer.from('bob:wrong-password').toString('base64')}`, depth: '0' },
    });
    assert.equal(wrong.status, 401);
  });

  const filesClient = async (peer: string) => {
    const [c] = await credentialsOf(peer, 'files');
    return createWebdavClient(`https://${c!.host}:${c!.port}${c!.path}`, {
      username: c!.username,
      password: c!.password,
      httpsAgent: agent,
    });
  };
  const usage = async () => {
    const res = await api.get('/api/files/usage');
    assert.equal(res.status, 200, res.text);
    return res.body.result as Record<string, number>;
  };

  it('files: alice does PUT, GET, PROPFIND, MOVE, DELETE; bob cannot read hers; usage follows writes', async () => {
    const alice = await filesClient('alice');
    const before = await usage();
    const content = 'x'.repeat(100_000);
    await alice.createDirectory('/docs');
    assert.equal(await alice.putFileContents('/docs/report.txt', content), true);
    assert.equal(await alice.getFileContents('/docs/report.txt', { format: 'text' }), content);
    const listing = (await alice.getDirectoryContents('/docs')) as Array<{
      basename: string;
      size: number;
      type: string;
    }>;
    assert.deepEqual(
      listing.map((e) => [e.basename, e.type, e.size]),
      [['report.txt', 'file', 100_000]],
    );
    const grown = await usage();
    assert.ok(grown['alice']! - before['alice']! >= 100_000, `usage grew: ${JSON.stringify([before, grown])}`);
    await alice.moveFile('/docs/report.txt', '/docs/final.txt');
    assert.equal(await alice.exists('/docs/report.txt'), false);
    assert.equal(await alice.getFileContents('/docs/final.txt', { format: 'text' }), content);
    const admin = await api.get('/api/files/users/alice/listing');
    assert.deepEqual(admin.body.result, [
      { path: 'docs', type: 'folder', size: 0 },
      { path: 'docs/final.txt', type: 'file', size: 100_000 },
    ]);

    // bob: his own folder works, alice's does not (read, list, write, or moving his file into hers)
    const [b] = await credentialsOf('bob', 'files');
    const bobAt = (path: string) =>
      createWebdavClient(`https://${b!.host}:${b!.port}${path}`, {
        username: b!.username,
        password: b!.password,
        httpsAgent: agent,
      });
    const bob = bobAt('/bob/');
    await bob.putFileContents('/mine.txt', 'bob');
    await assert.rejects(bobAt('/alice/').getFileContents('/docs/final.txt'), /401|403/);
    await assert.rejects(bobAt('/alice/').getDirectoryContents('/'), /401|403/);
    await assert.rejects(bobAt('/alice/').putFileContents('/evil.txt', 'x'), /401|403/);
    await assert.rejects(bob.moveFile('/mine.txt', '/../alice/stolen.txt'), /401|403|400/);
    assert.equal(await alice.exists('/stolen.txt'), false);

    await alice.deleteFile('/docs/final.txt');
    assert.equal(await alice.exists('/docs/final.txt'), false);
    const shrunk = await usage();
    assert.ok(grown['alice']! - shrunk['alice']! >= 100_000, `usage shrank: ${JSON.stringify([grown, shrunk])}`);
    await alice.putFileContents('/keep.txt', 'kept across a reinstall');
  });

  it('email: alice mails bob by submission, bob reads over IMAP; bad logins refused', async () => {
    const [, aliceSmtp] = await credentialsOf('alice', 'email');
    const [bobImap] = await credentialsOf('bob', 'email');
    const tls = { ca: caPem, servername: aliceSmtp!.host };
    const smtp = nodemailer.createTransport({
      host: '127.0.0.1',
      port: aliceSmtp!.port,
      secure: false,
      requireTLS: true,
      auth: { user: aliceSmtp!.username, pass: aliceSmtp!.password },
      tls,
    });
    const mark = (what: string) => process.stderr.write(`[services] email: ${what} at ${Date.now() - t0} ms\n`);
    const t0 = Date.now();
    const sent = await smtp.sendMail({
      from: aliceSmtp!.username,
      to: bobImap!.username,
      subject: 'Hello from alice',
      text: 'See you at dinner.',
    });
    assert.deepEqual(sent.accepted, [bobImap!.username]);
    // sending as someone else is refused
    await assert.rejects(
      smtp.sendMail({ from: bobImap!.username, to: bobImap!.username, subject: 'forged', text: 'x' }),
      /Sender address rejected|not owned/,
    );
    smtp.close();
    mark('sent');
    const wrongSmtp = nodemailer.createTransport({
      host: '127.0.0.1',
      port: aliceSmtp!.port,
      secure: false,
      requireTLS: true,
      auth: { user: aliceSmtp!.username, pass: 'wrong-password' },
      tls,
    });
    await assert.rejects(wrongSmtp.verify(), /535|authentication failed/i);

    const imap = (user: string, pass: string) =>
      new ImapFlow({
        host: '127.0.0.1',
        port: bobImap!.port,
        secure: true,
        servername: bobImap!.host,
        tls: { ca: caPem },
        auth: { user, pass },
        logger: false,
      });
    mark('wrong smtp refused');
    const bob = imap(bobImap!.username, bobImap!.password);
    const message = await eventually(
      "the mail to arrive in bob's INBOX",
      async () => {
        await (bob.usable ? Promise.resolve() : bob.connect());
        const lock = await bob.getMailboxLock('INBOX');
        try {
          if (!(await messagesIn(bob))) return undefined;
          return await bob.fetchOne('*', { envelope: true, source: true });
        } finally {
          lock.release();
        }
      },
      30_000,
      200,
    );
    assert.ok(message);
    assert.equal(message.envelope?.subject, 'Hello from alice');
    assert.match(message.source!.toString(), /See you at dinner/);
    await bob.logout();
    mark('read');

    await assert.rejects(
      imap(bobImap!.username, 'wrong-password').connect(),
      /Authentication failed|AUTHENTICATIONFAILED|Command failed/i,
    );
    const [aliceImap] = await credentialsOf('alice', 'email');
    await assert.rejects(
      imap(bobImap!.username, aliceImap!.password).connect(),
      /Authentication failed|AUTHENTICATIONFAILED|Command failed/i,
    );
    // alice's own mailbox does not have bob's mail, and bob's folders are not hers to open
    mark('wrong imap refused');
    const alice = imap(aliceImap!.username, aliceImap!.password);
    await alice.connect();
    assert.equal(await messagesIn(alice), 0);
    const boxes = (await alice.list()).map((b) => b.path);
    assert.deepEqual(boxes, ['INBOX']);
    await alice.logout();

    // IMAP on 143: STARTTLS first (checked against the cell's CA), never a login in the clear
    const on143 = (doSTARTTLS: boolean) =>
      new ImapFlow({
        host: '127.0.0.1',
        port: ports['email:143']!,
        secure: false,
        doSTARTTLS,
        servername: bobImap!.host,
        tls: { ca: caPem },
        auth: { user: bobImap!.username, pass: bobImap!.password },
        logger: false,
      });
    const starttls = on143(true);
    await starttls.connect();
    assert.equal(await messagesIn(starttls), 1);
    await starttls.logout();
    await assert.rejects(on143(false).connect(), 'no plaintext login');

    // port 25: another server delivers to a local mailbox without logging in; nobody relays elsewhere
    const inbound = nodemailer.createTransport({ host: '127.0.0.1', port: ports['email:25']!, secure: false, tls });
    const outside = { from: 'friend@example.net', text: 'hi' };
    const delivered = await inbound.sendMail({ ...outside, to: bobImap!.username, subject: 'From outside' });
    assert.deepEqual(delivered.accepted, [bobImap!.username]);
    const relay = inbound.sendMail({ ...outside, to: 'victim@example.com', subject: 'relay?' });
    await assert.rejects(relay, /Relay access denied/);
    const unknown = inbound.sendMail({ ...outside, to: `nobody@${IDENTITY.domain}`, subject: 'x' });
    await assert.rejects(unknown, /User unknown|Recipient address rejected/);
    inbound.close();

    // aliases and quota
    const added = await api.post('/api/email/aliases', { alias: 'info', mailbox: 'bob' });
    assert.equal(added.status, 200, added.text);
    assert.deepEqual((await api.get('/api/email/aliases')).body.result, [{ alias: 'info', mailbox: 'bob' }]);
    const quota = await api.get('/api/email/quota');
    assert.ok(quota.body.result.bob > 0, quota.text);
  });

  it('rotates a password: the old one stops working, the new one works', async () => {
    const [old] = await credentialsOf('alice', 'calendar');
    const res = await api.post('/api/calendar/users/alice/rotate', {});
    assert.equal(res.status, 200, res.text);
    assert.ok(!res.text.includes(old!.password));
    const [now] = await credentialsOf('alice', 'calendar');
    assert.notEqual(now!.password, old!.password);
    const f = agentFetch(agent);
    const propfind = (password: string) =>
      f(`https://${now!.host}:${now!.port}/alice/`, {
        method: 'PROPFIND',
        headers: { authorization: `Basic ${Buffer.from(`alice:${password}`).toString('base64')}`, depth: '0' },
      });
    assert.equal((await propfind(old!.password)).status, 401);
    assert.equal((await propfind(now!.password)).status, 207);
  });

  it('deleting a peer removes its accounts from every real server', async () => {
    const carol = await api.post('/api/peers', { name: 'carol' });
    assert.equal(carol.status, 201, carol.text);
    for (const path of ['/api/calendar/users', '/api/files/users', '/api/email/mailboxes'])
      assert.equal((await api.post(path, { peer: 'carol' })).status, 201);
    for (const id of SERVICES) assert.deepEqual(await accountsIn(id), ['alice', 'bob', 'carol']);
    assert.equal((await api.delete('/api/peers/carol')).status, 200);
    for (const id of SERVICES) assert.deepEqual(await accountsIn(id), ['alice', 'bob'], `${id} forgot carol`);
  });

  it('remove keeps the data and the accounts: a reinstall of a newer version finds them; purge deletes them', async () => {
    for (const id of SERVICES) {
      const res = await api.post('/api/store/remove', { id });
      assert.equal(res.status, 200, res.text);
      assert.equal(
        (await api.get(id === 'email' ? '/api/email/mailboxes' : `/api/${id}/users`)).status,
        404,
        `${id} routes are gone`,
      );
    }
    assert.equal((await view.listContainers()).length, 0);
    assert.equal((await view.listVolumes()).length, 3, 'one volume each is kept');
    // The catalog moves to a newer version of every service: an update is a remove (done above,
    // data kept) and an install of the newer version, which must find the data again.
    const newer = await Promise.all(SERVICES.map(manifestOf));
    for (const man of newer) man.version = '1.1.1';
    await writeMultiCatalog(m, catalogDir, { version: 2, key: key.privateKey, manifests: newer });
    for (const id of SERVICES) await install(id);
    const listed = (await api.get('/api/store')).body.services;
    for (const id of SERVICES)
      assert.equal(listed.find((x: any) => x.id === id).installed_version, '1.1.1', `${id} runs the newer version`);

    const alice = await davClient('alice');
    const personal = (await alice.fetchCalendars()).find((x) => x.url.endsWith('/alice/personal/'));
    assert.ok(personal, 'the calendar survived');
    assert.match((await alice.fetchCalendarObjects({ calendar: personal! }))[0]!.data, /Dinner with Bob/);
    assert.equal(
      await (await filesClient('alice')).getFileContents('/keep.txt', { format: 'text' }),
      'kept across a reinstall',
    );
    const [bobImap] = await credentialsOf('bob', 'email');
    const bob = new ImapFlow({
      host: '127.0.0.1',
      port: bobImap!.port,
      secure: true,
      servername: bobImap!.host,
      tls: { ca: caPem },
      auth: { user: bobImap!.username, pass: bobImap!.password },
      logger: false,
    });
    await bob.connect();
    assert.equal(await messagesIn(bob), 2, 'the mail survived');
    await bob.logout();

    for (const id of SERVICES) {
      const res = await api.post('/api/store/remove', { id, purge: true });
      assert.equal(res.status, 200, res.text);
    }
    assert.deepEqual(
      (await view.listVolumes()).map((v) => v.name),
      [],
      'purge deletes the data',
    );
    assert.equal((await api.get('/api/peers/alice/service-credentials')).body.services.length, 0, 'and the accounts');
    await install('calendar');
    assert.deepEqual(await accountsIn('calendar'), [], 'a fresh install after a purge starts empty');
    assert.deepEqual((await api.get('/api/calendar/users')).body.accounts, []);
  });
});
