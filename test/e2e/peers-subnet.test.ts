import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { assertError } from '../support/expect.js';
import type { ReadyCell } from '../support/ready-cell.js';
import { loadWgConfig, startPeersCell } from './peers-helpers.js';

/** A /29: network .0, the cell .1, peers .2-.6, broadcast .7 — full after five peers. */
const SMALL = { wireguard_port: 51999, subnet: '10.77.0.0/29', endpoint: 'cell.example.net:51999' };

describe('peer addresses in a small subnet (real cell process, wizard with a /29)', () => {
  let ready: ReadyCell;
  before(async () => {
    ready = await startPeersCell({ network: SMALL });
  });
  after(async () => ready.cell.destroy());

  const create = (name: string) => ready.admin.post('/api/peers', { name });

  it('hands out .2 to .6, then answers 409 naming the subnet; a freed address is taken by the next peer', async () => {
    const addresses: string[] = [];
    for (const name of ['p1', 'p2', 'p3', 'p4', 'p5']) {
      const res = await create(name);
      assert.equal(res.status, 201, `${name}: ${res.text}`);
      addresses.push(res.body.peer.address);
    }
    assert.deepEqual(
      addresses,
      ['10.77.0.2', '10.77.0.3', '10.77.0.4', '10.77.0.5', '10.77.0.6'],
      'never the network, the cell (.1) or the broadcast address',
    );

    const full = await create('p6');
    assertError(full, 409, { code: 'conflict', fields: ['subnet'], context: 'subnet full' });
    assert.match(full.body.error, /10\.77\.0\.0\/29/, 'the message names the subnet');
    assert.equal((await ready.admin.get('/api/peers/p6')).status, 404, 'nothing was created');
    assert.equal(
      (await ready.anon().post('/api/auth/login', { username: 'p6', password: 'whatever password 1' })).status,
      401,
      'no login was created',
    );

    assert.equal((await ready.admin.delete('/api/peers/p3')).status, 200);
    const again = await create('p6');
    assert.equal(again.status, 201, again.text);
    assert.equal(again.body.peer.address, '10.77.0.4', "p3's freed address");
    assertError(await create('p7'), 409, { code: 'conflict', fields: ['subnet'], context: 'full again' });

    // a disabled peer keeps its address: disabling frees nothing
    assert.equal((await ready.admin.put('/api/peers/p1', { enabled: false })).status, 200);
    assertError(await create('p7'), 409, {
      code: 'conflict',
      fields: ['subnet'],
      context: 'a disabled peer still holds its address',
    });
  });

  it('configs carry the /29 as AllowedIPs and the endpoint from the wizard', async () => {
    const { parseWgQuickConfig } = await loadWgConfig();
    const res = await ready.admin.get('/api/peers/p2/config');
    assert.equal(res.status, 200, res.text);
    const conf = parseWgQuickConfig(res.text);
    assert.deepEqual(conf.interface.addresses, ['10.77.0.3/32']);
    assert.equal(conf.peers[0]!.endpoint, SMALL.endpoint);
    assert.deepEqual(conf.peers[0]!.allowedIps, [SMALL.subnet]);
    const status = await ready.admin.get('/api/wireguard/status');
    assert.equal(status.body.address, '10.77.0.1/29');
    assert.equal(status.body.listen_port, SMALL.wireguard_port);
  });

  it('refuses a subnet change while any peer exists (409), allows it once none is left', async () => {
    assertError(await ready.admin.put('/api/config', { network: { subnet: '10.78.0.0/24' } }), 409, {
      code: 'conflict',
      fields: ['network.subnet'],
    });
    assert.equal((await ready.admin.get('/api/config')).body.config.network.subnet, SMALL.subnet);
    // the same subnet again is no change, so no conflict
    assert.equal((await ready.admin.put('/api/config', { network: { subnet: SMALL.subnet } })).status, 200);

    const names = ((await ready.admin.get('/api/peers')).body.peers as Array<{ name: string }>).map((p) => p.name);
    assert.equal(names.length, 5);
    // one left is enough to refuse
    const batch = await ready.admin.post('/api/peers/batch', { action: 'delete', names: names.slice(1) });
    assert.equal(batch.status, 200, batch.text);
    assertError(await ready.admin.put('/api/config', { network: { subnet: '10.78.0.0/24' } }), 409, {
      fields: ['network.subnet'],
    });
    assert.equal((await ready.admin.delete(`/api/peers/${names[0]}`)).status, 200);

    const changed = await ready.admin.put('/api/config', { network: { subnet: '10.78.0.0/24' } });
    assert.equal(changed.status, 200, changed.text);
    const fresh = await create('after-change');
    assert.equal(fresh.status, 201, fresh.text);
    assert.equal(fresh.body.peer.address, '10.78.0.2', 'addresses come from the new subnet');
    const status = await ready.admin.get('/api/wireguard/status');
    assert.equal(status.body.address, '10.78.0.1/24', 'the interface took the new subnet');
  });
});
