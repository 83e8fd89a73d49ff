// The tests' stand-in for scripts/images/first-party/build.mjs, with the same interface
// (buildFirstPartyImage(service, { dockerHost, log }) → { service, image, id }): it builds the
// test-echo image, so store:publish and services:local can be tested end to end in seconds.
// It always builds an image of its own (test-echo plus a marker file: $PIC_TEST_ECHO_MARKER, or a
// random one), never the shared pic-test-echo:1: a push would give that shared image a RepoDigest,
// and a test may remove what it pushed from the shared engine.
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function buildFirstPartyImage(service, { dockerHost, log = () => {} } = {}) {
  if (service !== 'test-echo') throw new Error(`the test builder builds only test-echo, not ${service}`);
  const testing = await import(pathToFileURL(join(root, 'packages', 'runtime', 'dist', 'testing', 'index.js')).href);
  const runtime = await import(pathToFileURL(join(root, 'packages', 'runtime', 'dist', 'index.js')).href);
  const rt = new runtime.DockerRuntime({ cellId: 'pic-image-builder', dockerHost });
  const marker = process.env.PIC_TEST_ECHO_MARKER || `m${randomBytes(4).toString('hex')}`;
  const image = `pic/test-echo:${marker}`;
  const id = await testing.buildTestEchoVariant(rt, marker, image);
  log(`built ${image} (${id})`);
  return { service, image, id };
}
