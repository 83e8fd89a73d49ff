#!/usr/bin/env node
// Loads the test service image (pic-test-echo:1) onto an engine and prints its digest, or writes the
// image archive to a file for `docker load -i`. Needs `npm run build` first (it uses @pic/runtime's dist).
//   node scripts/images/build-test-echo.mjs                 engine from DOCKER_HOST (or /var/run/docker.sock)
//   node scripts/images/build-test-echo.mjs --socket /run/pic-test-docker/docker.sock
//   node scripts/images/build-test-echo.mjs --archive /tmp/pic-test-echo.tar
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const runtime = await import(pathToFileURL(join(root, 'packages/runtime/dist/index.js')).href);
const testing = await import(pathToFileURL(join(root, 'packages/runtime/dist/testing/index.js')).href);

const { values } = parseArgs({ options: { socket: { type: 'string' }, archive: { type: 'string' } } });
if (values.archive) {
  const built = await testing.testEchoArchive();
  writeFileSync(values.archive, built.archive);
  console.log(`${built.repoTag} ${built.digest} -> ${values.archive} (${built.archive.length} bytes)`);
} else {
  const rt = new runtime.DockerRuntime({
    cellId: 'pic-image-builder',
    socket: values.socket,
    dockerHost: process.env.DOCKER_HOST,
  });
  const digest = await testing.buildTestEchoImage(rt, { log: (m) => process.stderr.write(`${m}\n`) });
  console.log(`${testing.TEST_ECHO_IMAGE} ${digest}`);
}
