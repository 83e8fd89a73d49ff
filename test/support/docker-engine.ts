// A real container engine for end-to-end tests: the run's private dockerd, shared by every test
// process, and the test-echo image; and a real registry (Debian's docker-registry) per test file.
// One implementation, in @pic/runtime, serves the runtime's own tests and these (see
// wiki/dev-testing-containers.md).
export {
  buildTestEchoImage,
  buildTestEchoVariant,
  registryBlobPath,
  startDockerEngine,
  startRegistry,
  freePort,
  TEST_ECHO_IMAGE,
  type DockerEngine,
  type DockerEngineStart,
  type RegistryProcess,
} from '@pic/runtime/testing';

import { startDockerEngine, startRegistry, type DockerEngine, type RegistryProcess } from '@pic/runtime/testing';

/**
 * An engine and a registry for a test file that needs both, or why it cannot run (`skip`). An
 * engine that started when the registry did not comes back as `engine`, for the file to stop.
 */
export async function startEngineAndRegistry(): Promise<
  { engine: DockerEngine; registry: RegistryProcess } | { skip: string; engine?: DockerEngine }
> {
  const engine = await startDockerEngine();
  if ('skip' in engine) return { skip: `NO CONTAINER ENGINE: ${engine.skip}` };
  const registry = await startRegistry();
  if ('skip' in registry) return { skip: `NO REGISTRY: ${registry.skip}`, engine };
  return { engine, registry };
}
