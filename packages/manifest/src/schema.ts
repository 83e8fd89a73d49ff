import { Type, type Static, type SchemaOptions } from '@sinclair/typebox';
import { DIGEST_PATTERN, PINNED_IMAGE_PATTERN } from './image-ref.js';
import { SECRET_NAME_PATTERN } from './templates.js';

/*
 * The service manifest's JSON Schema, written in TypeBox. Every object is closed
 * (additionalProperties: false) and every field carries a description; wiki/dev-service-manifest-reference.md
 * documents the same fields for people. Rules that span fields (a container named by a route must exist,
 * …) are checked in manifest.ts, with the same field paths.
 */

const closed = { additionalProperties: false } as const;

/** A string enum as `{ type: string, enum }`: ajv's errors for it read better than anyOf's. */
function StringEnum<const T extends readonly string[]>(values: T, options: SchemaOptions = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

export const DNS_LABEL_PATTERN = '^[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?$';
/** semver.org's regular expression for SemVer 2.0.0. */
export const SEMVER_PATTERN =
  '^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(?:-((?:0|[1-9]\\d*|\\d*[a-zA-Z-][a-zA-Z0-9-]*)(?:\\.(?:0|[1-9]\\d*|\\d*[a-zA-Z-][a-zA-Z0-9-]*))*))?(?:\\+([0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*))?$';
const ENV_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';
/** Absolute, no `.`/`..` segments (a segment may not start with a dot). */
const CONTAINER_PATH_PATTERN = '^(?:/[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*)+$';
/** An HTTP path (with optional query) of printable ASCII: no spaces, no control characters. */
const HTTP_PATH_PATTERN = '^/[\\x21-\\x7e]*$';
/** A route path below /api/<id>: literal segments and `:param` segments. */
export const ROUTE_PATH_PATTERN = '^(?:/(?:[a-z0-9][a-z0-9._-]*|:[a-z][a-zA-Z0-9]*))+$';
const HEADER_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9-]*$';
const FIELD_NAME_PATTERN = '^[A-Za-z0-9_.-]+$';

const DnsLabel = (description: string) =>
  Type.String({
    pattern: DNS_LABEL_PATTERN,
    description,
    errorMessage: 'must be a DNS label: a-z, 0-9 and "-", starting with a letter, at most 32 characters',
  });
const Port = (description: string) => Type.Integer({ minimum: 1, maximum: 65535, description });
const Argv = (description: string) =>
  Type.Array(
    Type.String({
      minLength: 1,
      description: 'One argument; placeholders are filled inside it, never split or shell-interpreted.',
    }),
    {
      minItems: 1,
      description,
    },
  );
const Template = (description: string, options: SchemaOptions = {}) =>
  Type.String({ minLength: 1, maxLength: 4096, description, ...options });

export const CAPABILITIES = ['accounts', 'webdav', 'caldav', 'carddav', 'imap', 'smtp', 'http'] as const;
export const PROTOCOLS = ['imap', 'smtp', 'caldav', 'carddav', 'webdav', 'http'] as const;
export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export const ROUTE_HANDLERS = [
  'proxy',
  'exec',
  'accounts.list',
  'accounts.create',
  'accounts.delete',
  'accounts.credentials',
  'accounts.rotate',
] as const;

export const EnvSchema = Type.Record(
  Type.String({ pattern: ENV_NAME_PATTERN }),
  Type.String({
    maxLength: 4096,
    description: 'The value; may use {{domain}}, {{subdomain}} and {{secret:NAME}}. Never a secret itself.',
  }),
  {
    ...closed,
    description:
      'Environment variables of the container, by name. A name that says it holds a secret (…PASSWORD, …SECRET, …TOKEN, …KEY) must take its whole value from one {{secret:NAME}}.',
  },
);

export const VolumeSchema = Type.Object(
  {
    name: DnsLabel(
      "The volume's name within the service; containers of the same service that name the same volume share it. Kept on removal unless purged.",
    ),
    path: Type.String({
      pattern: CONTAINER_PATH_PATTERN,
      description: 'Absolute mount point inside the container.',
      errorMessage: 'must be an absolute path without "." or ".." segments',
    }),
    readOnly: Type.Optional(Type.Boolean({ description: 'Mount read-only in this container. Default false.' })),
  },
  { ...closed, description: 'A named data volume mounted into the container.' },
);

export const PortSchema = Type.Object(
  {
    container: Port('The port the process listens on inside the container.'),
    protocol: StringEnum(['tcp', 'udp'] as const, { description: 'Transport protocol.' }),
    host: Type.Optional(
      Port(
        "Publish the port on the cell's host at this number (e.g. 993 for IMAPS). Omitted: reachable only on the cell's internal service network.",
      ),
    ),
    description: Type.Optional(Type.String({ maxLength: 200, description: 'What the port serves, for people.' })),
  },
  { ...closed, description: 'A port the container listens on.' },
);

export const HealthCheckSchema = Type.Object(
  {
    exec: Type.Optional(
      Argv('Command run inside the container (no shell); exit status 0 means healthy. Exactly one of exec and http.'),
    ),
    http: Type.Optional(
      Type.Object(
        {
          port: Port("Container port to probe; must be one of the container's declared tcp ports."),
          path: Type.String({
            pattern: HTTP_PATH_PATTERN,
            description: 'Path the cell GETs; any 2xx answer means healthy.',
          }),
          tls: Type.Optional(
            Type.Boolean({
              description:
                "The port speaks TLS (the container's tls certificate): the cell probes over https, without " +
                'checking the certificate (a liveness probe on loopback). Default false.',
            }),
          ),
        },
        { ...closed, description: 'An HTTP GET from the cell to the container. Exactly one of exec and http.' },
      ),
    ),
    intervalSeconds: Type.Integer({ minimum: 1, maximum: 3600, description: 'Seconds between checks.' }),
    timeoutSeconds: Type.Integer({
      minimum: 1,
      maximum: 600,
      description: 'Seconds one check may take before it counts as failed.',
    }),
    retries: Type.Integer({
      minimum: 1,
      maximum: 100,
      description: 'Consecutive failures before the container counts as unhealthy.',
    }),
    startPeriodSeconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 3600,
        description: 'Grace period after start during which failures do not count. Default 0.',
      }),
    ),
  },
  { ...closed, description: 'How the cell knows the container is healthy; install waits for it.' },
);

/** A sigstore bundle (JSON form); its inside is the sigstore format's own and checked by @sigstore/bundle. */
export const SignatureBundleSchema = Type.Object(
  {
    mediaType: Type.String({
      pattern: '^application/vnd\\.dev\\.sigstore\\.bundle',
      description: 'The sigstore bundle media type.',
    }),
    verificationMaterial: Type.Object(
      {},
      {
        additionalProperties: true,
        description: 'The sigstore verification material: a public key hint, no certificate.',
      },
    ),
    messageSignature: Type.Object(
      {},
      {
        additionalProperties: true,
        description: "The sigstore message signature over cosign's payload for this image.",
      },
    ),
  },
  {
    ...closed,
    description:
      "Optional sigstore bundle (keyed message signature) over cosign's signature payload for this image's digest.",
  },
);

export const ContainerSchema = Type.Object(
  {
    name: DnsLabel("The container's name within the service; other fields refer to it by this name."),
    image: Type.String({
      pattern: PINNED_IMAGE_PATTERN,
      description:
        'Image reference pinned by digest: name[:tag]@sha256:<64 hex>. The cell refuses a local image whose digest differs.',
      errorMessage: 'must be pinned by digest: name[:tag]@sha256:<64 lowercase hex> (a tag alone can be moved)',
    }),
    command: Type.Optional(Argv("Replaces the image's default command: an argv array, no shell.")),
    env: Type.Optional(EnvSchema),
    volumes: Type.Optional(Type.Array(VolumeSchema, { description: 'Named volumes mounted into the container.' })),
    ports: Type.Optional(Type.Array(PortSchema, { description: 'Ports the container listens on.' })),
    healthcheck: HealthCheckSchema,
    tls: Type.Optional(
      Type.Object(
        {
          path: Type.String({
            pattern: CONTAINER_PATH_PATTERN,
            description: 'Directory the files are written into.',
            errorMessage: 'must be an absolute path without "." or ".." segments',
          }),
          gid: Type.Optional(
            Type.Integer({
              minimum: 0,
              maximum: 65535,
              description:
                "Group that may read key.pem (mode 0640); the server's own group when it runs as non-root. Default 0.",
            }),
          ),
        },
        {
          ...closed,
          description:
            'Before the container starts, the cell issues a server certificate for <subdomain>.<domain> from its ' +
            'internal CA and writes cert.pem, key.pem and ca.pem into this directory. Never baked into an image.',
        },
      ),
    ),
    signature: Type.Optional(SignatureBundleSchema),
  },
  { ...closed, description: 'One container of the service.' },
);

export const SecretSchema = Type.Object(
  {
    name: Type.String({
      pattern: SECRET_NAME_PATTERN,
      description: 'Name used in {{secret:NAME}} placeholders.',
      errorMessage: 'must be a-z, 0-9 and "-", starting with a letter',
    }),
    description: Type.String({ minLength: 1, maxLength: 200, description: 'What the secret is for, for people.' }),
    length: Type.Integer({
      minimum: 16,
      maximum: 128,
      description: 'Length of the random value the cell generates at install (URL-safe characters).',
    }),
  },
  {
    ...closed,
    description: 'A secret the cell generates at install, keeps in its vault, and fills into placeholders.',
  },
);

export const ExecActionSchema = Type.Object(
  {
    container: DnsLabel('The container to run the command in.'),
    argv: Argv(
      'The command and its arguments; may use {{username}}, {{password}}, {{domain}}, {{subdomain}}, {{secret:NAME}} (not every action may use every placeholder).',
    ),
    stdin: Type.Optional(
      Template(
        'Text written to the command\'s standard input, e.g. "{{password}}" so the password never appears in a process list.',
      ),
    ),
  },
  { ...closed, description: "Run a command inside a service container (the engine's exec, no shell)." },
);

export const HttpActionSchema = Type.Object(
  {
    container: DnsLabel('The container whose admin endpoint is called.'),
    port: Port("Container port of the admin endpoint; must be one of the container's declared tcp ports."),
    method: StringEnum(HTTP_METHODS, { description: 'HTTP method.' }),
    path: Type.String({
      pattern: HTTP_PATH_PATTERN,
      maxLength: 2048,
      description: 'Request path (and query); placeholders are filled and URL-encoded.',
    }),
    headers: Type.Optional(
      Type.Record(
        Type.String({ pattern: HEADER_NAME_PATTERN }),
        Template('Header value; may use placeholders, e.g. {{secret:admin-token}}.'),
        {
          ...closed,
          description: 'Request headers, by name.',
        },
      ),
    ),
    body: Type.Optional(
      Type.Object(
        {
          encoding: StringEnum(['form', 'json'] as const, {
            description: 'form: application/x-www-form-urlencoded; json: a JSON object of strings.',
          }),
          fields: Type.Record(
            Type.String({ pattern: FIELD_NAME_PATTERN }),
            Type.String({
              maxLength: 4096,
              description: 'Field value; placeholders are filled, then the cell encodes it.',
            }),
            {
              ...closed,
              description: 'Body fields, by name.',
            },
          ),
        },
        {
          ...closed,
          description:
            'Request body; the cell encodes each filled field itself, so a value cannot break out of its field.',
        },
      ),
    ),
  },
  { ...closed, description: 'Call an HTTP endpoint of a service container; any 2xx answer is success.' },
);

const actionFields = {
  exec: Type.Optional(ExecActionSchema),
  http: Type.Optional(HttpActionSchema),
  timeoutSeconds: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 600, description: 'Seconds the action may take. Default 30.' }),
  ),
};

export const AccountActionSchema = Type.Object(actionFields, {
  ...closed,
  description: 'One account operation: exactly one of exec and http.',
});

export const AccountListActionSchema = Type.Object(
  {
    ...actionFields,
    output: StringEnum(['lines', 'json'] as const, {
      description: 'How to read the usernames: lines = one a line; json = a JSON array of strings.',
    }),
  },
  { ...closed, description: 'Lists the accounts: exactly one of exec and http, and how to read its output.' },
);

export const AccountsSchema = Type.Object(
  {
    create: Type.Object(actionFields, {
      ...closed,
      description:
        'Create an account, or set a new password when it exists (must be idempotent). Uses {{username}} and {{password}}.',
    }),
    delete: Type.Object(actionFields, {
      ...closed,
      description: 'Delete an account; deleting an absent account succeeds. Uses {{username}}; no {{password}}.',
    }),
    list: AccountListActionSchema,
  },
  {
    ...closed,
    description: 'How the cell provisions accounts inside the service. Required with the accounts capability.',
  },
);

export const CredentialSchema = Type.Object(
  {
    label: Type.String({
      minLength: 1,
      maxLength: 64,
      description: 'What the peer sees, e.g. "IMAP (incoming mail)".',
    }),
    protocol: StringEnum(PROTOCOLS, { description: 'What a client speaks to this endpoint.' }),
    security: StringEnum(['tls', 'starttls', 'none'] as const, {
      description: 'tls: TLS from the first byte; starttls: upgrade in the protocol; none: plain.',
    }),
    host: Template('Host name template, e.g. "{{subdomain}}.{{domain}}".'),
    port: Port('Port the client connects to.'),
    username: Template('Login name template, e.g. "{{username}}" or "{{username}}@{{domain}}".'),
    password: Template('Password template; "{{password}}" (the account\'s generated password).'),
    path: Type.Optional(Template('Path for URL-based protocols, e.g. "/{{username}}/".')),
  },
  { ...closed, description: 'Connection info a peer gets for one endpoint, filled with its account.' },
);

export const RouteSchema = Type.Object(
  {
    method: StringEnum(HTTP_METHODS, { description: 'HTTP method.' }),
    path: Type.String({
      pattern: ROUTE_PATH_PATTERN,
      maxLength: 256,
      description: 'Path below /api/<id>, e.g. "/mailboxes/:username"; ":name" segments are parameters.',
      errorMessage: 'must be "/" segments of a-z 0-9 . _ - or ":param"',
    }),
    description: Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'What the route does, for people and the API listing.',
    }),
    handler: StringEnum(ROUTE_HANDLERS, {
      description:
        'proxy: forward to a container; exec: run a command in a container and answer its output; ' +
        "accounts.*: the cell's built-in account actions.",
    }),
    exec: Type.Optional(
      Type.Object(
        {
          container: DnsLabel('The container to run the command in.'),
          argv: Type.Array(
            Type.String({
              minLength: 1,
              description:
                'One argument. An argument that is exactly ":name" is filled with the route\'s parameter of that ' +
                "name, or else with the JSON body's string field of that name; every such value must be 1-64 of " +
                'a-z 0-9 . _ - (starting with a letter or digit). ' +
                'May use {{domain}}, {{subdomain}} and {{secret:NAME}}.',
            }),
            { minItems: 1, description: 'The command and its arguments (no shell).' },
          ),
          output: StringEnum(['json', 'lines'] as const, {
            description:
              "How the answer's `result` is read from standard output: a JSON document, " +
              'or an array of its non-empty lines.',
          }),
          timeoutSeconds: Type.Optional(
            Type.Integer({ minimum: 1, maximum: 600, description: 'Seconds the command may take. Default 30.' }),
          ),
        },
        {
          ...closed,
          description: 'What an exec route runs. Required exactly when handler is exec; exit status 0 is success.',
        },
      ),
    ),
    proxy: Type.Optional(
      Type.Object(
        {
          container: DnsLabel('The container to forward to.'),
          port: Port("Container port; must be one of the container's declared tcp ports."),
          path: Type.String({
            pattern: HTTP_PATH_PATTERN,
            maxLength: 2048,
            description:
              'Path on the container; ":param" segments are filled from the route\'s parameters. The query string is passed through.',
          }),
          headers: Type.Optional(
            Type.Record(
              Type.String({ pattern: HEADER_NAME_PATTERN }),
              Template('Header value; may use {{secret:NAME}}, {{domain}}, {{subdomain}}.'),
              {
                ...closed,
                description: 'Headers the cell adds to the forwarded request, e.g. an admin token.',
              },
            ),
          ),
        },
        { ...closed, description: 'Where a proxy route forwards to. Required exactly when handler is proxy.' },
      ),
    ),
  },
  { ...closed, description: 'An admin API route the cell mounts at /api/<id><path> while the service is installed.' },
);

export const ServiceManifestSchema = Type.Object(
  {
    id: DnsLabel('Stable identifier: the store key, the API prefix /api/<id>, and part of container and volume names.'),
    name: Type.String({ minLength: 1, maxLength: 64, description: 'Display name.' }),
    version: Type.String({
      pattern: SEMVER_PATTERN,
      description: 'Version of the service package (SemVer 2.0.0).',
      errorMessage: 'must be a semantic version, e.g. 1.2.3',
    }),
    description: Type.String({ minLength: 1, maxLength: 1000, description: 'What the service gives its users.' }),
    subdomain: Type.String({
      pattern: '^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$',
      description: 'The service is reached at <subdomain>.<cell domain>.',
      errorMessage: 'must be a DNS label: a-z, 0-9 and "-", starting with a letter',
    }),
    capabilities: Type.Array(StringEnum(CAPABILITIES, { description: 'One capability.' }), {
      minItems: 1,
      uniqueItems: true,
      description: 'What the service offers; accounts means the cell provisions per-peer accounts.',
    }),
    web: Type.Optional(
      Type.Object(
        {
          container: DnsLabel('The container serving HTTP.'),
          port: Port("Its port; must be one of the container's declared tcp ports."),
          tls: Type.Optional(
            Type.Boolean({
              description:
                "The port speaks HTTPS with the container's tls certificate: the reverse proxy connects over TLS, " +
                "trusting the cell's CA and checking the name <subdomain>.<domain>. " +
                "Needs the container's tls section.",
            }),
          ),
        },
        {
          ...closed,
          description: 'Where the reverse proxy sends https://<subdomain>.<domain>. Omitted: no web endpoint.',
        },
      ),
    ),
    secrets: Type.Optional(Type.Array(SecretSchema, { description: 'Secrets the cell generates for the service.' })),
    containers: Type.Array(ContainerSchema, { minItems: 1, description: "The service's containers." }),
    accounts: Type.Optional(AccountsSchema),
    credentials: Type.Optional(
      Type.Array(CredentialSchema, { minItems: 1, description: 'Connection info a peer with an account gets.' }),
    ),
    routes: Type.Optional(
      Type.Array(RouteSchema, { description: 'Admin API routes mounted under /api/<id> while installed.' }),
    ),
  },
  { ...closed, description: 'A Personal Internet Cell store service.' },
);

export type ServiceManifest = Static<typeof ServiceManifestSchema>;
export type ContainerSpec = Static<typeof ContainerSchema>;
export type VolumeSpec = Static<typeof VolumeSchema>;
export type PortSpec = Static<typeof PortSchema>;
export type HealthCheckSpec = Static<typeof HealthCheckSchema>;
export type SecretSpec = Static<typeof SecretSchema>;
export type ExecAction = Static<typeof ExecActionSchema>;
export type HttpAction = Static<typeof HttpActionSchema>;
export type AccountAction = Static<typeof AccountActionSchema>;
export type AccountListAction = Static<typeof AccountListActionSchema>;
export type AccountsSpec = Static<typeof AccountsSchema>;
export type CredentialTemplate = Static<typeof CredentialSchema>;
export type RouteSpec = Static<typeof RouteSchema>;
export type Capability = (typeof CAPABILITIES)[number];
export type RouteHandler = (typeof ROUTE_HANDLERS)[number];

/** One service as the signed catalog index lists it. */
export const IndexEntrySchema = Type.Object(
  {
    id: DnsLabel("The service id; equals the manifest's id."),
    version: Type.String({ pattern: SEMVER_PATTERN, description: "The manifest's version." }),
    manifest: Type.String({
      pattern: '^manifests/(?:[a-z0-9][a-z0-9._-]*/)*[a-z0-9][a-z0-9._-]*\\.ya?ml$',
      maxLength: 256,
      description:
        'Path of the manifest file relative to the catalog root (the directory holding manifests/ and services-index/).',
      errorMessage: 'must be a relative path manifests/….yaml',
    }),
    digest: Type.String({ pattern: DIGEST_PATTERN, description: "sha256 of the manifest's canonical JSON bytes." }),
  },
  { ...closed, description: 'One service of the catalog and the digest its manifest must have.' },
);

export const CatalogIndexSchema = Type.Object(
  {
    version: Type.Integer({ minimum: 1, description: 'Release number; every signed release increases it.' }),
    expires: Type.String({
      format: 'date-time',
      pattern: 'Z$',
      description: 'ISO-8601 UTC time after which cells refuse this index.',
      errorMessage: 'must be an ISO-8601 UTC time ending in Z',
    }),
    services: Type.Array(IndexEntrySchema, { description: 'Every service of the catalog.' }),
  },
  { ...closed, description: 'The signed catalog index of a store.' },
);

export type IndexEntry = Static<typeof IndexEntrySchema>;
export type CatalogIndex = Static<typeof CatalogIndexSchema>;
