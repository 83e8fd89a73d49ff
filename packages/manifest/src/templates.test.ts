import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderTemplate, scanTemplate, TemplateError } from './templates.js';
import { isDigest, parseImageReference } from './image-ref.js';

describe('templates', () => {
  const values = {
    username: 'alice',
    password: 'p w;$(rm -rf /)',
    domain: 'example.org',
    subdomain: 'mail',
    secrets: { 'admin-token': 'T0K' },
  };

  it('fills every placeholder, once per string, without interpreting the values', () => {
    assert.equal(renderTemplate('{{username}}@{{domain}}', values), 'alice@example.org');
    assert.equal(renderTemplate('{{subdomain}}.{{domain}}', values), 'mail.example.org');
    assert.equal(renderTemplate('{{password}}', values), 'p w;$(rm -rf /)', 'one argv element stays one argument');
    assert.equal(renderTemplate('Bearer {{secret:admin-token}}', values), 'Bearer T0K');
    assert.equal(renderTemplate('no placeholders', values), 'no placeholders');
    // A value that looks like a placeholder is not expanded again.
    assert.equal(renderTemplate('{{username}}', { username: '{{password}}' }), '{{password}}');
  });

  it('refuses unknown placeholders and missing values', () => {
    assert.throws(() => renderTemplate('{{user}}', values), TemplateError);
    assert.throws(() => renderTemplate('{{ username }}', values), /unknown placeholder/);
    assert.throws(() => renderTemplate('{{username}', values), /unknown placeholder \{\{/);
    assert.throws(() => renderTemplate('{{secret:db}}', values), /no value for \{\{secret:db\}\}/);
    assert.throws(() => renderTemplate('{{password}}', { username: 'a' }), /no value for \{\{password\}\}/);
  });

  it('scans placeholders by kind', () => {
    assert.deepEqual(scanTemplate('{{username}}:{{secret:a-b}}:{{x}}'), {
      placeholders: [
        { kind: 'value', name: 'username' },
        { kind: 'secret', name: 'a-b' },
      ],
      unknown: [{ text: '{{x}}', index: 28 }],
    });
  });
});

describe('image references', () => {
  const hex = 'c'.repeat(64);
  it('splits pinned references', () => {
    assert.deepEqual(parseImageReference(`pic/email@sha256:${hex}`), {
      repository: 'pic/email',
      digest: `sha256:${hex}`,
    });
    assert.deepEqual(parseImageReference(`localhost:5000/a/b-c:1.0@sha256:${hex}`), {
      repository: 'localhost:5000/a/b-c',
      tag: '1.0',
      digest: `sha256:${hex}`,
    });
    assert.deepEqual(parseImageReference(`pic-test-echo:1@sha256:${hex}`), {
      repository: 'pic-test-echo',
      tag: '1',
      digest: `sha256:${hex}`,
    });
  });

  it('refuses references without a digest, with a reason', () => {
    assert.throws(
      () => parseImageReference('pic/email:latest'),
      /not pinned: it needs a digest \(a tag alone can be moved\)/,
    );
    assert.throws(() => parseImageReference(`pic/email@sha256:${hex.slice(1)}`), /sha256:<64 lowercase hex>/);
    assert.throws(() => parseImageReference(`PIC/email@sha256:${hex}`), /not pinned/);
    assert.equal(isDigest(`sha256:${hex}`), true);
    assert.equal(isDigest(`sha256:${hex.toUpperCase()}`), false);
  });
});
