// A real container engine for end-to-end tests: the private dockerd of the test run, shared by all
// test processes (see packages/runtime/src/testing/docker-engine.ts and wiki/dev-testing-containers.md).
//
// The implementation lives in @pic/runtime so the runtime's own tests use the same one. It is loaded
// from the built package by path because this test project does not reference packages/runtime
// (yet); the types below mirror it. With a project reference this file becomes a plain re-export.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const REPO_ROOT = process.env['PIC_REPO_ROOT'] ?? join(import.meta.dirname, '..', '..', '..');
const TESTING_MODULE = join(REPO_ROOT, 'packages', 'runtime', 'dist', 'testing', 'index.js');

export interface DockerEngine {
  /** The engine's unix socket. */
  socketPath: string;
  /** `unix://<socketPath>`: pass it to a cell under test as DOCKER_HOST. */
  dockerHost: string;
  /** True when this call started the daemon. */
  started: boolean;
  /** PIC_TEST_DOCKER_HOST named an engine managed elsewhere; stop() leaves it alone. */
  external: boolean;
  /** Unregisters this user; the last user of the run stops the daemon. */
  stop(): Promise<void>;
}

/** Either an engine, or the reason there is none (use it in t.skip / describe's skip). */
export type DockerEngineStart = DockerEngine | { skip: string };

interface TestingModule {
  startDockerEngine(options?: { log?: (msg: string) => void }): Promise<DockerEngineStart>;
  buildTestEchoImage(socketPath: string, options?: { log?: (msg: string) => void }): Promise<string>;
  TEST_ECHO_IMAGE: string;
}

async function testing(): Promise<TestingModule> {
  return (await import(pathToFileURL(TESTING_MODULE).href)) as TestingModule;
}

/**
 * Starts (or joins) the run's private dockerd. Returns { skip } with the reason when this machine
 * cannot run one: not root, no dockerd, or the daemon failed (its log tail is in the reason).
 * Always call stop() in after(), also when tests fail.
 */
export async function startDockerEngine(): Promise<DockerEngineStart> {
  return (await testing()).startDockerEngine();
}

/** The tag the test service image is loaded under: `pic-test-echo:1`. */
export const TEST_ECHO_IMAGE = 'pic-test-echo:1';

/**
 * Makes sure the engine has the test-echo image and returns its digest (the image ID `sha256:…`,
 * what a manifest pins). Cached: a no-op when the engine already has exactly this image.
 *
 * The image: busybox httpd on :8080 serving `/` ("test-echo ok"), `/health`, `/cgi-bin/echo`, and the
 * admin endpoint `/cgi-bin/accounts` (header X-Admin-Token when PIC_ADMIN_TOKEN is set); accounts by
 * exec: `pic-account add <user> <password|->`, `del <user>`, `list`, `check <user> <password|->`,
 * stored in /data/accounts (declare a volume on /data).
 */
export async function buildTestEchoImage(engine: DockerEngine | string): Promise<string> {
  const socketPath = typeof engine === 'string' ? engine : engine.socketPath;
  return (await testing()).buildTestEchoImage(socketPath);
}
