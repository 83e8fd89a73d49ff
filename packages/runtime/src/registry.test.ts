import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import { DockerRuntime } from './docker-runtime.js';
import { ImagePullError, InvalidSpecError, RegistryUnreachableError } from './errors.js';
import type { PullProgress } from './types.js';
import {
  buildTestEchoVariant,
  freePort,
  registryBlobPath,
  startDockerEngine,
  startRegistry,
  type RegistryProcess,
} from './testing/index.js';

// Pulling by digest from a real registry (Debian's docker-registry) into the run's private engine:
// progress as layers and bytes, the result checked by RepoDigests, and the ways a pull fails sorted
// into registry unreachable, not in the registry, and content that does not verify.
const engineStart = await startDockerEngine();
const registryStart = 'skip' in engineStart ? engineStart : await startRegistry();
const skip = 'skip' in registryStart ? registryStart.skip : 'skip' in engineStart ? engineStart.skip : false;
if (skip) process.stderr.write(`\n*** SKIPPING the registry pull tests: ${skip}\n\n`);

describe('pulling by digest from a real registry', { skip }, () => {
  const suffix = randomBytes(4).toString('hex');
  let runtime: DockerRuntime;
  let registry: RegistryProcess;
  let repository: string;
  let pinned: string;
  let otherDigest: string;
  let tamperedDigest: string;
  const local = `pic-rt-pull-${suffix}:1`;
  const otherLocal = `pic-rt-pull-${suffix}:other`;

  /** Removes every tag and digest reference of an image, so the engine no longer has it. */
  const forget = async (ref: string) => {
    const info = await runtime.inspectImage(ref);
    if (!info) return;
    await runtime.docker.getImage(info.digest).remove({ force: true });
  };

  before(async () => {
    if ('skip' in engineStart || 'skip' in registryStart) return;
    registry = registryStart;
    runtime = new DockerRuntime({ cellId: `test-${suffix}`, socket: engineStart.socketPath });
    repository = `${registry.host}/pic/pull-${suffix}`;
    await buildTestEchoVariant(runtime, `pull-${suffix}`, local);
    await runtime.tagImage(local, repository, '1');
    pinned = await runtime.pushImage(`${repository}:1`);
    await buildTestEchoVariant(runtime, `other-${suffix}`, otherLocal);
    await runtime.tagImage(otherLocal, `${repository}-other`, '1');
    otherDigest = await runtime.pushImage(`${repository}-other:1`);
    // Never pulled here: the engine keeps manifests it pulled (by digest), so the tampering test
    // needs one it has to fetch from the registry.
    await buildTestEchoVariant(runtime, `tampered-${suffix}`, `${local}-t`);
    await runtime.tagImage(`${local}-t`, `${repository}-t`, '1');
    tamperedDigest = await runtime.pushImage(`${repository}-t:1`);
    await forget(local);
    await forget(otherLocal);
    await forget(`${local}-t`);
  });

  after(async () => {
    if (runtime)
      for (const ref of [`${repository}@${pinned}`, `${repository}:1`, `${repository}-other:1`, `${repository}-t:1`])
        await forget(ref).catch(() => undefined);
    if (registry) await registry.stop();
    if (!('skip' in engineStart)) await engineStart.stop();
  });

  it('pulls a missing image by digest, reporting layers and bytes, and the result carries that RepoDigest', async () => {
    assert.equal(await runtime.inspectImage(`${repository}@${pinned}`), undefined, 'not on the engine before');
    const seen: PullProgress[] = [];
    const info = await runtime.pullImage(`${repository}@${pinned}`, { onProgress: (p) => seen.push(p) });
    assert.ok(info.repoDigests.includes(`${repository}@${pinned}`), info.repoDigests.join());
    const last = seen.at(-1)!;
    assert.equal(last.layers, 1, JSON.stringify(last));
    assert.equal(last.layersDone, 1);
    assert.ok(last.bytesTotal > 100_000, `a real layer's bytes: ${JSON.stringify(last)}`);
    assert.equal(last.bytesDone, last.bytesTotal);
    assert.ok(
      seen.some((p) => p.bytesDone > 0 && p.layersDone === 0),
      'progress while downloading',
    );
    // Pulling again is quick and harmless.
    await runtime.pullImage(`${repository}@${pinned}`);
  });

  it('refuses to pull by tag, or a reference naming no registry', async () => {
    await assert.rejects(runtime.pullImage(`${repository}:1`), InvalidSpecError);
    await assert.rejects(runtime.pullImage(`pic/pull@${pinned}`), InvalidSpecError);
  });

  it('a registry that does not answer is registry_unreachable', async () => {
    const port = await freePort();
    await assert.rejects(runtime.pullImage(`127.0.0.1:${port}/pic/pull@${pinned}`), (err: unknown) => {
      assert.ok(err instanceof RegistryUnreachableError, String(err));
      assert.equal(err.code, 'registry_unreachable');
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      return true;
    });
  });

  it('a digest the registry does not have is image_pull_failed (not_found)', async () => {
    await assert.rejects(runtime.pullImage(`${repository}@sha256:${'a'.repeat(64)}`), (err: unknown) => {
      assert.ok(err instanceof ImagePullError, String(err));
      assert.equal(err.reason, 'not_found');
      return true;
    });
  });

  it('a registry serving other content under the pinned digest is refused (verification_failed), nothing pulled', async () => {
    // The registry's stored manifest for the pinned digest is replaced by the other image's manifest.
    copyFileSync(
      registryBlobPath(registry.storageDir, otherDigest),
      registryBlobPath(registry.storageDir, tamperedDigest),
    );
    await assert.rejects(runtime.pullImage(`${repository}-t@${tamperedDigest}`), (err: unknown) => {
      assert.ok(err instanceof ImagePullError, String(err));
      assert.equal(err.reason, 'verification_failed', err.message);
      assert.match(err.message, /manifest verification failed/);
      return true;
    });
    assert.equal(await runtime.inspectImage(`${repository}-t@${tamperedDigest}`), undefined);
  });
});
