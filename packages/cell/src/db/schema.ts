import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/** Booleans are 0/1 integers; times are ISO-8601 UTC text. */
export type Bool01 = 0 | 1;

export interface UsersTable {
  id: Generated<number>;
  username: string;
  role: 'admin' | 'peer';
  password_hash: string;
  must_change_password: ColumnType<Bool01, Bool01 | undefined, Bool01>;
  disabled: ColumnType<Bool01, Bool01 | undefined, Bool01>;
  created_at: string;
  updated_at: string;
  password_changed_at: string;
}

export interface SessionsTable {
  /** SHA-256 of the cookie's session id; the id itself is never stored. */
  id_hash: string;
  user_id: number | null;
  data: string;
  created_at: string;
  /** Idle expiry: moved forward as the session is used. */
  expires_at: string;
  /** Hard limit: the session ends then, however active. */
  absolute_expires_at: string;
}

export interface SettingsTable {
  key: string;
  value: string;
  updated_at: string;
}

export interface HealthChecksTable {
  id: Generated<number>;
  ts: string;
  status: 'ok' | 'degraded' | 'down';
  duration_ms: number;
  checks: string;
}

export interface AuditLogTable {
  id: number;
  /** Canonical JSON (RFC 8785) of the entry, exactly the bytes that were hashed. */
  entry: string;
  prev_hash: string;
  hash: string;
  // Generated from `entry` (read-only).
  ts: ColumnType<string, never, never>;
  actor: ColumnType<string, never, never>;
  action: ColumnType<string, never, never>;
  target_type: ColumnType<string | null, never, never>;
  target_id: ColumnType<string | null, never, never>;
  result: ColumnType<'ok' | 'denied' | 'error', never, never>;
  ip: ColumnType<string | null, never, never>;
  details: ColumnType<string, never, never>;
}

export interface AuditChainTable {
  id: number;
  archived_through_id: number;
  archived_last_hash: string;
  head_id: number;
  head_hash: string;
  updated_at: string;
}

export interface AuditArchivesTable {
  id: Generated<number>;
  file: string;
  first_id: number;
  last_id: number;
  first_prev_hash: string;
  last_hash: string;
  entries: number;
  sha256: string;
  created_at: string;
}

export interface VaultStateTable {
  id: number;
  /** The age recipient every secret is encrypted to; the key file in the data dir must match it. */
  recipient: string;
  generation: ColumnType<number, number | undefined, number>;
  created_at: string;
  rotated_at: string | null;
}

export interface VaultSecretsTable {
  name: string;
  /** age ciphertext (binary format); never the plaintext. */
  ciphertext: Uint8Array;
  recipient: string;
  /** Plaintext length in bytes (the ciphertext length reveals it anyway). */
  size: number;
  created_at: string;
  updated_at: string;
}

export interface VaultCaTable {
  id: number;
  serial: string;
  subject: string;
  certificate_pem: string;
  not_before: string;
  not_after: string;
  created_at: string;
}

export interface VaultCertificatesTable {
  serial: string;
  name: string;
  type: 'server' | 'client';
  subject: string;
  /** JSON array of DNS names. */
  sans: string;
  not_before: string;
  not_after: string;
  certificate_pem: string;
  /** Vault secret name of the private key; null once revoked. */
  key_secret: string | null;
  revoked_at: string | null;
  revocation_reason: string | null;
  created_at: string;
}

export interface VaultTrustKeysTable {
  name: string;
  key_type: 'ecdsa-p256' | 'ed25519';
  /** SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex. */
  fingerprint: string;
  public_key_pem: string;
  created_at: string;
}

export interface PeersTable {
  id: Generated<number>;
  name: string;
  description: string;
  user_id: number | null;
  public_key: string;
  address: string;
  /** JSON arrays */
  dns: string;
  allowed_ips: string;
  peer_group: string | null;
  tags: string;
  enabled: ColumnType<Bool01, Bool01 | undefined, Bool01>;
  expires_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface PeerTrafficTable {
  peer_id: number;
  ts: string;
  rx_bytes: number;
  tx_bytes: number;
  latest_handshake: string | null;
}

export type ServiceInstallState = 'installing' | 'installed' | 'removing';
export type ServiceJobState =
  | 'verifying'
  | 'pulling'
  | 'creating'
  | 'starting'
  | 'healthy'
  | 'removing'
  | 'removed'
  | 'failed';

export interface ServiceInstallationsTable {
  service_id: string;
  version: string;
  /** The verified manifest (JSON) the service was installed from. */
  manifest: string;
  manifest_digest: string;
  index_version: number;
  state: ServiceInstallState;
  job_id: number | null;
  installed_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface ServiceJobsTable {
  id: Generated<number>;
  service_id: string;
  kind: 'install' | 'remove';
  state: ServiceJobState;
  version: string;
  actor: string;
  error: string | null;
  /** JSON array of what the job created (for rollback). */
  resources: ColumnType<string, string | undefined, string>;
  purge: ColumnType<Bool01, Bool01 | undefined, Bool01>;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
  /** JSON: how far the image pulls have come (JobProgress), while pulling and after. */
  progress: ColumnType<string | null, string | null | undefined, string | null>;
  /** Why a failed job failed, as a stable snake_case word (e.g. registry_unreachable). */
  error_code: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface ServiceAccountsTable {
  id: Generated<number>;
  service_id: string;
  username: string;
  peer_id: number | null;
  state: ColumnType<'active' | 'deleting', 'active' | 'deleting' | undefined, 'active' | 'deleting'>;
  created_at: string;
  updated_at: string;
}

export interface DnsRecordsTable {
  id: Generated<number>;
  name: string;
  type: 'A' | 'AAAA' | 'CNAME' | 'TXT';
  value: string;
  created_at: string;
}

export interface CellInvitesTable {
  id: Generated<number>;
  nonce_hash: string;
  expires_at: string;
  used_at: string | null;
  used_by: string | null;
  created_at: string;
  /** 1: a one-step invite (the invited cell may deliver its response to the link listener). */
  one_step: Generated<number>;
}

export interface CellLinksTable {
  id: Generated<number>;
  name: string;
  domain: string;
  public_key: string;
  endpoint: string | null;
  subnet: string;
  sync_port: number;
  policy: ColumnType<string, string | undefined, string>;
  role: 'inviter' | 'invitee';
  send_seq: ColumnType<number, number | undefined, number>;
  recv_seq: ColumnType<number, number | undefined, number>;
  last_sync_at: string | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

export interface CellOutboxTable {
  link_id: number;
  seq: number;
  change: string;
  created_at: string;
}

export interface CellRemotePeersTable {
  link_id: number;
  name: string;
  address: string;
  public_key: string;
  groups: string;
  enabled: Bool01;
  updated_at: string;
}

export interface CellPushedPeersTable {
  name: string;
  state: string;
}

export interface Database {
  dns_records: DnsRecordsTable;
  cell_invites: CellInvitesTable;
  cell_links: CellLinksTable;
  cell_outbox: CellOutboxTable;
  cell_remote_peers: CellRemotePeersTable;
  cell_pushed_peers: CellPushedPeersTable;
  peers: PeersTable;
  peer_traffic: PeerTrafficTable;
  audit_log: AuditLogTable;
  audit_chain: AuditChainTable;
  audit_archives: AuditArchivesTable;
  users: UsersTable;
  sessions: SessionsTable;
  settings: SettingsTable;
  health_checks: HealthChecksTable;
  vault_state: VaultStateTable;
  vault_secrets: VaultSecretsTable;
  vault_ca: VaultCaTable;
  vault_certificates: VaultCertificatesTable;
  vault_trust_keys: VaultTrustKeysTable;
  service_installations: ServiceInstallationsTable;
  service_jobs: ServiceJobsTable;
  service_accounts: ServiceAccountsTable;
}

export type User = Selectable<UsersTable>;
export type NewUser = Insertable<UsersTable>;
export type UserUpdate = Updateable<UsersTable>;
