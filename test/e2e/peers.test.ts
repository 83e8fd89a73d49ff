import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../support/cell-process.js';
import { type ApiClient, NETWORK, type ApiResponse } from '../support/client.js';
import { assertError, assertNoInternals } from '../support/expect.js';
import type { ReadyCell } from '../support/ready-cell.js';
import {
  PNG_SIGNATURE,
  getBytes,
  loadWgConfig,
  passwordScheme,
  peerId,
  startPeersCell,
  userExists,
  vaultSecretNames,
  type WgConfigApi,
} from './peers-helpers.js';

const WG_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** The cell's own X25519 public-key derivation, to check a config's private key belongs to the peer. */
async function publicKeyOf(privateKey: string): Promise<string> {
  const url = pathToFileURL(join(REPO_ROOT, 'packages', 'cell', 'dist', 'features', 'wireguard', 'keys.js')).href;
  return ((await import(url)) as { publicKeyOf(k: string): string }).publicKeyOf(privateKey);
}

describe('peers API (real cell process)', () => {
  let ready: ReadyCell;
  let admin: ApiClient;
  let wg: WgConfigApi;
  /** Every secret the cell handed out once (login passwords) or only inside a config (keys). */
  const secrets = new Map<string, string>();
  const logins = new Map<string, string>();

  const create = async (body: Record<string, unknown>): Promise<ApiResponse> => {
    const res = await admin.post('/api/peers', body);
    if (res.status === 201) {
      logins.set(res.body.login.username, res.body.login.password);
      secrets.set(`password of ${res.body.login.username}`, res.body.login.password);
    }
    return res;
  };
  const mustCreate = async (body: Record<string, unknown>) => {
    const res = await create(body);
    assert.equal(res.status, 201, `create ${JSON.stringify(body)}: ${res.text}`);
    return res.body.peer;
  };
  const signInAs = async (name: string): Promise<ApiClient> => {
    const api = ready.anon();
    const res = await api.login(name, logins.get(name)!);
    assert.equal(res.status, 200, `login as ${name}: ${res.text}`);
    return api;
  };
  const names = (res: ApiResponse) => (res.body.peers as Array<{ name: string }>).map((p) => p.name);
  const configOf = async (name: string) => {
    const res = await admin.get(`/api/peers/${name}/config`);
    assert.equal(res.status, 200, res.text);
    return { text: res.text, parsed: wg.parseWgQuickConfig(res.text), res };
  };

  before(async () => {
    ready = await startPeersCell();
    admin = ready.admin;
    wg = await loadWgConfig();
  });
  after(async () => ready.cell.destroy());

  it("creates peers on the next free addresses, never the cell's own, with a one-time login password", async () => {
    const res = await create({ name: 'laptop', description: "Ann's laptop", dns: ['10.8.0.1', '9.9.9.9'] });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.ok, true);
    assert.equal(res.headers.get('cache-control'), 'no-store', 'the one-time password is not cached');
    const peer = res.body.peer;
    assert.equal(peer.name, 'laptop');
    assert.equal(peer.description, "Ann's laptop");
    assert.equal(peer.address, '10.8.0.2', 'the first peer takes the host after the cell (10.8.0.1)');
    assert.match(peer.public_key, WG_KEY);
    assert.deepEqual(peer.dns, ['10.8.0.1', '9.9.9.9']);
    assert.deepEqual(peer.allowed_ips, []);
    assert.equal(peer.group, null);
    assert.deepEqual(peer.tags, []);
    assert.equal(peer.enabled, true);
    assert.equal(peer.expires_at, null);
    assert.equal(peer.active, true);
    assert.equal(peer.online, false);
    assert.equal(res.body.login.username, 'laptop');
    assert.equal(typeof res.body.login.password, 'string');
    assert.ok(res.body.login.password.length >= 16, 'a generated password is long');

    const phone = await mustCreate({ name: 'phone', group: 'family', tags: ['mobile'] });
    assert.equal(phone.address, '10.8.0.3');
    assert.equal(phone.group, 'family');
    assert.deepEqual(phone.tags, ['mobile']);
    assert.notEqual(phone.public_key, peer.public_key, 'each peer has its own key pair');

    // a password the admin chooses is taken as given
    const chosen = await create({ name: 'desktop', password: 'a password chosen by the admin' });
    assert.equal(chosen.status, 201, chosen.text);
    assert.equal(chosen.body.login.password, 'a password chosen by the admin');
    assert.equal(chosen.body.peer.address, '10.8.0.4');

    // the one-time password is a working login for role peer
    const api = ready.anon();
    const login = await api.login('laptop', logins.get('laptop')!);
    assert.equal(login.status, 200, login.text);
    assert.equal(login.body.user.role, 'peer');
    assert.equal(login.body.user.username, 'laptop');
    assert.equal((await api.get('/api/peer/me')).body.peer.name, 'laptop');

    // a generated password (≥ 128 bits) is stored as SHA-256; the one a person chose keeps scrypt; both sign in
    assert.ok(res.body.login.password.length >= 23, '23 characters of 54 symbols: over 128 bits');
    assert.equal(passwordScheme(ready.cell.dataDir, 'laptop'), 'sha256');
    assert.equal(passwordScheme(ready.cell.dataDir, 'desktop'), 'scrypt');
    assert.equal((await ready.anon().login('desktop', 'a password chosen by the admin')).status, 200);
    const wrongPassword = { username: 'laptop', password: `${logins.get('laptop')}x` };
    const wrong = await ready.anon().post('/api/auth/login', wrongPassword);
    assertError(wrong, 401, { code: 'unauthorized' });
  });

  it('refuses a duplicate name with 409 and each bad field with a 400 naming it; nothing is created', async () => {
    const before = (await admin.get('/api/peers')).body.total;
    assertError(await create({ name: 'laptop' }), 409, {
      code: 'conflict',
      fields: ['name'],
      context: 'duplicate name',
    });
    // a peer's login is a user: a name taken by a user is taken too
    assertError(await create({ name: 'admin' }), 409, { code: 'conflict', context: 'name of an existing user' });

    const cases: Array<[Record<string, unknown>, string]> = [
      [{}, 'name'],
      [{ name: '' }, 'name'],
      [{ name: 'Bad_Name' }, 'name'],
      [{ name: '-lead' }, 'name'],
      [{ name: 'trail-' }, 'name'],
      [{ name: 'a'.repeat(64) }, 'name'],
      [{ name: 42 }, 'name'],
      [{ name: 'ok-one', dns: ['not-an-ip'] }, 'dns.0'],
      [{ name: 'ok-one', dns: '10.8.0.1' }, 'dns'],
      [{ name: 'ok-one', allowed_ips: ['10.0.0.0/33'] }, 'allowed_ips.0'],
      [{ name: 'ok-one', allowed_ips: ['0.0.0.0/0', 'everything'] }, 'allowed_ips.1'],
      [{ name: 'ok-one', allowed_ips: [] }, 'allowed_ips'],
      [{ name: 'ok-one', expires_at: '2001-01-01T00:00:00Z' }, 'expires_at'],
      [{ name: 'ok-one', expires_at: 'next tuesday' }, 'expires_at'],
      [{ name: 'ok-one', password: 'short' }, 'password'],
      [{ name: 'ok-one', group: 'Not A Group' }, 'group'],
      [{ name: 'ok-one', private_key: 'mine' }, 'private_key'],
      [{ name: 'ok-one', bogus: 1 }, 'bogus'],
    ];
    for (const [body, field] of cases) {
      assertError(await create(body), 400, {
        code: 'validation_failed',
        fields: [field],
        context: JSON.stringify(body),
      });
    }
    const after = await admin.get('/api/peers');
    assert.equal(after.body.total, before, 'no refused request created a peer');
    assert.ok(!names(after).includes('ok-one'));

    // PUT: rename is refused with the reason; so are unknown fields and an empty change
    assertError(await admin.put('/api/peers/laptop', { name: 'renamed' }), 400, {
      fields: ['name'],
      context: 'rename',
    });
    assertError(await admin.put('/api/peers/laptop', { address: '10.8.0.9' }), 400, {
      fields: ['address'],
      context: 'address',
    });
    assertError(await admin.put('/api/peers/laptop', { dns: ['x'] }), 400, { fields: ['dns.0'], context: 'put dns' });
    assertError(await admin.put('/api/peers/laptop', { expires_at: '2001-01-01T00:00:00Z' }), 400, {
      fields: ['expires_at'],
    });
    assertError(await admin.put('/api/peers/laptop', { enabled: 'yes' }), 400, { fields: ['enabled'] });
    assertError(await admin.put('/api/peers/laptop', {}), 400, { context: 'nothing to change' });
    assertError(await admin.put('/api/peers/nobody', { description: 'x' }), 404, { code: 'not_found' });
    assert.equal((await admin.get('/api/peers/renamed')).status, 404);
    assert.equal((await admin.get('/api/peers/laptop')).body.peer.address, '10.8.0.2', 'laptop is unchanged');
  });

  it("gives the config text: address, DNS, endpoint, AllowedIPs = the subnet, PSK, the cell's public key", async () => {
    const { text, parsed, res } = await configOf('laptop');
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('content-disposition'), null, 'inline unless a download is asked for');
    assert.deepEqual(parsed.ignoredKeys, []);
    assert.deepEqual(parsed.interface.addresses, ['10.8.0.2/32']);
    assert.deepEqual(parsed.interface.dns, ['10.8.0.1', '9.9.9.9']);
    const peer = (await admin.get('/api/peers/laptop')).body.peer;
    assert.equal(
      await publicKeyOf(parsed.interface.privateKey),
      peer.public_key,
      "the config's private key is the peer's",
    );
    assert.equal(parsed.peers.length, 1, 'one [Peer]: the cell');
    const cell = parsed.peers[0]!;
    assert.equal(cell.endpoint, NETWORK.endpoint, "the endpoint from the wizard's network step");
    assert.deepEqual(cell.allowedIps, [NETWORK.subnet], 'split tunnel by default: the cell subnet');
    assert.match(cell.presharedKey ?? '', WG_KEY, 'a preshared key');
    const status = await admin.get('/api/wireguard/status');
    assert.equal(status.status, 200, status.text);
    assert.match(status.body.public_key, WG_KEY);
    assert.equal(cell.publicKey, status.body.public_key, "the cell's public key from /api/wireguard/status");
    secrets.set('private key of laptop', parsed.interface.privateKey);
    secrets.set('psk of laptop', cell.presharedKey!);

    // the same config twice: keys are stored, not regenerated
    assert.equal((await configOf('laptop')).text, text);

    // routes chosen for the peer replace the default; a full tunnel is possible
    await mustCreate({ name: 'full-tunnel', allowed_ips: ['0.0.0.0/0'] });
    const full = (await configOf('full-tunnel')).parsed;
    assert.deepEqual(full.peers[0]!.allowedIps, ['0.0.0.0/0']);
    assert.deepEqual(full.interface.dns, [], 'no DNS line unless given');
    assert.notEqual(full.peers[0]!.presharedKey, cell.presharedKey, 'each peer has its own PSK');
    secrets.set('private key of full-tunnel', full.interface.privateKey);
    secrets.set('psk of full-tunnel', full.peers[0]!.presharedKey!);

    // ?download=1 is the same text as an attachment
    const download = await admin.get('/api/peers/laptop/config?download=1');
    assert.equal(download.status, 200);
    assert.match(download.headers.get('content-disposition') ?? '', /^attachment; filename="laptop\.conf"$/);
    assert.equal(download.text, text);

    assertError(await admin.get('/api/peers/nobody/config'), 404, { code: 'not_found' });
    assertError(await admin.get('/api/peers/laptop/config?format=gif'), 400, { fields: ['format'] });
    assertError(await admin.get('/api/peers/laptop/config?bogus=1'), 400, { fields: ['bogus'] });
  });

  it('gives the config as a QR code: PNG by default, SVG on request', async () => {
    const png = await getBytes(admin, '/api/peers/laptop/qr');
    assert.equal(png.status, 200);
    assert.equal(png.headers.get('content-type'), 'image/png');
    assert.equal(png.headers.get('cache-control'), 'no-store');
    assert.ok(png.bytes.subarray(0, 8).equals(PNG_SIGNATURE), 'a PNG signature');
    assert.ok(png.bytes.length > 500, `a real image (${png.bytes.length} bytes)`);
    const explicit = await getBytes(admin, '/api/peers/laptop/qr?format=png');
    assert.ok(explicit.bytes.subarray(0, 8).equals(PNG_SIGNATURE));

    const svg = await admin.get('/api/peers/laptop/qr?format=svg');
    assert.equal(svg.status, 200);
    assert.match(svg.headers.get('content-type') ?? '', /^image\/svg\+xml/);
    assert.match(svg.text, /<svg[\s>]/);
    assert.match(svg.text, /<\/svg>\s*$/);
    // the QR code encodes the secret config, but never as readable text
    for (const [what, value] of secrets) assert.ok(!svg.text.includes(value), `no ${what} in the SVG markup`);

    assertError(await admin.get('/api/peers/laptop/qr?format=jpeg'), 400, { fields: ['format'] });
    assertError(await admin.get('/api/peers/nobody/qr'), 404, { code: 'not_found' });
  });

  it('never shows a login password, private key or PSK again (list, get, status, self-service, audit)', async () => {
    assert.ok(secrets.size >= 6, `secrets collected by earlier tests: ${[...secrets.keys()].join(', ')}`);
    const peerApi = await signInAs('laptop');
    const responses: Array<[string, ApiResponse]> = [
      ['GET /api/peers', await admin.get('/api/peers')],
      ['GET /api/peers?limit=1000', await admin.get('/api/peers?limit=1000')],
      ['GET /api/peers/laptop', await admin.get('/api/peers/laptop')],
      ['GET /api/peers/full-tunnel', await admin.get('/api/peers/full-tunnel')],
      ['GET /api/wireguard/status', await admin.get('/api/wireguard/status')],
      ['GET /api/audit', await admin.get('/api/audit?limit=1000')],
      ['GET /api/audit/export', await admin.get('/api/audit/export?format=json')],
      ['GET /api/peer/me', await peerApi.get('/api/peer/me')],
      ['GET /api/auth/users', await admin.get('/api/auth/users')],
      ['GET /api/config', await admin.get('/api/config')],
    ];
    for (const [where, res] of responses) {
      assert.equal(res.status, 200, `${where}: ${res.text}`);
      for (const [what, value] of secrets)
        assert.ok(!res.text.includes(value), `${where} must not contain the ${what}`);
      assert.ok(
        !/private_?key|preshared|"psk"|password"/i.test(res.text.replace(/"must_change_password"/g, '')),
        `${where}: no secret-named field`,
      );
    }
    // and the create response held the password, never the keys
    const created = await create({ name: 'one-time' });
    assert.equal(created.status, 201);
    const { parsed } = await configOf('one-time');
    assert.ok(!created.text.includes(parsed.interface.privateKey), 'no private key in the create response');
    assert.ok(!created.text.includes(parsed.peers[0]!.presharedKey!), 'no PSK in the create response');
  });

  it('lists with pagination and filters by group, tag, enabled and name', async () => {
    await mustCreate({ name: 'work-pc', group: 'work', tags: ['laptop', 'office'] });
    await mustCreate({ name: 'work-phone', group: 'work', tags: ['mobile'] });
    await mustCreate({ name: 'home-tv', group: 'home', tags: ['tv'] });
    await mustCreate({ name: 'kid-tablet', group: 'home', tags: ['tablet', 'mobile'] });
    assert.equal((await admin.put('/api/peers/kid-tablet', { enabled: false })).status, 200);

    const all = await admin.get('/api/peers');
    assert.equal(all.status, 200, all.text);
    assert.equal(all.body.ok, true);
    assert.equal(all.body.limit, 100);
    assert.equal(all.body.offset, 0);
    const everyone = names(all);
    assert.equal(all.body.total, everyone.length);
    assert.deepEqual(everyone, [...everyone].sort(), 'ordered by name');
    for (const n of [
      'laptop',
      'phone',
      'desktop',
      'full-tunnel',
      'one-time',
      'work-pc',
      'work-phone',
      'home-tv',
      'kid-tablet',
    ]) {
      assert.ok(everyone.includes(n), `${n} listed`);
    }

    // pages: disjoint, in order, and together the whole list
    const pages: string[] = [];
    for (let offset = 0; offset < everyone.length; offset += 4) {
      const page = await admin.get(`/api/peers?limit=4&offset=${offset}`);
      assert.equal(page.status, 200);
      assert.equal(page.body.total, everyone.length, 'total counts every match, not the page');
      assert.equal(page.body.limit, 4);
      assert.equal(page.body.offset, offset);
      assert.ok(page.body.peers.length <= 4);
      pages.push(...names(page));
    }
    assert.deepEqual(pages, everyone);
    const beyond = await admin.get(`/api/peers?offset=${everyone.length}`);
    assert.deepEqual(beyond.body.peers, []);
    assert.equal(beyond.body.total, everyone.length);

    const byGroup = await admin.get('/api/peers?group=work');
    assert.deepEqual(names(byGroup), ['work-pc', 'work-phone']);
    assert.equal(byGroup.body.total, 2);
    assert.ok(byGroup.body.peers.every((p: { group: string }) => p.group === 'work'));
    assert.deepEqual(names(await admin.get('/api/peers?tag=mobile')), ['kid-tablet', 'phone', 'work-phone']);
    assert.deepEqual(
      names(await admin.get('/api/peers?tag=lap')),
      [],
      'a tag matches whole, not a substring of "laptop"',
    );
    assert.deepEqual(names(await admin.get('/api/peers?enabled=false')), ['kid-tablet']);
    const enabled = names(await admin.get('/api/peers?enabled=true'));
    assert.equal(enabled.length, everyone.length - 1);
    assert.ok(!enabled.includes('kid-tablet'));
    assert.deepEqual(names(await admin.get('/api/peers?q=work')), ['work-pc', 'work-phone']);
    assert.deepEqual(names(await admin.get('/api/peers?q=k-pc')), ['work-pc'], 'a substring of the name');
    assert.deepEqual(names(await admin.get('/api/peers?q=_')), [], 'LIKE wildcards are literal');
    assert.deepEqual(names(await admin.get('/api/peers?q=%25')), [], 'LIKE wildcards are literal');
    const combined = await admin.get('/api/peers?group=home&tag=mobile&enabled=false&q=kid');
    assert.deepEqual(names(combined), ['kid-tablet'], 'filters combine');
    assert.deepEqual(names(await admin.get('/api/peers?group=home&enabled=true')), ['home-tv']);
    const limited = await admin.get('/api/peers?tag=mobile&limit=1&offset=1');
    assert.deepEqual(names(limited), ['phone']);
    assert.equal(limited.body.total, 3);

    for (const [query, field] of [
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['limit=abc', 'limit'],
      ['offset=-1', 'offset'],
      ['enabled=yes', 'enabled'],
      ['bogus=1', 'bogus'],
      ['q=', 'q'],
    ] as const) {
      assertError(await admin.get(`/api/peers?${query}`), 400, { fields: [field], context: query });
    }
  });

  it('GET one peer; PUT changes description, DNS, routes, group, tags and expiry (and the config follows)', async () => {
    const got = await admin.get('/api/peers/phone');
    assert.equal(got.status, 200);
    assert.equal(got.body.peer.name, 'phone');
    assertError(await admin.get('/api/peers/nobody'), 404, { code: 'not_found' });

    const expires = new Date(Date.now() + 7 * 86_400_000).toISOString();
    const put = await admin.put('/api/peers/phone', {
      description: 'new phone',
      dns: ['1.1.1.1'],
      allowed_ips: ['10.8.0.0/24', '192.168.50.0/24'],
      group: 'parents',
      tags: ['mobile', 'android'],
      expires_at: expires,
    });
    assert.equal(put.status, 200, put.text);
    const p = put.body.peer;
    assert.equal(p.description, 'new phone');
    assert.deepEqual(p.dns, ['1.1.1.1']);
    assert.deepEqual(p.allowed_ips, ['10.8.0.0/24', '192.168.50.0/24']);
    assert.equal(p.group, 'parents');
    assert.deepEqual(p.tags, ['mobile', 'android']);
    assert.equal(p.expires_at, expires);
    assert.equal(p.address, '10.8.0.3', 'the address stays');
    assert.deepEqual(
      (await admin.get('/api/peers/phone')).body.peer,
      { ...p, updated_at: p.updated_at },
      'GET shows what PUT returned',
    );

    const conf = (await configOf('phone')).parsed;
    assert.deepEqual(conf.interface.dns, ['1.1.1.1']);
    assert.deepEqual(conf.peers[0]!.allowedIps, ['10.8.0.0/24', '192.168.50.0/24']);
    assert.deepEqual(conf.interface.addresses, ['10.8.0.3/32']);

    const cleared = await admin.put('/api/peers/phone', { group: null, expires_at: null, tags: [] });
    assert.equal(cleared.status, 200, cleared.text);
    assert.equal(cleared.body.peer.group, null);
    assert.equal(cleared.body.peer.expires_at, null);
    assert.deepEqual(cleared.body.peer.tags, []);
    assert.equal(cleared.body.peer.description, 'new phone', 'fields not given stay');
  });

  it('a disabled peer cannot sign in, its sessions end and it leaves the live peers; enabling restores it', async () => {
    const livePeerKeys = async () => {
      const status = await admin.get('/api/wireguard/status');
      assert.equal(status.status, 200);
      return (status.body.peers as Array<{ public_key: string }>).map((p) => p.public_key);
    };
    const phone = (await admin.get('/api/peers/phone')).body.peer;
    assert.ok((await livePeerKeys()).includes(phone.public_key), 'an enabled peer is a live peer');

    const session = await signInAs('phone');
    assert.equal((await session.get('/api/peer/me')).status, 200);

    const off = await admin.put('/api/peers/phone', { enabled: false });
    assert.equal(off.status, 200, off.text);
    assert.equal(off.body.peer.enabled, false);
    assert.equal(off.body.peer.active, false);
    assertError(await session.get('/api/peer/me'), 401, { code: 'unauthorized', context: 'the open session ended' });
    assertError(await ready.anon().post('/api/auth/login', { username: 'phone', password: logins.get('phone') }), 401, {
      code: 'unauthorized',
      context: 'disabled peer login',
    });
    assert.ok(!(await livePeerKeys()).includes(phone.public_key), 'a disabled peer leaves the live peers');
    // its config can still be fetched by the admin (to hand out again later)
    assert.equal((await admin.get('/api/peers/phone/config')).status, 200);

    const on = await admin.put('/api/peers/phone', { enabled: true });
    assert.equal(on.status, 200);
    assert.equal(on.body.peer.active, true);
    assert.equal(
      (await ready.anon().login('phone', logins.get('phone')!)).status,
      200,
      'the same password works again',
    );
    assert.ok((await livePeerKeys()).includes(phone.public_key));
  });

  it('peer self-service: a peer sees only itself; the admin cannot use /api/peer/*, the peer cannot use the rest', async () => {
    const laptop = await signInAs('laptop');
    const me = await laptop.get('/api/peer/me');
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.peer.name, 'laptop');
    assert.equal(me.body.peer.address, '10.8.0.2');
    assert.ok(!me.text.includes('"phone"') && !me.text.includes('10.8.0.3'), 'nothing about other peers');

    const own = await laptop.get('/api/peer/config');
    assert.equal(own.status, 200);
    assert.equal(own.text, (await configOf('laptop')).text, 'the same config the admin gets');
    assert.deepEqual(wg.parseWgQuickConfig(own.text).interface.addresses, ['10.8.0.2/32']);
    const dl = await laptop.get('/api/peer/config?download=true');
    assert.match(dl.headers.get('content-disposition') ?? '', /^attachment; filename="laptop\.conf"$/);
    const png = await getBytes(laptop, '/api/peer/qr');
    assert.equal(png.status, 200);
    assert.ok(png.bytes.subarray(0, 8).equals(PNG_SIGNATURE));
    const svg = await laptop.get('/api/peer/qr?format=svg');
    assert.match(svg.text, /<svg[\s>]/);

    // another peer's login sees its own config, not laptop's
    const phone = await signInAs('phone');
    assert.deepEqual(wg.parseWgQuickConfig((await phone.get('/api/peer/config')).text).interface.addresses, [
      '10.8.0.3/32',
    ]);

    for (const path of [
      '/api/peers',
      '/api/peers/laptop',
      '/api/peers/laptop/config',
      '/api/peers/phone/qr',
      '/api/wireguard/status',
      '/api/peers/laptop/traffic',
    ]) {
      assertError(await laptop.get(path), 403, { code: 'wrong_role', context: `peer GET ${path}` });
    }
    assertError(await laptop.post('/api/peers', { name: 'sneaky' }), 403, {
      code: 'wrong_role',
      context: 'peer creates a peer',
    });
    assertError(await laptop.put('/api/peers/laptop', { enabled: true }), 403, { code: 'wrong_role' });
    assertError(await laptop.delete('/api/peers/phone'), 403, { code: 'wrong_role' });
    assertError(await laptop.post('/api/peers/batch', { action: 'delete', names: ['phone'] }), 403, {
      code: 'wrong_role',
    });
    assert.equal((await admin.get('/api/peers/sneaky')).status, 404);
    for (const path of ['/api/peer/me', '/api/peer/config', '/api/peer/qr']) {
      assertError(await admin.get(path), 403, { code: 'wrong_role', context: `admin GET ${path}` });
      assertError(await ready.anon().get(path), 401, { code: 'unauthorized', context: `anonymous GET ${path}` });
    }
  });

  it('traffic: the shape for each period, 24h by default, 400 for an unknown period', async () => {
    for (const period of ['24h', '7d', '30d'] as const) {
      const res = await admin.get(`/api/peers/laptop/traffic?period=${period}`);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.ok, true);
      assert.equal(res.body.peer, 'laptop');
      assert.equal(res.body.period, period);
      const hours = { '24h': 24, '7d': 168, '30d': 720 }[period];
      const since = Date.parse(res.body.since);
      assert.ok(Math.abs(Date.now() - hours * 3_600_000 - since) < 60_000, `since is ${period} ago: ${res.body.since}`);
      assert.ok(Array.isArray(res.body.points));
      // WireGuard is off in this cell: nothing was sampled, so there is no traffic
      assert.deepEqual(res.body.points, []);
      assert.equal(res.body.rx_bytes, 0);
      assert.equal(res.body.tx_bytes, 0);
    }
    assert.equal((await admin.get('/api/peers/laptop/traffic')).body.period, '24h');
    assertError(await admin.get('/api/peers/laptop/traffic?period=1y'), 400, { fields: ['period'] });
    assertError(await admin.get('/api/peers/laptop/traffic?period=24h&x=1'), 400, { fields: ['x'] });
    assertError(await admin.get('/api/peers/nobody/traffic'), 404, { code: 'not_found' });
  });

  it('DELETE removes the peer, its login (and sessions), its vault secrets, and frees its address', async () => {
    const temp = await mustCreate({ name: 'temp' });
    const id = peerId(ready.cell.dataDir, 'temp')!;
    assert.ok(id, 'the peer row exists');
    assert.deepEqual(vaultSecretNames(ready.cell.dataDir, `peer/${id}/`), [`peer/${id}/private_key`, `peer/${id}/psk`]);
    assert.ok(userExists(ready.cell.dataDir, 'temp'));
    const session = await signInAs('temp');

    const del = await admin.delete('/api/peers/temp');
    assert.equal(del.status, 200, del.text);
    assert.deepEqual(del.body, { ok: true, deleted: 'temp' });
    assertError(await admin.get('/api/peers/temp'), 404, { code: 'not_found' });
    assertError(await admin.get('/api/peers/temp/config'), 404, { code: 'not_found' });
    assert.ok(!names(await admin.get('/api/peers?limit=1000')).includes('temp'));
    assertError(await ready.anon().post('/api/auth/login', { username: 'temp', password: logins.get('temp') }), 401, {
      code: 'unauthorized',
    });
    assertError(await session.get('/api/peer/me'), 401, { code: 'unauthorized', context: 'its session ended' });
    assert.equal(userExists(ready.cell.dataDir, 'temp'), false, 'the login is gone');
    assert.deepEqual(vaultSecretNames(ready.cell.dataDir, `peer/${id}/`), [], 'its vault secrets are gone');
    assert.equal(peerId(ready.cell.dataDir, 'temp'), undefined);
    const live = await admin.get('/api/wireguard/status');
    assert.ok(
      !(live.body.peers as Array<{ public_key: string }>).some((p) => p.public_key === temp.public_key),
      'gone from the live peers',
    );

    // the lowest free address is the one just freed
    const again = await mustCreate({ name: 'temp-again' });
    assert.equal(again.address, temp.address, 'the freed address is reused');
    assert.notEqual(again.public_key, temp.public_key);
    assertError(await admin.delete('/api/peers/temp'), 404, { code: 'not_found', context: 'deleting twice' });
    // a new peer with the old name gets new keys and a new login
    const reborn = await create({ name: 'temp' });
    assert.equal(reborn.status, 201);
    assert.notEqual(reborn.body.peer.public_key, temp.public_key);
    assert.notEqual(reborn.body.login.password, secrets.get('password of temp-again'));
  });

  it('batch enable/disable/delete: all or nothing', async () => {
    for (const name of ['b-one', 'b-two', 'b-three']) await mustCreate({ name, group: 'batch' });
    const enabledOf = async (name: string) => (await admin.get(`/api/peers/${name}`)).body.peer.enabled as boolean;
    const b1 = await signInAs('b-one');

    const missing = await admin.post('/api/peers/batch', {
      action: 'disable',
      names: ['b-one', 'b-two', 'no-such-peer'],
    });
    assertError(missing, 404, { code: 'not_found' });
    assert.match(missing.body.error, /no-such-peer/, 'the error names the unknown peer');
    assert.equal(await enabledOf('b-one'), true, 'nothing changed');
    assert.equal(await enabledOf('b-two'), true, 'nothing changed');
    assert.equal((await b1.get('/api/peer/me')).status, 200, 'the session lives on');
    const missingDelete = await admin.post('/api/peers/batch', { action: 'delete', names: ['b-three', 'nope'] });
    assertError(missingDelete, 404, { code: 'not_found' });
    assert.equal((await admin.get('/api/peers/b-three')).status, 200, 'a failed batch delete deletes nothing');

    const off = await admin.post('/api/peers/batch', { action: 'disable', names: ['b-one', 'b-two'] });
    assert.equal(off.status, 200, off.text);
    assert.deepEqual(off.body, { ok: true, action: 'disable', names: ['b-one', 'b-two'] });
    assert.equal(await enabledOf('b-one'), false);
    assert.equal(await enabledOf('b-two'), false);
    assert.equal(await enabledOf('b-three'), true);
    assertError(await b1.get('/api/peer/me'), 401, { code: 'unauthorized', context: 'batch disable ends sessions' });
    assertError(await ready.anon().post('/api/auth/login', { username: 'b-one', password: logins.get('b-one') }), 401, {
      code: 'unauthorized',
    });

    const on = await admin.post('/api/peers/batch', { action: 'enable', names: ['b-one', 'b-two'] });
    assert.equal(on.status, 200);
    assert.equal(await enabledOf('b-one'), true);
    assert.equal((await ready.anon().login('b-one', logins.get('b-one')!)).status, 200);

    const ids = ['b-one', 'b-two', 'b-three'].map((n) => peerId(ready.cell.dataDir, n)!);
    const gone = await admin.post('/api/peers/batch', { action: 'delete', names: ['b-one', 'b-two', 'b-three'] });
    assert.equal(gone.status, 200, gone.text);
    assert.deepEqual(names(await admin.get('/api/peers?group=batch')), []);
    for (const [i, name] of ['b-one', 'b-two', 'b-three'].entries()) {
      assert.equal(userExists(ready.cell.dataDir, name), false, `${name}'s login is gone`);
      assert.deepEqual(vaultSecretNames(ready.cell.dataDir, `peer/${ids[i]}/`), [], `${name}'s secrets are gone`);
    }

    for (const [body, field] of [
      [{ action: 'explode', names: ['laptop'] }, 'action'],
      [{ action: 'enable', names: [] }, 'names'],
      [{ action: 'enable', names: ['Bad!'] }, 'names.0'],
      [{ action: 'enable', names: ['laptop', 'laptop'] }, 'names'],
      [{ action: 'enable' }, 'names'],
      [{ action: 'enable', names: ['laptop'], extra: true }, 'extra'],
    ] as const) {
      assertError(await admin.post('/api/peers/batch', body), 400, { fields: [field], context: JSON.stringify(body) });
    }
  });

  it('batch add: many peers validated as a whole, in one transaction; any problem adds none', async () => {
    const countPeers = async () => (await admin.get('/api/peers?limit=1')).body.total as number;
    const before = await countPeers();
    const bad = await admin.post('/api/peers/batch', {
      action: 'add',
      peers: [{ name: 'ba-one' }, { name: 'ba-one' }, { name: 'ba-three', dns: ['nope'] }, { name: 'Bad!' }],
    });
    assertError(bad, 400, { fields: ['peers.1.name', 'peers.2.dns.0', 'peers.3.name'] });
    // one name already taken: 409 naming it, and not one of the others is made
    const takenPeers = [{ name: 'ba-one' }, { name: 'laptop' }, { name: 'ba-two' }];
    const taken = await admin.post('/api/peers/batch', { action: 'add', peers: takenPeers });
    assertError(taken, 409, { code: 'conflict' });
    assert.match(taken.body.error, /"laptop"/);
    assert.equal(await countPeers(), before, 'nothing was added');
    assert.equal(userExists(ready.cell.dataDir, 'ba-one'), false, 'no login left behind');
    for (const [body, field] of [
      [{ action: 'add' }, 'peers'],
      [{ action: 'add', names: ['x'], peers: [{ name: 'x' }] }, 'names'],
      [{ action: 'add', peers: [] }, 'peers'],
      [{ action: 'disable', peers: [{ name: 'x' }] }, 'peers'],
    ] as const) {
      assertError(await admin.post('/api/peers/batch', body), 400, { fields: [field], context: JSON.stringify(body) });
    }

    const added = await admin.post('/api/peers/batch', {
      action: 'add',
      peers: [
        { name: 'ba-one', group: 'bulk', tags: ['t1'] },
        { name: 'ba-two', group: 'bulk' },
        { name: 'ba-three', group: 'bulk', password: 'chosen for ba-three' },
      ],
    });
    assert.equal(added.status, 201, added.text);
    assert.equal(added.headers.get('cache-control'), 'no-store', 'the one-time passwords are not cached');
    assert.deepEqual(
      added.body.peers.map((p: { name: string }) => p.name),
      ['ba-one', 'ba-two', 'ba-three'],
    );
    const addresses = added.body.peers.map((p: { address: string }) => p.address);
    assert.equal(new Set(addresses).size, 3, `three different addresses: ${addresses}`);
    assert.deepEqual(added.body.peers[0].tags, ['t1']);
    assert.deepEqual(
      added.body.logins.map((l: { username: string }) => l.username),
      ['ba-one', 'ba-two', 'ba-three'],
    );
    assert.equal(added.body.logins[2].password, 'chosen for ba-three');
    for (const l of added.body.logins as Array<{ username: string; password: string }>) {
      logins.set(l.username, l.password);
      secrets.set(`password of ${l.username}`, l.password);
      assert.equal((await ready.anon().login(l.username, l.password)).status, 200, `${l.username} signs in`);
    }
    assert.equal(passwordScheme(ready.cell.dataDir, 'ba-one'), 'sha256');
    assert.equal(passwordScheme(ready.cell.dataDir, 'ba-three'), 'scrypt');
    const config = (await configOf('ba-two')).parsed;
    assert.equal(config.interface.addresses[0], `${addresses[1]}/32`, 'each has a working config');
    assert.equal(await countPeers(), before + 3);
    const gone = await admin.post('/api/peers/batch', { action: 'delete', names: ['ba-one', 'ba-two', 'ba-three'] });
    assert.equal(gone.status, 200, gone.text);
  });

  it('audits every mutating action with its target, failed ones too, without secrets', async () => {
    const entries = async (q: string) => {
      const res = await admin.get(`/api/audit?limit=1000&${q}`);
      assert.equal(res.status, 200, res.text);
      return res.body.entries as Array<Record<string, any>>;
    };
    const creates = await entries('action=peers.create&result=ok');
    const created = creates.map((e) => e.target_id);
    for (const n of ['laptop', 'phone', 'desktop', 'full-tunnel', 'work-pc', 'temp', 'b-one'])
      assert.ok(created.includes(n), `peers.create of ${n}`);
    assert.ok(creates.every((e) => e.target_type === 'peer' && e.actor === 'admin'));
    assert.equal(creates.find((e) => e.target_id === 'laptop')!.details.address, '10.8.0.2');
    const failedCreate = await entries('action=peers.create&result=error');
    assert.ok(
      failedCreate.some((e) => e.target_id === 'laptop' || e.details?.status === 409),
      'a refused create is recorded',
    );
    const deniedCreate = await entries('action=peers.create&result=denied');
    assert.ok(
      deniedCreate.some((e) => e.actor === 'laptop'),
      "the peer's attempt is recorded as denied",
    );

    const updates = await entries('action=peers.update&target_id=phone');
    assert.ok(
      updates.some((e) => e.result === 'ok' && (e.details.changed as string[]).includes('enabled')),
      'PUT enabled:false on phone',
    );
    assert.ok(updates.every((e) => e.target_type === 'peer'));
    const deletes = await entries('action=peers.delete&target_id=temp');
    assert.ok(
      deletes.some((e) => e.result === 'ok'),
      'DELETE temp',
    );
    assert.ok(
      deletes.some((e) => e.result === 'error'),
      'the second DELETE temp (404)',
    );
    const batches = await entries('action=peers.batch&result=ok');
    const actions = batches.map((e) => `${e.details.action}:${(e.details.names as string[]).join(',')}`);
    const expected = [
      'disable:b-one,b-two',
      'enable:b-one,b-two',
      'delete:b-one,b-two,b-three',
      'add:ba-one,ba-two,ba-three',
    ];
    for (const a of expected) assert.ok(actions.includes(a), `peers.batch ${a} in ${actions.join(' | ')}`);
    assert.ok((await entries('action=peers.batch&result=error')).length >= 2, 'refused batches are recorded');

    const everything = await admin.get('/api/audit/export?format=json');
    for (const [what, value] of secrets)
      assert.ok(!everything.text.includes(value), `the audit log must not contain the ${what}`);
    for (const [name, password] of logins)
      assert.ok(!everything.text.includes(password), `no login password of ${name} in the audit log`);
    assertNoInternals(everything);
  });

  it('reports WireGuard as not running (mode off here) while every peer endpoint still works', async () => {
    const status = await admin.get('/api/wireguard/status');
    assert.equal(status.status, 200);
    assert.equal(status.body.running, false);
    assert.match(status.body.reason, /off/);
    assert.equal(status.body.interface, 'pic0');
    assert.equal(status.body.listen_port, NETWORK.wireguard_port);
    assert.equal(status.body.address, '10.8.0.1/24', "the cell's tunnel address: the subnet's first host");
    const enabled = (await admin.get('/api/peers?enabled=true&limit=1000')).body.total;
    assert.equal(status.body.peers.length, enabled, 'the configured peers are the live (enabled, unexpired) ones');
    for (const p of status.body.peers) {
      assert.equal(p.online, false);
      assert.equal(p.latest_handshake, null);
      assert.equal(typeof p.name, 'string');
    }
  });

  it('PUT /api/config refuses a subnet change while peers exist (409) but takes other network changes', async () => {
    assertError(await admin.put('/api/config', { network: { subnet: '10.9.0.0/24' } }), 409, {
      code: 'conflict',
      fields: ['network.subnet'],
    });
    assert.equal(
      (await admin.get('/api/config')).body.config.network.subnet,
      NETWORK.subnet,
      'the subnet is unchanged',
    );
    const endpoint = await admin.put('/api/config', { network: { endpoint: 'other.example.org:51820' } });
    assert.equal(endpoint.status, 200, endpoint.text);
    assert.equal(
      (await configOf('laptop')).parsed.peers[0]!.endpoint,
      'other.example.org:51820',
      'configs use the new endpoint',
    );
  });
});
