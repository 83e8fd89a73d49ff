// GET /api/status shows the VPN's state at the top (issue 10, item 1): a VPN that should run and
// does not is "down" with its reason, and makes the whole cell "down", never only a log line.
// The failing interface is one configured in a network namespace that does not exist: the same
// on every machine, and nothing is created.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startCellProcess, type CellProcess } from '../support/cell-process.js';
import { ApiClient, completeSetup } from '../support/client.js';

const cells: CellProcess[] = [];
after(async () => {
  for (const c of cells) await c.destroy();
});

describe('the VPN state in /api/status', () => {
  it('down, loudly, with the reason, when the interface cannot come up', async () => {
    const missing = `pic-missing-${randomBytes(3).toString('hex')}`;
    const cell = await startCellProcess({
      cellYaml: ['wireguard:', '  mode: userspace', `  netns: ${missing}`, ''].join('\n'),
      env: { PIC_WIREGUARD_MODE: 'userspace' },
    });
    cells.push(cell);
    const api = new ApiClient(cell.url);
    await completeSetup(api);
    const body = (await api.get('/api/status')).body;
    assert.equal(body.status, 'down', JSON.stringify(body));
    assert.equal(body.vpn.state, 'down');
    assert.equal(body.vpn.interface, 'pic0');
    assert.match(body.vpn.reason, new RegExp(missing), 'the reason names what failed');
    assert.equal(body.subsystems.wireguard.state, 'down');
  });

  it('off when configured off, which does not make the cell down', async () => {
    const cell = await startCellProcess(); // the harness runs cells with PIC_WIREGUARD_MODE=off
    cells.push(cell);
    const api = new ApiClient(cell.url);
    await completeSetup(api);
    const body = (await api.get('/api/status')).body;
    assert.deepEqual(body.vpn, { state: 'off', interface: 'pic0', adopted: false, reason: body.vpn.reason });
    assert.notEqual(body.status, 'down', JSON.stringify(body));
  });

  it('PIC_HOST=0.0.0.0 (plain HTTP on every interface) is warned about', async () => {
    const cell = await startCellProcess({ env: { PIC_HOST: '0.0.0.0' } });
    cells.push(cell);
    const warning = /"level":"warn","msg":"listening on every interface with plain HTTP","host":"0\.0\.0\.0"/;
    assert.match(cell.output(), warning);
    const local = await startCellProcess();
    cells.push(local);
    assert.doesNotMatch(local.output(), /listening on every interface/);
  });
});
