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
