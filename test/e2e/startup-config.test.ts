import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runCellExpectingFailure, startCellProcess } from '../support/cell-process.js';
import { ApiClient } from '../support/client.js';

/** Runs the cell, expects a start-up refusal, and returns its output for the message checks. */
async function refused(opts: Parameters<typeof runCellExpectingFailure>[0]): Promise<string> {
  const { code, output } = await runCellExpectingFailure({ timeoutMs: 30_000, ...opts });
  assert.equal(typeof code, 'number', `the process exited by itself (not killed):\n${output}`);
  assert.notEqual(code, 0, `a non-zero exit:\n${output}`);
  assert.doesNotMatch(output, /PIC cell listening/, 'it never served');
  assert.doesNotMatch(output, /^\s*at\s+\S/m, `a message, not a stack trace:\n${output}`);
  return output;
}

// Each test runs its own short-lived process: they are independent, so they run side by side.
describe('start-up configuration (real cell process)', { concurrency: true }, () => {
  it('refuses an unknown key in cell.yaml, naming it', async () => {
    const out = await refused({ cellYaml: 'log_level: info\nlisten_everywhere: true\n' });
    assert.match(out, /configuration error/);
    assert.match(out, /listen_everywhere/);
    assert.match(out, /cell\.yaml/);
  });

  it('refuses an unknown nested key, naming its full path', async () => {
    const out = await refused({ cellYaml: 'rate_limit:\n  api_per_minute: 100\n  burst: 5\n' });
    assert.match(out, /rate_limit\.burst/);
  });

  it('refuses a value of the wrong type or range, naming the key', async () => {
    const cases: Array<[string, RegExp]> = [
      ['rate_limit:\n  api_per_minute: lots\n', /rate_limit\.api_per_minute/],
      ['session:\n  idle_minutes: 0\n', /session\.idle_minutes/],
      ['trust_proxy: "yes"\n', /trust_proxy/],
      ['log_level: loud\n', /log_level/],
      ['health: 5\n', /health/],
    ];
    const outputs = await Promise.all(cases.map(([cellYaml]) => refused({ cellYaml })));
    cases.forEach(([yaml, key], i) => {
      assert.match(outputs[i]!, key, yaml);
    });
  });

  it('refuses YAML that does not parse, and a document that is not a mapping', async () => {
    const out = await refused({ cellYaml: 'rate_limit: [unclosed\n  api_per_minute: 5\n' });
    assert.match(out, /not valid YAML/);
    assert.match(out, /cell\.yaml/);
    const list = await refused({ cellYaml: '- log_level\n- info\n' });
    assert.match(list, /cell\.yaml/);
    assert.match(list, /top level must be a mapping/);
  });

  it('refuses PIC_PORT that is not a port number, naming it', async () => {
    const ports = ['abc', '-1', '65536', '80x'];
    const outputs = await Promise.all(ports.map((port) => refused({ env: { PIC_PORT: port } })));
    ports.forEach((port, i) => {
      assert.match(outputs[i]!, /PIC_PORT/, `PIC_PORT=${port}`);
      assert.ok(outputs[i]!.includes(`"${port}"`), `the bad value is shown: ${outputs[i]}`);
    });
  });

  it('starts with a valid cell.yaml and an empty one (the control case)', async () => {
    for (const yaml of ['log_level: warn\nsession:\n  idle_minutes: 30\nrate_limit:\n  api_per_minute: 50\n', '']) {
      const cell = await startCellProcess({ cellYaml: yaml });
      try {
        const res = await new ApiClient(cell.url).get('/api/setup/status');
        assert.equal(res.status, 200);
        if (yaml) assert.equal(res.headers.get('ratelimit-limit'), '50', 'the setting is in force');
      } finally {
        await cell.destroy();
      }
    }
  });
});
