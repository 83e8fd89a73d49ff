// A real container engine for end-to-end tests: the run's private dockerd, shared by every test
// process, and the test-echo image. One implementation, in @pic/runtime, serves the runtime's own
// tests and these (see wiki/dev-testing-containers.md).
export { buildTestEchoImage, startDockerEngine, TEST_ECHO_IMAGE, type DockerEngine, type DockerEngineStart } from '@pic/runtime/testing';
