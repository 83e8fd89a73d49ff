/**
 * The only way a feature sets an HTTP status: throw one of these factories.
 * `id` is stable (clients and tests may rely on it); `message` is for people.
 */
export type FieldErrors = Record<string, string>;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly id: string,
    message: string,
    readonly fields: FieldErrors = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const errors = {
  validation: (fields: FieldErrors, message = 'invalid input') =>
    new HttpError(400, 'validation_failed', message, fields),
  badRequest: (message: string, fields: FieldErrors = {}) => new HttpError(400, 'bad_request', message, fields),
  malformedJson: () => new HttpError(400, 'malformed_json', 'request body is not valid JSON'),
  unauthorized: (message = 'authentication required') => new HttpError(401, 'unauthorized', message),
  forbidden: (message = 'forbidden', id = 'forbidden') => new HttpError(403, id, message),
  notFound: (message = 'not found') => new HttpError(404, 'not_found', message),
  conflict: (message: string, fields: FieldErrors = {}) => new HttpError(409, 'conflict', message, fields),
  misdirected: (message = 'this cell does not answer to that host name') => new HttpError(421, 'unknown_host', message),
  payloadTooLarge: (message = 'request body too large') => new HttpError(413, 'payload_too_large', message),
  unsupportedMediaType: (message = 'request body must be application/json') =>
    new HttpError(415, 'unsupported_media_type', message),
  tooManyRequests: (retryAfterSeconds: number, message = 'too many requests') =>
    new HttpError(
      429,
      'rate_limited',
      message,
      {},
      { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
    ),
  unavailable: (message = 'service unavailable') => new HttpError(503, 'unavailable', message),
  /** The cell is too busy for this request right now (a bounded queue is full); retry soon. */
  busy: (retryAfterSeconds: number, message = 'busy; try again in a moment') =>
    new HttpError(503, 'busy', message, {}, { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) }),
};
