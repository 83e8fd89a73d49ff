export * from './types.js';
export * from './errors.js';
export { resolveEndpoint, parseEndpoint, describeEndpoint, DEFAULT_SOCKET, type EngineEndpoint, type EndpointSource } from './endpoint.js';
export { DockerRuntime, type DockerRuntimeOptions } from './docker-runtime.js';
export { Demuxer, demuxBuffer } from './demux.js';
