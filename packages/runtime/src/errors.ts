/**
 * Typed errors of the container runtime. Callers switch on `code` (stable strings), never on
 * message text; messages name the engine endpoint or the object so a log line says what failed.
 */
export type RuntimeErrorCode =
  | 'engine_unreachable'
  | 'engine_error'
  | 'image_missing'
  | 'image_digest_mismatch'
  | 'registry_unreachable'
  | 'image_pull_failed'
  | 'name_conflict'
  | 'not_found'
  | 'not_owned'
  | 'invalid_spec'
  | 'exec_timeout';

export class RuntimeError extends Error {
  readonly code: RuntimeErrorCode;
  /** HTTP status the engine answered with, when the engine answered at all. */
  readonly engineStatus: number | undefined;

  constructor(code: RuntimeErrorCode, message: string, options: { cause?: unknown; engineStatus?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.engineStatus = options.engineStatus;
  }
}

/** The socket (or TCP address) does not answer: no engine, wrong path, or no permission. */
export class EngineUnreachableError extends RuntimeError {
  constructor(
    readonly endpoint: string,
    reason: string,
    cause?: unknown,
  ) {
    super('engine_unreachable', `container engine not reachable at ${endpoint}: ${reason}`, { cause });
  }
}

/** The engine answered with an error this module has no more specific type for. */
export class EngineError extends RuntimeError {
  constructor(message: string, engineStatus: number | undefined, cause?: unknown) {
    super('engine_error', message, { cause, ...(engineStatus === undefined ? {} : { engineStatus }) });
  }
}

export class ImageMissingError extends RuntimeError {
  constructor(
    readonly ref: string,
    detail = '',
  ) {
    super('image_missing', `image ${ref} is not present on the engine${detail ? `: ${detail}` : ''}`);
  }
}

/** The local image exists but is not the one the caller pinned. */
export class ImageDigestMismatchError extends RuntimeError {
  constructor(
    readonly ref: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super('image_digest_mismatch', `image ${ref} has digest ${actual}, expected ${expected}`);
  }
}

/** The registry a pull names does not answer (refused, no such host, timeout, not speaking the registry API). */
export class RegistryUnreachableError extends RuntimeError {
  constructor(
    readonly ref: string,
    readonly registry: string,
    detail: string,
    cause?: unknown,
  ) {
    super('registry_unreachable', `registry ${registry} is not reachable to pull ${ref}: ${detail}`, { cause });
  }
}

/** The registry answered, but the pull failed: no such image there, or content that did not verify. */
export class ImagePullError extends RuntimeError {
  constructor(
    readonly ref: string,
    /** not_found: the registry has no such manifest; verification_failed: what it served is not that digest. */
    readonly reason: 'not_found' | 'verification_failed' | 'failed',
    detail: string,
    cause?: unknown,
  ) {
    super('image_pull_failed', `pulling ${ref} failed: ${detail}`, { cause });
  }
}

export class NameConflictError extends RuntimeError {
  constructor(
    readonly kind: ObjectKind,
    readonly objectName: string,
    detail = '',
  ) {
    super('name_conflict', `a ${kind} named ${objectName} already exists${detail ? `: ${detail}` : ''}`, {
      engineStatus: 409,
    });
  }
}

export class NotFoundError extends RuntimeError {
  constructor(
    readonly kind: ObjectKind,
    readonly objectName: string,
  ) {
    super('not_found', `no ${kind} ${objectName} on the engine`, { engineStatus: 404 });
  }
}

/** The object exists but does not carry this cell's label: the cell never touches it. */
export class NotOwnedError extends RuntimeError {
  constructor(
    readonly kind: ObjectKind,
    readonly objectName: string,
    readonly cellId: string,
    readonly foundCell: string | undefined,
  ) {
    super(
      'not_owned',
      `refusing to touch ${kind} ${objectName}: it is not labelled pic.cell=${cellId}` +
        (foundCell === undefined ? ' (it has no pic.cell label)' : ` (it belongs to cell ${foundCell})`),
    );
  }
}

export class InvalidSpecError extends RuntimeError {
  constructor(message: string) {
    super('invalid_spec', message);
  }
}

export class ExecTimeoutError extends RuntimeError {
  constructor(
    readonly container: string,
    readonly argv: readonly string[],
    readonly timeoutMs: number,
    /** What the command wrote before it was abandoned. */
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super('exec_timeout', `exec ${JSON.stringify(argv)} in ${container} did not finish within ${timeoutMs} ms`);
  }
}

export type ObjectKind = 'container' | 'network' | 'volume' | 'image';
