// The tests' stand-in for scripts/images/first-party/build.mjs, with the same interface
// (buildFirstPartyImage(service, { dockerHost, log }) → { service, image, id }): it builds the
// test-echo image, so store:publish and services:local can be tested end to end in seconds.
// $PIC_TEST_ECHO_MARKER makes an image of the test's own (its own layer and ID), so a test can
// remove it from the shared engine without disturbing other tests.
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function buildFirstPartyImage(service, { dockerHost, log = () => {} } = {}) {
  if (service !== 'test-echo') throw new Error(`the test builder builds only test-echo, not ${service}`);
  const testing = await import(pathToFileURL(join(root, 'packages', 'runtime', 'dist', 'testing', 'index.js')).href);
  const runtime = await import(pathToFileURL(join(root, 'packages', 'runtime', 'dist', 'index.js')).href);
  const rt = new runtime.DockerRuntime({ cellId: 'pic-image-builder', dockerHost });
  const marker = process.env.PIC_TEST_ECHO_MARKER;
  const image = `pic/test-echo:${marker ?? '1'}`;
  const id = marker ? await testing.buildTestEchoVariant(rt, marker, image) : await testing.buildTestEchoImage(rt, { log });
  if (!marker) await rt.tagImage(id, 'pic/test-echo', '1');
  log(`built ${image} (${id})`);
  return { service, image, id };
}
