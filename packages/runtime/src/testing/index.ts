// Helpers for tests that need a real engine: `@pic/runtime/testing`. Not used by the cell itself.
import type { DockerRuntime } from '../docker-runtime.js';

export {
  startDockerEngine,
  ping as pingEngine,
  DEFAULT_NETWORK,
  type DockerEngine,
  type EngineNetwork,
  type DockerEngineStart,
  type DockerEngineOptions,
} from './docker-engine.js';
export {
  buildTestEchoImage,
  buildTestEchoVariant,
  testEchoArchive,
  TEST_ECHO_IMAGE,
  TEST_ECHO_SOURCE,
  BUSYBOX_STATIC,
  type TestEchoOptions,
} from '../images/test-echo.js';
export {
  startRegistry,
  freePort,
  v2Status,
  findRegistryBinary,
  registryBlobPath,
  type RegistryProcess,
  type RegistryStart,
  type RegistryOptions,
} from '../registry.js';
export {
  buildImageArchive,
  type ImageArchive,
  type ImageArchiveSpec,
  type ImageConfig,
  type ImageEntry,
} from '../images/archive.js';

/** Removes every container (forced), network and volume of the runtime's cell: a test's after(). */
export async function removeCellObjects(runtime: DockerRuntime): Promise<void> {
  for (const c of await runtime.listContainers()) await runtime.removeContainer(c.id, { force: true, missingOk: true });
  for (const n of await runtime.listNetworks()) await runtime.removeNetwork(n.name, { missingOk: true });
  for (const v of await runtime.listVolumes()) await runtime.removeVolume(v.name, { missingOk: true });
}
