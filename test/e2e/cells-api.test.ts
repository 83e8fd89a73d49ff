// The /api/cells routes of one real cell process (WireGuard off): invites, bad codes, refusals
// with the API's error shape, audited, changing nothing. The two-cell tunnel test is cells-link.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ReadyCell } from '../support/ready-cell.js';
import { withCellDb } from '../support/db.js';
import { startPeersCell } from './peers-helpers.js';

describe('linked cells API on one cell (WireGuard off)', () => {
  let ready: ReadyCell;
  before(async () => {
    ready = await startPeersCell();
  });
  after(async () => {
    await ready?.cell.destroy();
  });

  const audits = (action: string) =>
    withCellDb(ready.cell.dataDir, (db) =>
      db.prepare('select result, target_id, details from audit_log where action = ? order by id').all(action),
    ) as Array<{ result: string; target_id: string | null; details: string }>;

  it('an invite is shown once as text and QR; the audit log has neither the code nor the nonce', async () => {
    const res = await ready.admin.post('/api/cells/invites', { ttl_minutes: 5 });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const payload = JSON.parse(Buffer.from(res.body.code, 'base64url').toString()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(payload).sort(), [
      'domain',
      'endpoint',
      'expires_at',
      'name',
      'nonce',
      'public_key',
      'subnet',
      'sync_port',
      'v',
    ]);
    assert.equal(payload['endpoint'], 'vpn.example.org:51820');
    assert.match(res.body.qr_svg, /<svg/);
    const entry = audits('cells.invite').at(-1)!;
    assert.equal(entry.result, 'ok');
    assert.ok(!JSON.stringify(entry).includes(payload['nonce'] as string));
    assert.ok(!JSON.stringify(entry).includes(res.body.code));
    const stored = withCellDb(ready.cell.dataDir, (db) => db.prepare('select * from cell_invites').all());
    assert.ok(!JSON.stringify(stored).includes(payload['nonce'] as string), 'only the nonce hash is stored');
  });

  it('refuses bad codes and bad bodies with a clear 4xx, audited, changing nothing', async () => {
    const cases: Array<[string, unknown, number, string]> = [
      ['/api/cells/accept', { code: 'not-a-code-at-all' }, 400, 'bad_request'],
      ['/api/cells/accept', { code: Buffer.from('{"v":1}').toString('base64url') }, 400, 'bad_request'],
      ['/api/cells/accept', { code: 'x'.repeat(20), extra: 1 }, 400, 'validation_failed'],
      ['/api/cells/complete', { code: '!!!!!!!!!!!!' }, 400, 'bad_request'],
      ['/api/cells/invites', { ttl_minutes: 0 }, 400, 'validation_failed'],
      ['/api/cells/invites', { one_step: 'yes' }, 400, 'validation_failed'],
      // one step needs the link listener, so the WireGuard interface in the cell's namespace
      ['/api/cells/invites', { one_step: true }, 409, 'conflict'],
    ];
    for (const [path, body, status, code] of cases) {
      const res = await ready.admin.post(path, body);
      assert.equal(res.status, status, `${path} ${JSON.stringify(body)}: ${res.text}`);
      assert.equal(res.body.ok, false);
      assert.equal(res.body.code, code);
    }
    assert.ok(audits('cells.accept').length >= 3 && audits('cells.accept').every((a) => a.result === 'error'));
    assert.deepEqual((await ready.admin.get('/api/cells')).body.cells, []);
  });

  it("refuses the cell's own invite (409), unknown links (404), and a policy for nobody (404)", async () => {
    const invite = await ready.admin.post('/api/cells/invites', {});
    const own = await ready.admin.post('/api/cells/accept', { code: invite.body.code });
    assert.equal(own.status, 409, own.text);
    assert.equal((await ready.admin.get('/api/cells/nobody')).status, 404);
    assert.equal((await ready.admin.get('/api/cells/nobody/peers')).status, 404);
    const unlink = await ready.admin.delete('/api/cells/nobody');
    assert.equal(unlink.status, 404);
    assert.equal(audits('cells.unlink').at(-1)?.result, 'error');
    const policy = await ready.admin.put('/api/cells/nobody/policy', { policy: { mode: 'cell_only' } });
    assert.equal(policy.status, 404);
    const bad = await ready.admin.put('/api/cells/nobody/policy', { policy: { mode: 'everything' } });
    assert.equal(bad.status, 400);
  });

  it('needs the admin role and CSRF like every admin route', async () => {
    const anon = ready.anon();
    assert.equal((await anon.get('/api/cells')).status, 401);
    const noCsrf = await ready.admin.post('/api/cells/invites', {}, { csrf: false });
    assert.equal(noCsrf.status, 403);
  });

  it('status says peer-sync is not configured while WireGuard is off', async () => {
    const res = await ready.admin.get('/api/status');
    assert.equal(res.body.subsystems.cells.state, 'not_configured');
    assert.equal(res.body.subsystems.cells.forwarding.state, 'not_needed');
  });
});
