import { readFileSync } from 'node:fs';
import { Readable, type Duplex } from 'node:stream';
import Docker from 'dockerode';
import tar from 'tar-stream';
import { Demuxer, demuxBuffer } from './demux.js';
import { describeEndpoint, resolveEndpoint, type EngineEndpoint, type EndpointSource } from './endpoint.js';
import { followStream, PullTracker, pullError, splitDigestReference } from './pull.js';
import {
  EngineError,
  EngineUnreachableError,
  ExecTimeoutError,
  ImageDigestMismatchError,
  ImageMissingError,
  ImagePullError,
  InvalidSpecError,
  NameConflictError,
  NotFoundError,
  NotOwnedError,
  RuntimeError,
  type ObjectKind,
} from './errors.js';
import {
  LABEL_CELL,
  LABEL_SERVICE,
  type ContainerFile,
  type ContainerInfo,
  type ContainerRuntime,
  type ContainerSpec,
  type ContainerState,
  type EngineVersion,
  type EnsureImageOptions,
  type ExecOptions,
  type ExecResult,
  type ImageInfo,
  type ListFilter,
  type Logs,
  type PullOptions,
  type LogsOptions,
  type NetworkInfo,
  type NetworkSpec,
  type PublishedPort,
  type RemoveOptions,
  type StopOptions,
  type VolumeInfo,
  type VolumeSpec,
} from './types.js';

export interface DockerRuntimeOptions extends EndpointSource {
  /** The cell this runtime acts for; written to and checked against the pic.cell label. */
  cellId: string;
  /** An already resolved endpoint; wins over socket/dockerHost. */
  endpoint?: EngineEndpoint;
  /** How long a plain API call may take before the engine counts as unreachable (default 60 s). */
  requestTimeoutMs?: number;
  /** How long ping() waits (default 5 s). */
  pingTimeoutMs?: number;
}

/** Label values and object names the runtime accepts: what Docker allows in a name, kept short. */
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const DEFAULT_EXEC_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_OUTPUT = 1024 * 1024;
/** Socket-level failures: the engine never answered. */
const UNREACHABLE_CODES = new Set([
  'ENOENT',
  'ECONNREFUSED',
  'EACCES',
  'EPERM',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTSOCK',
]);

interface EngineHttpError extends Error {
  statusCode?: number;
  json?: { message?: string } | Buffer | null;
  code?: string;
}

/** ContainerRuntime over the Docker Engine API (Docker or Podman's compatible socket), via dockerode. */
export class DockerRuntime implements ContainerRuntime {
  readonly cellId: string;
  readonly endpoint: string;
  readonly engineEndpoint: EngineEndpoint;
  /** The dockerode client, for maintainer tools that need an API call this class does not wrap. */
  readonly docker: Docker;
  private readonly requestTimeoutMs: number;
  private readonly pingTimeoutMs: number;

  constructor(options: DockerRuntimeOptions) {
    if (!NAME_RE.test(options.cellId))
      throw new InvalidSpecError(`cell id ${JSON.stringify(options.cellId)} is not a valid label value`);
    this.cellId = options.cellId;
    this.engineEndpoint = options.endpoint ?? resolveEndpoint(options);
    this.endpoint = describeEndpoint(this.engineEndpoint);
    this.requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
    this.pingTimeoutMs = options.pingTimeoutMs ?? 5_000;
    // Explicit options so docker-modem never falls back to DOCKER_HOST/DOCKER_TLS_* on its own.
    this.docker =
      this.engineEndpoint.kind === 'unix'
        ? new Docker({ socketPath: this.engineEndpoint.socketPath })
        : new Docker({ protocol: 'http', host: this.engineEndpoint.host, port: this.engineEndpoint.port });
  }

  /** The runtime for the cell's config: explicit socket, else DOCKER_HOST from the environment. */
  static fromEnvironment(cellId: string, socket?: string, env: NodeJS.ProcessEnv = process.env): DockerRuntime {
    return new DockerRuntime({ cellId, socket, dockerHost: env['DOCKER_HOST'] });
  }

  // ---------------------------------------------------------------- engine

  async ping(): Promise<void> {
    // dockerode accepts an abort signal here, its type declarations do not say so.
    const ping = this.docker.ping.bind(this.docker) as unknown as (opts: {
      abortSignal: AbortSignal;
    }) => Promise<unknown>;
    await this.call('ping', () => ping({ abortSignal: AbortSignal.timeout(this.pingTimeoutMs) }), {
      timeoutMs: this.pingTimeoutMs,
    });
  }

  async version(): Promise<EngineVersion> {
    const v = await this.call('version', () => this.docker.version());
    return { version: v.Version, apiVersion: v.ApiVersion, os: v.Os, arch: v.Arch };
  }

  // ---------------------------------------------------------------- images

  async inspectImage(ref: string): Promise<ImageInfo | undefined> {
    try {
      const info = await this.call('inspect image', () => this.docker.getImage(ref).inspect(), {
        kind: 'image',
        name: ref,
      });
      return {
        digest: info.Id,
        repoTags: info.RepoTags ?? [],
        repoDigests: info.RepoDigests ?? [],
        created: info.Created,
        sizeBytes: info.Size,
        labels: info.Config?.Labels ?? {},
      };
    } catch (err) {
      if (err instanceof ImageMissingError) return undefined;
      throw err;
    }
  }

  async imageDigest(ref: string): Promise<string> {
    const info = await this.inspectImage(ref);
    if (!info) throw new ImageMissingError(ref);
    return info.digest;
  }

  async ensureImage(ref: string, options: EnsureImageOptions = {}): Promise<ImageInfo> {
    const info = await this.inspectImage(ref);
    // No implicit pull: only pullImage() fetches, and only by digest.
    if (!info) throw new ImageMissingError(ref, 'pull it by digest, or build or load it onto the engine first');
    if (options.digest !== undefined && info.digest !== options.digest)
      throw new ImageDigestMismatchError(ref, options.digest, info.digest);
    return info;
  }

  async pullImage(ref: string, options: PullOptions = {}): Promise<ImageInfo> {
    const parsed = splitDigestReference(ref);
    if (!parsed) {
      const wanted = 'only registry/repository@sha256:<64 hex> (a tag can move)';
      throw new InvalidSpecError(`pull ${JSON.stringify(ref)}: ${wanted}`);
    }
    const timeoutMs = options.timeoutMs ?? 10 * 60_000;
    const deadline = Date.now() + timeoutMs;
    const progress = new PullTracker(options.onProgress);
    try {
      // The engine answers at once with a stream of progress lines (or an error: registry unreachable).
      const stream = await this.call('pull image', () => this.docker.pull(ref), { timeoutMs });
      await followStream(this.docker, stream, deadline, this.endpoint, (event) => progress.event(event));
    } catch (err) {
      throw pullError(ref, parsed.registry, err);
    }
    const info = await this.inspectImage(ref);
    // A pull by digest is verified by the engine; check the result anyway before anyone uses it.
    if (!info) throw new ImagePullError(ref, 'failed', 'the engine reported success but holds no such image');
    if (!info.repoDigests.includes(ref)) {
      throw new ImageDigestMismatchError(ref, parsed.digest, info.repoDigests.join(', ') || info.digest);
    }
    return info;
  }

  /** Tags a local image `source` as `repository:tag` (maintainer tools: publishing to a registry). */
  async tagImage(source: string, repository: string, tag: string): Promise<void> {
    const image = this.docker.getImage(source);
    await this.call('tag image', () => image.tag({ repo: repository, tag }), { kind: 'image', name: source });
  }

  /**
   * Pushes `repository:tag` to the registry its name carries and returns the manifest digest the
   * registry now serves for it (`sha256:…`, what a pinned reference names). Maintainer tools only.
   */
  async pushImage(ref: string, options: { timeoutMs?: number } = {}): Promise<string> {
    const timeoutMs = options.timeoutMs ?? 10 * 60_000;
    const deadline = Date.now() + timeoutMs;
    let digest: string | undefined;
    const image = this.docker.getImage(ref);
    // The engine wants an X-Registry-Auth header even for a registry without authentication.
    const context = { kind: 'image' as const, name: ref, timeoutMs };
    const stream = await this.call('push image', () => image.push({ authconfig: {} }), context);
    await followStream(this.docker, stream, deadline, this.endpoint, (event) => {
      const d = (event.aux as { Digest?: unknown } | undefined)?.Digest;
      if (typeof d === 'string') digest = d;
    });
    if (!digest || !/^sha256:[0-9a-f]{64}$/.test(digest)) {
      throw new EngineError(`push ${ref}: the engine reported no manifest digest`, undefined);
    }
    return digest;
  }

  /**
   * Loads a `docker save` archive (POST /images/load) and returns the references it reported.
   * For maintainer tools and tests that build images without a registry; not part of ContainerRuntime.
   */
  async loadImage(archive: Buffer | Readable): Promise<string[]> {
    const input = Buffer.isBuffer(archive) ? Readable.from([archive]) : archive;
    const res = await this.call('load image', () => this.docker.loadImage(input, { quiet: true }));
    const body = await readAll(res);
    const loaded: string[] = [];
    for (const line of body.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      let msg: { stream?: string; error?: string; errorDetail?: { message?: string } };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        continue;
      }
      if (msg.error)
        throw new EngineError(`load image on ${this.endpoint}: ${msg.errorDetail?.message ?? msg.error}`, undefined);
      const m = /Loaded image(?: ID)?: (\S+)/.exec(msg.stream ?? '');
      if (m) loaded.push(m[1]!);
    }
    return loaded;
  }

  // ---------------------------------------------------------------- containers

  async createContainer(spec: ContainerSpec): Promise<ContainerInfo> {
    checkName('container', spec.name);
    checkName('service', spec.service);
    const labels = this.labelsFor(spec.service, spec.labels);
    const env = Object.entries(spec.env ?? {}).map(([k, v]) => {
      if (!k || k.includes('='))
        throw new InvalidSpecError(`environment variable name ${JSON.stringify(k)} is invalid`);
      return `${k}=${v}`;
    });

    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
    for (const p of spec.ports ?? []) {
      if (!Number.isInteger(p.containerPort) || p.containerPort < 1 || p.containerPort > 65535) {
        throw new InvalidSpecError(`container port ${p.containerPort} is out of range`);
      }
      const key = `${p.containerPort}/${p.protocol ?? 'tcp'}`;
      exposed[key] = {};
      // Loopback by default: services are reached through the cell's reverse proxy, not directly.
      bindings[key] ??= [];
      bindings[key]!.push({ HostIp: p.hostIp ?? '127.0.0.1', HostPort: p.hostPort ? String(p.hostPort) : '' });
    }

    if (spec.network !== undefined && spec.network !== 'none') await this.ownedNetwork(spec.network);
    for (const v of spec.volumes ?? []) {
      // Docker would create a missing volume silently and without our labels; create it ourselves.
      await this.createVolume({ name: v.volume, service: spec.service });
    }

    const hc = spec.healthcheck;
    const ms = (n: number | undefined) => (n === undefined ? undefined : n * 1_000_000); // Docker counts nanoseconds
    const options: Docker.ContainerCreateOptions = {
      name: spec.name,
      Image: spec.image,
      Labels: labels,
      Env: env,
      ExposedPorts: exposed,
      ...(spec.cmd ? { Cmd: spec.cmd } : {}),
      ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
      ...(spec.user ? { User: spec.user } : {}),
      ...(spec.workingDir ? { WorkingDir: spec.workingDir } : {}),
      ...(spec.stopTimeoutSeconds !== undefined ? { StopTimeout: spec.stopTimeoutSeconds } : {}),
      ...(hc
        ? {
            Healthcheck: {
              Test: ['CMD', ...hc.test],
              ...(hc.intervalMs !== undefined ? { Interval: ms(hc.intervalMs) } : {}),
              ...(hc.timeoutMs !== undefined ? { Timeout: ms(hc.timeoutMs) } : {}),
              ...(hc.retries !== undefined ? { Retries: hc.retries } : {}),
              ...(hc.startPeriodMs !== undefined ? { StartPeriod: ms(hc.startPeriodMs) } : {}),
            },
          }
        : {}),
      HostConfig: {
        PortBindings: bindings,
        Mounts: (spec.volumes ?? []).map((v) => ({
          Type: 'volume' as const,
          Source: v.volume,
          Target: v.target,
          ReadOnly: v.readOnly ?? false,
        })),
        RestartPolicy: { Name: spec.restart ?? 'no' },
        ...(spec.network ? { NetworkMode: spec.network } : {}),
        ...(spec.capAdd ? { CapAdd: spec.capAdd } : {}),
        ...(spec.devices
          ? { Devices: spec.devices.map((d) => ({ PathOnHost: d, PathInContainer: d, CgroupPermissions: 'rwm' })) }
          : {}),
      },
      ...(spec.network && spec.network !== 'none' && spec.networkAliases
        ? { NetworkingConfig: { EndpointsConfig: { [spec.network]: { Aliases: spec.networkAliases } } } }
        : {}),
    };

    let created: Docker.Container;
    try {
      created = await this.call('create container', () => this.docker.createContainer(options), {
        kind: 'container',
        name: spec.name,
        creating: true,
      });
    } catch (err) {
      // The only thing a create can miss, once the network was checked, is the image.
      if (err instanceof NotFoundError) {
        throw new ImageMissingError(
          spec.image,
          'creating a container never pulls; pull it by digest, or build or load it first',
        );
      }
      throw err;
    }
    return this.inspectContainer(created.id);
  }

  async startContainer(idOrName: string): Promise<void> {
    const info = await this.ownedContainer(idOrName);
    await this.call('start container', () => this.docker.getContainer(info.Id).start(), {
      kind: 'container',
      name: idOrName,
      notModifiedOk: true,
    });
  }

  async stopContainer(idOrName: string, options: StopOptions = {}): Promise<void> {
    const info = await this.ownedContainer(idOrName);
    const t = options.timeoutSeconds;
    await this.call('stop container', () => this.docker.getContainer(info.Id).stop(t === undefined ? {} : { t }), {
      kind: 'container',
      name: idOrName,
      notModifiedOk: true,
      timeoutMs: this.requestTimeoutMs + (t ?? stopTimeoutOf(info)) * 1000,
    });
  }

  async restartContainer(idOrName: string, options: StopOptions = {}): Promise<void> {
    const info = await this.ownedContainer(idOrName);
    const t = options.timeoutSeconds;
    await this.call(
      'restart container',
      () => this.docker.getContainer(info.Id).restart(t === undefined ? {} : { t }),
      {
        kind: 'container',
        name: idOrName,
        timeoutMs: this.requestTimeoutMs + (t ?? stopTimeoutOf(info)) * 1000,
      },
    );
  }

  async removeContainer(idOrName: string, options: RemoveOptions = {}): Promise<void> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.ownedContainer(idOrName);
    } catch (err) {
      if (options.missingOk && err instanceof NotFoundError) return;
      throw err;
    }
    try {
      await this.call(
        'remove container',
        () => this.docker.getContainer(info.Id).remove({ force: options.force ?? false, v: false }),
        {
          kind: 'container',
          name: idOrName,
        },
      );
    } catch (err) {
      if (options.missingOk && err instanceof NotFoundError) return; // removed meanwhile (e.g. by a retry)
      throw err;
    }
  }

  async inspectContainer(idOrName: string): Promise<ContainerInfo> {
    return toContainerInfo(await this.ownedContainer(idOrName));
  }

  async listContainers(filter: ListFilter = {}): Promise<ContainerInfo[]> {
    const list = await this.call('list containers', () =>
      this.docker.listContainers({ all: true, filters: { label: this.labelFilter(filter) } }),
    );
    const infos = await Promise.all(
      list.map(async (c) => {
        try {
          return await this.inspectContainer(c.Id);
        } catch (err) {
          if (err instanceof NotFoundError) return undefined; // removed between list and inspect
          throw err;
        }
      }),
    );
    return infos.filter((c): c is ContainerInfo => c !== undefined).sort((a, b) => a.name.localeCompare(b.name));
  }

  async logs(idOrName: string, options: LogsOptions = {}): Promise<Logs> {
    const info = await this.ownedContainer(idOrName);
    const data = await this.call(
      'container logs',
      () =>
        this.docker.getContainer(info.Id).logs({
          follow: false,
          stdout: true,
          stderr: true,
          timestamps: options.timestamps ?? false,
          ...(options.tail !== undefined ? { tail: options.tail } : {}),
          ...(options.since !== undefined ? { since: options.since } : {}),
        }),
      { kind: 'container', name: idOrName },
    );
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(String(data));
    // With a TTY the engine sends one raw stream; without one, multiplexed frames.
    return info.Config.Tty ? { stdout: buf.toString('utf8'), stderr: '' } : demuxBuffer(buf);
  }

  async putFiles(idOrName: string, dir: string, files: readonly ContainerFile[]): Promise<void> {
    if (!dir.startsWith('/') || dir.split('/').some((seg) => seg === '..' || seg === '.')) {
      throw new InvalidSpecError(`putFiles needs an absolute directory without . or .. segments: ${dir}`);
    }
    for (const f of files) {
      if (!/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(f.name)) {
        throw new InvalidSpecError(`putFiles: "${f.name}" is not a plain file name`);
      }
    }
    const info = await this.ownedContainer(idOrName);
    const pack = tar.pack();
    for (const f of files) {
      const content = typeof f.content === 'string' ? Buffer.from(f.content, 'utf8') : f.content;
      const owner = { uid: f.uid ?? 0, gid: f.gid ?? 0 };
      pack.entry(
        { name: f.name, mode: f.mode, ...owner, mtime: new Date(), size: content.length, type: 'file' },
        content,
      );
    }
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk);
    const archive = Buffer.concat(chunks);
    const put = () => this.docker.getContainer(info.Id).putArchive(archive, { path: dir });
    await this.call('container put archive', put, { kind: 'container', name: idOrName });
  }

  async exec(idOrName: string, argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    if (argv.length === 0 || argv.some((a) => typeof a !== 'string'))
      throw new InvalidSpecError('exec needs a non-empty argument array of strings');
    const info = await this.ownedContainer(idOrName);
    if (!info.State.Running)
      throw new EngineError(`cannot exec in container ${idOrName}: it is ${info.State.Status}, not running`, 409);
    const timeoutMs = options.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
    const withStdin = options.stdin !== undefined;
    const exec = await this.call(
      'create exec',
      () =>
        this.docker.getContainer(info.Id).exec({
          Cmd: [...argv],
          AttachStdout: true,
          AttachStderr: true,
          AttachStdin: withStdin,
          Tty: false,
          ...(options.env ? { Env: Object.entries(options.env).map(([k, v]) => `${k}=${v}`) } : {}),
          ...(options.user ? { User: options.user } : {}),
          ...(options.workingDir ? { WorkingDir: options.workingDir } : {}),
        }),
      { kind: 'container', name: idOrName },
    );
    const stream = (await this.call('start exec', () => exec.start({ hijack: true, stdin: withStdin }))) as Duplex;
    const demuxer = new Demuxer(options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT);

    const finished = new Promise<'done'>((resolve, reject) => {
      stream.on('data', (chunk: Buffer) => demuxer.push(chunk));
      stream.once('end', () => resolve('done'));
      stream.once('close', () => resolve('done'));
      stream.once('error', (err) => reject(this.translate('exec', err, { kind: 'container', name: idOrName })));
    });
    if (withStdin) stream.end(options.stdin);

    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    const outcome = await Promise.race([finished, timedOut]).finally(() => clearTimeout(timer));
    if (outcome === 'timeout') {
      finished.catch(() => {}); // a late stream error after we gave up must not become an unhandled rejection
      stream.destroy();
      await this.killTimedOutExec(exec, argv);
      throw new ExecTimeoutError(idOrName, argv, timeoutMs, demuxer.stdout, demuxer.stderr);
    }

    // The output stream can close a moment before the engine records the exit code.
    for (let i = 0; ; i++) {
      const state = await this.call('inspect exec', () => exec.inspect());
      if (!state.Running && state.ExitCode !== null)
        return { exitCode: state.ExitCode, stdout: demuxer.stdout, stderr: demuxer.stderr };
      if (i >= 100)
        throw new EngineError(`exec in ${idOrName} ended its output but the engine reports no exit code`, undefined);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * The Engine API cannot cancel an exec. When the engine runs on this host (unix socket) we kill the
   * exec's process ourselves, but only after /proc shows the exact argv, so a PID from another PID
   * namespace (an engine in a VM) can never hit an unrelated process. Otherwise it runs on until it ends.
   */
  private async killTimedOutExec(exec: Docker.Exec, argv: readonly string[]): Promise<void> {
    if (this.engineEndpoint.kind !== 'unix' || process.platform !== 'linux') return;
    try {
      const { Pid: pid } = (await exec.inspect()) as Docker.ExecInspectInfo & { Pid?: number };
      if (!pid || pid <= 1) return;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`);
      if (!cmdline.equals(Buffer.from(`${argv.join('\0')}\0`))) return;
      process.kill(pid, 'SIGKILL');
    } catch {
      // Best effort: the process may have ended, or we may lack the permission.
    }
  }

  // ---------------------------------------------------------------- networks

  async createNetwork(spec: NetworkSpec): Promise<NetworkInfo> {
    checkName('network', spec.name);
    checkName('service', spec.service);
    const existing = await this.findNetwork(spec.name);
    if (existing) {
      if (existing.Labels?.[LABEL_CELL] !== this.cellId)
        throw new NameConflictError('network', spec.name, 'it does not belong to this cell');
      return { ...toNetworkInfo(existing), created: false };
    }
    const labels = this.labelsFor(spec.service, spec.labels);
    const net = await this.call(
      'create network',
      () =>
        this.docker.createNetwork({
          Name: spec.name,
          Driver: 'bridge',
          Internal: spec.internal ?? false,
          Labels: labels,
          CheckDuplicate: true,
        }),
      { kind: 'network', name: spec.name, creating: true },
    );
    const info = await this.call(
      'inspect network',
      () => this.docker.getNetwork(net.id).inspect() as Promise<Docker.NetworkInspectInfo>,
      {
        kind: 'network',
        name: spec.name,
      },
    );
    return { ...toNetworkInfo(info), created: true };
  }

  async removeNetwork(name: string, options: Pick<RemoveOptions, 'missingOk'> = {}): Promise<void> {
    let info: Docker.NetworkInspectInfo;
    try {
      info = await this.ownedNetwork(name);
    } catch (err) {
      if (options.missingOk && err instanceof NotFoundError) return;
      throw err;
    }
    try {
      await this.call('remove network', () => this.docker.getNetwork(info.Id).remove(), { kind: 'network', name });
    } catch (err) {
      if (options.missingOk && err instanceof NotFoundError) return;
      throw err;
    }
  }

  async listNetworks(filter: ListFilter = {}): Promise<NetworkInfo[]> {
    const list = await this.call('list networks', () =>
      this.docker.listNetworks({ filters: { label: this.labelFilter(filter) } }),
    );
    return list
      .filter((n) => n.Labels?.[LABEL_CELL] === this.cellId) // belt and braces: never trust a filter we cannot see
      .map((n) => ({ ...toNetworkInfo(n), created: false }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  // ---------------------------------------------------------------- volumes

  async createVolume(spec: VolumeSpec): Promise<VolumeInfo> {
    checkName('volume', spec.name);
    checkName('service', spec.service);
    const existing = await this.findVolume(spec.name);
    if (existing) {
      if (existing.Labels?.[LABEL_CELL] !== this.cellId)
        throw new NameConflictError('volume', spec.name, 'it does not belong to this cell');
      return { ...toVolumeInfo(existing), created: false };
    }
    const labels = this.labelsFor(spec.service, spec.labels);
    await this.call('create volume', () => this.docker.createVolume({ Name: spec.name, Labels: labels }), {
      kind: 'volume',
      name: spec.name,
      creating: true,
    });
    const vol = await this.findVolume(spec.name);
    if (!vol)
      throw new EngineError(`volume ${spec.name} vanished right after it was created on ${this.endpoint}`, undefined);
    return { ...toVolumeInfo(vol), created: true };
  }

  async removeVolume(name: string, options: Pick<RemoveOptions, 'missingOk'> = {}): Promise<void> {
    const existing = await this.findVolume(name);
    if (!existing) {
      if (options.missingOk) return;
      throw new NotFoundError('volume', name);
    }
    this.checkOwner('volume', name, existing.Labels);
    try {
      await this.call('remove volume', () => this.docker.getVolume(name).remove(), { kind: 'volume', name });
    } catch (err) {
      if (options.missingOk && err instanceof NotFoundError) return;
      throw err;
    }
  }

  async listVolumes(filter: ListFilter = {}): Promise<VolumeInfo[]> {
    const res = await this.call('list volumes', () =>
      this.docker.listVolumes({ filters: { label: this.labelFilter(filter) } }),
    );
    return (res.Volumes ?? [])
      .filter((v) => v.Labels?.[LABEL_CELL] === this.cellId)
      .map((v) => ({ ...toVolumeInfo(v), created: false }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  // ---------------------------------------------------------------- internals

  private labelsFor(service: string, extra: Record<string, string> = {}): Record<string, string> {
    for (const key of Object.keys(extra)) {
      if (key === LABEL_CELL || key === LABEL_SERVICE)
        throw new InvalidSpecError(`label ${key} is set by the runtime, not by the caller`);
    }
    return { ...extra, [LABEL_CELL]: this.cellId, [LABEL_SERVICE]: service };
  }

  private labelFilter(filter: ListFilter): string[] {
    const labels = [`${LABEL_CELL}=${this.cellId}`];
    if (filter.service !== undefined) labels.push(`${LABEL_SERVICE}=${filter.service}`);
    return labels;
  }

  private checkOwner(kind: ObjectKind, name: string, labels: Record<string, string> | null | undefined): void {
    const found = labels?.[LABEL_CELL];
    if (found !== this.cellId) throw new NotOwnedError(kind, name, this.cellId, found);
  }

  private async ownedContainer(idOrName: string): Promise<Docker.ContainerInspectInfo> {
    const info = await this.call('inspect container', () => this.docker.getContainer(idOrName).inspect(), {
      kind: 'container',
      name: idOrName,
    });
    this.checkOwner('container', idOrName, info.Config.Labels);
    return info;
  }

  private async findNetwork(name: string): Promise<Docker.NetworkInspectInfo | undefined> {
    try {
      const info = (await this.call('inspect network', () => this.docker.getNetwork(name).inspect(), {
        kind: 'network',
        name,
      })) as Docker.NetworkInspectInfo;
      // The engine also matches ID prefixes; only an exact name or ID is this object.
      return info.Name === name || info.Id === name ? info : undefined;
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  private async ownedNetwork(name: string): Promise<Docker.NetworkInspectInfo> {
    const info = await this.findNetwork(name);
    if (!info) throw new NotFoundError('network', name);
    this.checkOwner('network', name, info.Labels);
    return info;
  }

  private async findVolume(name: string): Promise<Docker.VolumeInspectInfo | undefined> {
    try {
      return (await this.call('inspect volume', () => this.docker.getVolume(name).inspect(), {
        kind: 'volume',
        name,
      })) as Docker.VolumeInspectInfo;
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  /** Runs one API call with a deadline and turns whatever it throws into a RuntimeError. */
  private async call<T>(op: string, fn: () => Promise<T>, ctx: CallContext = {}): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = ctx.timeoutMs ?? this.requestTimeoutMs;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new EngineUnreachableError(this.endpoint, `no answer to ${op} within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([fn(), deadline]);
    } catch (err) {
      if (ctx.notModifiedOk && (err as EngineHttpError)?.statusCode === 304) return undefined as T; // already in that state
      throw this.translate(op, err, ctx);
    } finally {
      clearTimeout(timer);
    }
  }

  private translate(op: string, err: unknown, ctx: CallContext): RuntimeError {
    if (err instanceof RuntimeError) return err;
    const e = err as EngineHttpError;
    if (e?.name === 'AbortError' || e?.name === 'TimeoutError')
      return new EngineUnreachableError(this.endpoint, `no answer to ${op} in time`, err);
    if (e?.statusCode === undefined) {
      const code = e?.code;
      if (code === undefined || UNREACHABLE_CODES.has(code)) {
        return new EngineUnreachableError(this.endpoint, `${op} failed: ${e?.message ?? String(err)}`, err);
      }
      return new EngineError(`${op} on ${this.endpoint} failed: ${e.message}`, undefined, err);
    }
    const message = engineMessage(e);
    if (e.statusCode === 404 && ctx.kind) {
      return ctx.kind === 'image'
        ? new ImageMissingError(ctx.name ?? '?')
        : new NotFoundError(ctx.kind, ctx.name ?? '?');
    }
    if (e.statusCode === 409 && ctx.creating && ctx.kind)
      return new NameConflictError(ctx.kind, ctx.name ?? '?', message);
    return new EngineError(
      `${op}${ctx.name ? ` ${ctx.name}` : ''}: engine answered ${e.statusCode}: ${message}`,
      e.statusCode,
      err,
    );
  }
}

interface CallContext {
  kind?: ObjectKind;
  name?: string;
  /** A 409 means the name is taken (create calls only). */
  creating?: boolean;
  /** A 304 means "already started/stopped": success. */
  notModifiedOk?: boolean;
  timeoutMs?: number;
}

function engineMessage(e: EngineHttpError): string {
  const json = e.json;
  if (json && !Buffer.isBuffer(json) && typeof json.message === 'string') return json.message;
  if (Buffer.isBuffer(json)) return json.toString('utf8').trim();
  return e.message;
}

function checkName(what: string, name: string): void {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new InvalidSpecError(
      `${what} name ${JSON.stringify(name)} is invalid: letters, digits, '_', '.', '-', starting with a letter or digit`,
    );
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** The container's own stop timeout (Docker's default is 10 s); used to size the call deadline. */
function stopTimeoutOf(info: Docker.ContainerInspectInfo): number {
  return (info.Config as { StopTimeout?: number }).StopTimeout ?? 10;
}

const NEVER_STARTED = '0001-01-01T00:00:00Z';

function toContainerInfo(c: Docker.ContainerInspectInfo): ContainerInfo {
  const labels = c.Config.Labels ?? {};
  const ports: PublishedPort[] = [];
  for (const [key, binds] of Object.entries(c.NetworkSettings?.Ports ?? {})) {
    const [port, protocol] = key.split('/');
    for (const b of binds ?? []) {
      ports.push({
        containerPort: Number(port),
        protocol: protocol === 'udp' ? 'udp' : 'tcp',
        hostIp: b.HostIp,
        hostPort: Number(b.HostPort),
      });
    }
  }
  const started = c.State.StartedAt && c.State.StartedAt !== NEVER_STARTED ? c.State.StartedAt : undefined;
  const health = c.State.Health?.Status;
  return {
    id: c.Id,
    name: c.Name.replace(/^\//, ''),
    cellId: labels[LABEL_CELL] ?? '',
    service: labels[LABEL_SERVICE] ?? '',
    image: c.Config.Image,
    imageDigest: c.Image,
    state: c.State.Status as ContainerState,
    running: c.State.Running,
    exitCode: c.State.Running || !started ? undefined : c.State.ExitCode,
    health: health === 'starting' || health === 'healthy' || health === 'unhealthy' ? health : undefined,
    ports,
    labels,
    createdAt: c.Created,
    startedAt: started,
  };
}

function toNetworkInfo(n: Docker.NetworkInspectInfo): Omit<NetworkInfo, 'created'> {
  const labels = n.Labels ?? {};
  return {
    id: n.Id,
    name: n.Name,
    cellId: labels[LABEL_CELL] ?? '',
    service: labels[LABEL_SERVICE] ?? '',
    internal: n.Internal,
    labels,
  };
}

function toVolumeInfo(v: Docker.VolumeInspectInfo): Omit<VolumeInfo, 'created'> {
  const labels = v.Labels ?? {};
  return {
    name: v.Name,
    cellId: labels[LABEL_CELL] ?? '',
    service: labels[LABEL_SERVICE] ?? '',
    mountpoint: v.Mountpoint,
    labels,
  };
}
