export * from './types.js';
export * from './errors.js';
export { findExecutable } from './executable.js';
export {
  resolveEndpoint,
  parseEndpoint,
  describeEndpoint,
  DEFAULT_SOCKET,
  type EngineEndpoint,
  type EndpointSource,
} from './endpoint.js';
export { DockerRuntime, type DockerRuntimeOptions } from './docker-runtime.js';
export { splitDigestReference } from './pull.js';
export { Demuxer, demuxBuffer } from './demux.js';
export {
  startRegistry,
  freePort,
  v2Status,
  findRegistryBinary,
  registryBlobPath,
  type RegistryProcess,
  type RegistryStart,
  type RegistryOptions,
} from './registry.js';
