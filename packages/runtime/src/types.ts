/** Every object the cell creates carries both labels; the runtime acts only on objects with its own pic.cell. */
export const LABEL_CELL = 'pic.cell';
export const LABEL_SERVICE = 'pic.service';

export interface EngineVersion {
  version: string;
  apiVersion: string;
  os: string;
  arch: string;
}

export interface ImageInfo {
  /**
   * The digest the cell pins: the image ID, `sha256:<hex>` of the image's config JSON. Locally built
   * or loaded images have no registry RepoDigest; the ID is content-addressed (it covers every
   * layer's diff ID) and survives `docker save`/`docker load` unchanged.
   */
  digest: string;
  repoTags: string[];
  /** Registry manifest digests (`name@sha256:…`), empty for images that never came from a registry. */
  repoDigests: string[];
  created: string;
  sizeBytes: number;
  labels: Record<string, string>;
}

/** How far a pull has come, summed over the image's layers as the engine reports them. */
export interface PullProgress {
  /** Layers the engine named for this image so far. */
  layers: number;
  /** Layers finished: downloaded and extracted, or already present locally. */
  layersDone: number;
  /** Bytes downloaded so far, over the layers whose size the engine announced. */
  bytesDone: number;
  /** The announced sizes summed (grows as the engine starts each layer's download). */
  bytesTotal: number;
  /** The engine's latest status line, e.g. `Downloading` or `Digest: sha256:…`. */
  status: string;
}

export interface PullOptions {
  /** Called as the engine reports progress (often: once per chunk of every layer). */
  onProgress?: (progress: PullProgress) => void;
  /** Give up on the whole pull after this long (default 10 minutes). */
  timeoutMs?: number;
}

export interface EnsureImageOptions {
  /** Refuse the image unless its digest (image ID) equals this `sha256:…`. */
  digest?: string;
}

export interface PortSpec {
  containerPort: number;
  protocol?: 'tcp' | 'udp';
  /** Host address to bind; loopback unless the caller decides otherwise. */
  hostIp?: string;
  /** Host port; omitted or 0 lets the engine pick a free one (read it back from inspect). */
  hostPort?: number;
}

export interface VolumeMountSpec {
  /** A named volume; created with this cell's labels when missing, refused when someone else's. */
  volume: string;
  target: string;
  readOnly?: boolean;
}

export interface HealthcheckSpec {
  /** Exec form, run inside the container: exit 0 is healthy. */
  test: string[];
  intervalMs?: number;
  timeoutMs?: number;
  retries?: number;
  startPeriodMs?: number;
}

export interface ContainerSpec {
  name: string;
  /** Becomes the pic.service label. */
  service: string;
  /** A tag (`pic-test-echo:1`) or an image ID (`sha256:…`). */
  image: string;
  cmd?: string[];
  entrypoint?: string[];
  env?: Record<string, string>;
  /** Extra labels; the pic.* names are reserved for the runtime. */
  labels?: Record<string, string>;
  ports?: PortSpec[];
  volumes?: VolumeMountSpec[];
  /** A network this cell created (see createNetwork); the engine's default bridge otherwise. */
  network?: string;
  /** DNS names of the container on `network`. */
  networkAliases?: string[];
  restart?: 'no' | 'always' | 'unless-stopped' | 'on-failure';
  healthcheck?: HealthcheckSpec;
  user?: string;
  workingDir?: string;
  capAdd?: string[];
  /** Host device paths passed through unchanged (e.g. /dev/net/tun for WireGuard exits). */
  devices?: string[];
  /** Seconds the engine waits after the stop signal before it kills. */
  stopTimeoutSeconds?: number;
}

export interface PublishedPort {
  containerPort: number;
  protocol: 'tcp' | 'udp';
  hostIp: string;
  hostPort: number;
}

export type ContainerState = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export interface ContainerInfo {
  id: string;
  name: string;
  cellId: string;
  service: string;
  /** The reference the container was created from. */
  image: string;
  /** The digest (image ID) of the image the container actually runs. */
  imageDigest: string;
  state: ContainerState;
  running: boolean;
  exitCode: number | undefined;
  /** Present only when the container has a health check. */
  health: 'starting' | 'healthy' | 'unhealthy' | undefined;
  /** Bound host ports; empty until the container has started. */
  ports: PublishedPort[];
  labels: Record<string, string>;
  createdAt: string;
  startedAt: string | undefined;
}

export interface ListFilter {
  /** Only objects with this pic.service label. */
  service?: string;
}

export interface StopOptions {
  /** Seconds between the stop signal and a kill; the container's own setting when omitted. */
  timeoutSeconds?: number;
}

export interface RemoveOptions {
  /** Kill a running container instead of refusing. */
  force?: boolean;
  /** Succeed quietly when the object does not exist (idempotent removal). */
  missingOk?: boolean;
}

export interface LogsOptions {
  /** Only the last N lines. */
  tail?: number;
  /** Unix seconds. */
  since?: number;
  timestamps?: boolean;
}

export interface Logs {
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Abandon the command after this long (default 30 s) and throw ExecTimeoutError. */
  timeoutMs?: number;
  env?: Record<string, string>;
  user?: string;
  workingDir?: string;
  /** Written to the command's standard input, which is then closed. */
  stdin?: string | Buffer;
  /** Output beyond this many bytes per stream is dropped (default 1 MiB). */
  maxOutputBytes?: number;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface NetworkSpec {
  name: string;
  service: string;
  /** No route out of the network: containers on it reach only each other. */
  internal?: boolean;
  labels?: Record<string, string>;
}

export interface NetworkInfo {
  id: string;
  name: string;
  cellId: string;
  service: string;
  internal: boolean;
  labels: Record<string, string>;
  /** False when an identical network of this cell already existed (creation is idempotent). */
  created: boolean;
}

export interface VolumeSpec {
  name: string;
  service: string;
  labels?: Record<string, string>;
}

export interface VolumeInfo {
  name: string;
  cellId: string;
  service: string;
  mountpoint: string;
  labels: Record<string, string>;
  /** False when this cell's volume already existed (creation is idempotent). */
  created: boolean;
}

/**
 * What the cell needs from a container engine. One implementation (DockerRuntime) speaks the Docker
 * Engine API; anything answering that API on a socket (Docker, Podman) works.
 *
 * Ownership: a runtime is bound to one cell id. Everything it creates is labelled
 * pic.cell=<cell id> and pic.service=<service>; every call that reads or changes an existing object
 * first checks that label and throws NotOwnedError otherwise, and lists are filtered by it.
 */
/** One file for putFiles. */
export interface ContainerFile {
  name: string;
  content: string | Buffer;
  /** Permission bits, e.g. 0o640. */
  mode: number;
  uid?: number;
  gid?: number;
}

export interface ContainerRuntime {
  readonly cellId: string;
  /** DOCKER_HOST-style description of the engine, e.g. unix:///run/pic-docker.sock. */
  readonly endpoint: string;

  ping(): Promise<void>;
  version(): Promise<EngineVersion>;

  /** The local image, or undefined when the engine does not have it. */
  inspectImage(ref: string): Promise<ImageInfo | undefined>;
  /** The digest the cell pins for `ref` (its image ID); ImageMissingError when absent. */
  imageDigest(ref: string): Promise<string>;
  /** The image must be present locally (no registry is consulted here); optionally with this digest. */
  ensureImage(ref: string, options?: EnsureImageOptions): Promise<ImageInfo>;
  /**
   * Pulls `registry/repository@sha256:…` from the registry the reference names (only by digest: a
   * tag can be moved) and checks that the engine now holds an image whose RepoDigests contain that
   * exact reference. Throws RegistryUnreachableError, ImagePullError or ImageDigestMismatchError.
   */
  pullImage(ref: string, options?: PullOptions): Promise<ImageInfo>;

  createContainer(spec: ContainerSpec): Promise<ContainerInfo>;
  startContainer(idOrName: string): Promise<void>;
  stopContainer(idOrName: string, options?: StopOptions): Promise<void>;
  restartContainer(idOrName: string, options?: StopOptions): Promise<void>;
  removeContainer(idOrName: string, options?: RemoveOptions): Promise<void>;
  inspectContainer(idOrName: string): Promise<ContainerInfo>;
  listContainers(filter?: ListFilter): Promise<ContainerInfo[]>;
  logs(idOrName: string, options?: LogsOptions): Promise<Logs>;
  /**
   * Writes files into a container's filesystem (created or running) under the existing directory
   * `dir`, through the engine's archive endpoint: how a secret reaches a container without an image
   * or a volume holding it. Each name is a plain file name (no slash).
   */
  putFiles(idOrName: string, dir: string, files: readonly ContainerFile[]): Promise<void>;
  /** Runs argv (no shell) inside a running container and waits for it. */
  exec(idOrName: string, argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;

  createNetwork(spec: NetworkSpec): Promise<NetworkInfo>;
  removeNetwork(name: string, options?: Pick<RemoveOptions, 'missingOk'>): Promise<void>;
  listNetworks(filter?: ListFilter): Promise<NetworkInfo[]>;

  createVolume(spec: VolumeSpec): Promise<VolumeInfo>;
  removeVolume(name: string, options?: Pick<RemoveOptions, 'missingOk'>): Promise<void>;
  listVolumes(filter?: ListFilter): Promise<VolumeInfo[]>;
}
