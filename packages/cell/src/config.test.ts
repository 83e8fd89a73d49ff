import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, loadConfig } from './config.js';

describe('loadConfig', () => {
  let dir: string;
  let n = 0;
  /** A fresh data dir, optionally with a cell.yaml. */
  const dataDir = (yaml?: string) => {
    const d = join(dir, `data-${n++}`);
    mkdirSync(d);
    if (yaml !== undefined) writeFileSync(join(d, 'cell.yaml'), yaml);
    return d;
  };
  const configError = (env: NodeJS.ProcessEnv, pattern: RegExp) =>
    assert.throws(
      () => loadConfig(env),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
        assert.match(err.message, pattern);
        return true;
      },
    );

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pic-config-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('defaults', () => {
    const cwd = process.cwd();
    afterEach(() => process.chdir(cwd));

    it('with no env and no cell.yaml: port 3000 on 127.0.0.1, ./data, and the documented settings', () => {
      process.chdir(dir); // ./data is resolved against the working directory; make sure none exists there
      const c = loadConfig({});
      assert.deepEqual(c, {
        port: 3000,
        host: '127.0.0.1',
        dataDir: resolve(dir, 'data'),
        dbFile: resolve(dir, 'data', 'cell.db'),
        logLevel: 'info',
        trustProxy: false,
        http: { allowedHosts: [], listenOnWireguard: true },
        session: { idleMs: 120 * 60_000, absoluteMs: 24 * 3_600_000 },
        rateLimit: { apiPerMinute: 600, loginFailures: 10, loginWindowMs: 15 * 60_000 },
        health: { intervalMs: 60_000, keep: 1440 },
        audit: { retentionDays: null },
        wireguard: {
          interface: 'pic0',
          mode: 'auto',
          netns: null,
          driftCheckMs: 300_000,
          keepUpOnStop: true,
          forwardBetweenPeers: true,
        },
        cells: { syncPort: 7947, retryMaxMs: 60_000 },
        store: {
          catalogDir: resolve(import.meta.dirname, '..', '..', '..'),
          engineSocket: null,
          imageVerification: 'enforce',
          publishAddresses: ['127.0.0.1'],
          publishOnTunnel: true,
          trustedKeys: [],
        },
        reach: {
          mode: 'auto',
          httpsPort: 443,
          lanAddresses: [],
          tls: 'internal',
          acmeEmail: null,
          dnsPort: 53,
          dnsUpstreams: ['1.1.1.1', '9.9.9.9'],
        },
        consoleDir: resolve(import.meta.dirname, '..', '..', 'console', 'dist'),
      });
    });

    it('empty env values fall back to the defaults', () => {
      process.chdir(dir);
      const c = loadConfig({ PIC_PORT: '', PIC_HOST: '', PIC_DATA_DIR: '' });
      assert.equal(c.port, 3000);
      assert.equal(c.host, '127.0.0.1');
      assert.equal(c.dataDir, resolve(dir, 'data'));
    });
  });

  it('reads PIC_CONSOLE_DIR (made absolute)', () => {
    const d = dataDir();
    assert.equal(loadConfig({ PIC_DATA_DIR: d, PIC_CONSOLE_DIR: d }).consoleDir, d);
    assert.equal(loadConfig({ PIC_DATA_DIR: d, PIC_CONSOLE_DIR: 'web' }).consoleDir, resolve('web'));
  });

  it('reads PIC_PORT, PIC_HOST and PIC_DATA_DIR (made absolute)', () => {
    const d = dataDir();
    const c = loadConfig({ PIC_PORT: '8443', PIC_HOST: '0.0.0.0', PIC_DATA_DIR: d });
    assert.equal(c.port, 8443);
    assert.equal(c.host, '0.0.0.0');
    assert.equal(c.dataDir, d);
    assert.equal(c.dbFile, join(d, 'cell.db'));
    assert.equal(loadConfig({ PIC_PORT: '0', PIC_DATA_DIR: d }).port, 0, 'port 0 = any free port');
    assert.equal(loadConfig({ PIC_PORT: '65535', PIC_DATA_DIR: d }).port, 65535);
    const cwd = process.cwd();
    try {
      process.chdir(dir);
      assert.equal(loadConfig({ PIC_DATA_DIR: 'rel/dir' }).dataDir, resolve(dir, 'rel/dir'));
    } finally {
      process.chdir(cwd);
    }
  });

  it('refuses a bad PIC_PORT, naming it and the value', () => {
    const d = dataDir();
    for (const bad of ['abc', '65536', '-1', '80.5', ' 80', '1e3', '0x50', '99999999999']) {
      configError({ PIC_PORT: bad, PIC_DATA_DIR: d }, new RegExp(`PIC_PORT.*"${bad.replace(/[.+]/g, '\\$&')}"`));
    }
  });

  it('applies every key of a valid cell.yaml', () => {
    const d = dataDir(
      [
        'log_level: debug',
        'trust_proxy: true',
        'session:',
        '  idle_minutes: 15',
        '  absolute_hours: 2',
        'rate_limit:',
        '  api_per_minute: 1000',
        '  login_failures: 3',
        '  login_window_minutes: 5',
        'health:',
        '  interval_seconds: 10',
        '  keep: 50',
        'audit:',
        '  retention_days: 90',
        '',
      ].join('\n'),
    );
    const c = loadConfig({ PIC_DATA_DIR: d });
    assert.equal(c.logLevel, 'debug');
    assert.equal(c.trustProxy, true);
    assert.deepEqual(c.session, { idleMs: 15 * 60_000, absoluteMs: 2 * 3_600_000 });
    assert.deepEqual(c.rateLimit, { apiPerMinute: 1000, loginFailures: 3, loginWindowMs: 5 * 60_000 });
    assert.deepEqual(c.health, { intervalMs: 10_000, keep: 50 });
    assert.deepEqual(c.audit, { retentionDays: 90 });
  });

  it('reads http.allowed_hosts, normalised, and refuses an entry that is no name or address', () => {
    const dataDir = join(dir, 'hosts');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'cell.yaml'), 'http:\n  allowed_hosts: [Cell.Example.NET, "::1", 192.168.1.10]\n');
    const hosts = loadConfig({ PIC_DATA_DIR: dataDir }).http.allowedHosts;
    assert.deepEqual(hosts, ['cell.example.net', '[::1]', '192.168.1.10']);
    writeFileSync(join(dataDir, 'cell.yaml'), 'http:\n  allowed_hosts: [ok.example, "http://x"]\n');
    assert.throws(() => loadConfig({ PIC_DATA_DIR: dataDir }), /http\.allowed_hosts\.1.*http:\/\/x/);
  });

  it('reads the store section; catalog_dir is resolved against the data dir', () => {
    const d = dataDir(
      'store:\n  catalog_dir: catalog\n  engine_socket: unix:///run/x.sock\n  image_verification: warn\n',
    );
    assert.deepEqual(loadConfig({ PIC_DATA_DIR: d }).store, {
      catalogDir: join(d, 'catalog'),
      engineSocket: 'unix:///run/x.sock',
      imageVerification: 'warn',
      publishAddresses: ['127.0.0.1'],
      publishOnTunnel: true,
      trustedKeys: [],
    });
    const onTunnel = loadConfig({ PIC_DATA_DIR: dataDir('store:\n  publish_address: 10.8.0.1\n') }).store;
    assert.deepEqual([onTunnel.publishAddresses, onTunnel.publishOnTunnel], [['10.8.0.1'], false]);
    const both = loadConfig({ PIC_DATA_DIR: dataDir('store:\n  publish_address: [127.0.0.1, 10.8.0.1]\n') }).store;
    assert.deepEqual([both.publishAddresses, both.publishOnTunnel], [['127.0.0.1', '10.8.0.1'], false]);
    const badList = dataDir('store:\n  publish_address: [1.2.3.4, x]\n');
    assert.throws(() => loadConfig({ PIC_DATA_DIR: badList }), /publish_address/);
    assert.throws(() => loadConfig({ PIC_DATA_DIR: dataDir('store:\n  publish_address: every\n') }), /publish_address/);
    const keys = dataDir('store:\n  trusted_keys:\n    - name: local-store\n      file: store-local/store.pub.pem\n');
    assert.deepEqual(loadConfig({ PIC_DATA_DIR: keys }).store.trustedKeys, [
      { name: 'local-store', file: join(keys, 'store-local', 'store.pub.pem') },
    ]);
    configError(
      { PIC_DATA_DIR: dataDir('store:\n  trusted_keys:\n    - name: Bad Name\n      file: k.pem\n') },
      /"store\.trusted_keys\.0\.name"/,
    );
    const abs = dataDir('store:\n  catalog_dir: /srv/catalog\n');
    assert.equal(loadConfig({ PIC_DATA_DIR: abs }).store.catalogDir, '/srv/catalog');
    configError({ PIC_DATA_DIR: dataDir('store:\n  image_verification: maybe\n') }, /"store\.image_verification"/);
    configError({ PIC_DATA_DIR: dataDir('store:\n  catalog: x\n') }, /"store\.catalog" is not a known field/);
  });

  it('reads wireguard.drift_check_seconds (0 turns the check off) and refuses anything but a whole number', () => {
    const drift = (value: string) => ({ PIC_DATA_DIR: dataDir(`wireguard:\n  drift_check_seconds: ${value}\n`) });
    assert.equal(loadConfig(drift('30')).wireguard.driftCheckMs, 30_000);
    assert.equal(loadConfig(drift('0')).wireguard.driftCheckMs, 0);
    configError(drift('-1'), /"wireguard\.drift_check_seconds"/);
    configError(drift('often'), /"wireguard\.drift_check_seconds"/);
  });

  it('reads the reach section; PIC_REACH_MODE overrides its mode; refuses bad addresses', () => {
    const d = dataDir(
      'reach:\n  mode: auto\n  https_port: 8443\n  lan_addresses: [192.168.1.10]\n  tls: acme\n' +
        '  acme_email: me@example.org\n  dns_port: 5353\n  dns_upstreams: [9.9.9.9]\n',
    );
    assert.deepEqual(loadConfig({ PIC_DATA_DIR: d }).reach, {
      mode: 'auto',
      httpsPort: 8443,
      lanAddresses: ['192.168.1.10'],
      tls: 'acme',
      acmeEmail: 'me@example.org',
      dnsPort: 5353,
      dnsUpstreams: ['9.9.9.9'],
    });
    assert.equal(loadConfig({ PIC_DATA_DIR: d, PIC_REACH_MODE: 'off' }).reach.mode, 'off');
    configError({ PIC_DATA_DIR: d, PIC_REACH_MODE: 'maybe' }, /PIC_REACH_MODE/);
    const injected = dataDir('reach:\n  dns_upstreams: ["1.1.1.1\\nserver=x"]\n');
    configError({ PIC_DATA_DIR: injected }, /reach\.dns_upstreams/);
    configError({ PIC_DATA_DIR: dataDir('reach:\n  lan_addresses: [300.1.1.1]\n') }, /reach\.lan_addresses/);
  });

  it('a partial or empty cell.yaml keeps the other defaults', () => {
    const c = loadConfig({ PIC_DATA_DIR: dataDir('session:\n  idle_minutes: 5\n') });
    assert.deepEqual(c.session, { idleMs: 5 * 60_000, absoluteMs: 24 * 3_600_000 });
    assert.equal(c.rateLimit.apiPerMinute, 600);
    assert.equal(loadConfig({ PIC_DATA_DIR: dataDir('') }).logLevel, 'info');
    assert.equal(loadConfig({ PIC_DATA_DIR: dataDir('# only a comment\n') }).port, 3000);
  });

  it('refuses an invalid cell.yaml, naming the file and each bad key', () => {
    const cases: Array<[string, RegExp]> = [
      ['log_level: verbose\n', /"log_level"/],
      ['trust_proxy: "yes"\n', /"trust_proxy" must be boolean/],
      ['colour: blue\n', /"colour" is not a known field/],
      ['session:\n  idle_minutes: 0\n', /"session\.idle_minutes" must be >= 1/],
      ['session:\n  idle_minutes: 1.5\n', /"session\.idle_minutes" must be integer/],
      ['rate_limit:\n  per_minute: 5\n', /"rate_limit\.per_minute" is not a known field/],
      ['health:\n  keep: "many"\n', /"health\.keep"/],
      ['audit:\n  retention_days: 0\n', /"audit\.retention_days"/],
      ['session: 5\n', /"session" must be object/],
    ];
    for (const [yaml, pattern] of cases) {
      const d = dataDir(yaml);
      configError({ PIC_DATA_DIR: d }, pattern);
      configError({ PIC_DATA_DIR: d }, new RegExp(join(d, 'cell.yaml').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
    }
    // Several problems are all named at once.
    configError(
      { PIC_DATA_DIR: dataDir('colour: blue\nsession:\n  idle_minutes: 0\n') },
      /"colour".*"session\.idle_minutes"/,
    );
  });

  it('refuses a cell.yaml whose top level is not a mapping', () => {
    configError({ PIC_DATA_DIR: dataDir('- log_level\n- debug\n') }, /top level must be a mapping.*list/);
    configError({ PIC_DATA_DIR: dataDir('just words\n') }, /top level must be a mapping.*string/);
  });

  it('refuses YAML that does not parse, saying so', () => {
    configError({ PIC_DATA_DIR: dataDir('session: [\n') }, /cell\.yaml: not valid YAML/);
    configError({ PIC_DATA_DIR: dataDir('log_level: info\nlog_level: debug\n') }, /not valid YAML/);
    configError({ PIC_DATA_DIR: dataDir('session:\n\tidle_minutes: 5\n') }, /not valid YAML/);
  });
});
