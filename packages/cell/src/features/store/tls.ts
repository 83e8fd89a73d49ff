import type { ContainerSpec as ManifestContainer, ServiceManifest } from '@pic/manifest';
import type { ContainerFile } from '@pic/runtime';
import type { Db } from '../../db/database.js';
import type { Logger } from '../../lib/logger.js';
import { CertificateAuthority } from '../vault/ca.js';
import type { Vault } from '../vault/vault.js';

/** Days a service certificate is valid; a reinstall or an update issues a fresh one. */
export const SERVICE_CERT_DAYS = 397;

/**
 * TLS for a service container that asks for it (manifest `tls`): a server certificate for
 * <subdomain>.<domain> from the cell's internal CA, recorded in the CA's index with its key in the
 * vault, and handed to the container as files (cert.pem, key.pem readable by `gid` only, ca.pem)
 * before it starts. Never baked into an image, never on a volume.
 */
export class ServiceTls {
  private readonly ca: CertificateAuthority;

  constructor(
    private readonly db: Db,
    vault: Vault,
    logger: Logger,
  ) {
    this.ca = new CertificateAuthority(db, vault, logger);
  }

  async caPem(): Promise<string> {
    return this.ca.certificatePem();
  }

  /** Issues and records one certificate for the service; returns the files for each container that wants TLS. */
  async filesFor(
    manifest: ServiceManifest,
    domain: string,
  ): Promise<Map<string, { dir: string; files: ContainerFile[] }>> {
    const wanting = manifest.containers.filter(
      (c): c is ManifestContainer & { tls: NonNullable<ManifestContainer['tls']> } => c.tls !== undefined,
    );
    const out = new Map<string, { dir: string; files: ContainerFile[] }>();
    if (wanting.length === 0) return out;
    const issued = await this.ca.issue({
      name: `${manifest.subdomain}.${domain}`,
      type: 'server',
      days: SERVICE_CERT_DAYS,
    });
    await this.db.transaction().execute((trx) => this.ca.record(trx, issued));
    const caPem = await this.ca.certificatePem();
    for (const c of wanting) {
      out.set(c.name, {
        dir: c.tls.path,
        files: [
          // The chain a client needs: the server certificate, then the CA's.
          { name: 'cert.pem', content: `${issued.certificatePem.trim()}\n${caPem.trim()}\n`, mode: 0o644 },
          { name: 'key.pem', content: issued.privateKeyPem, mode: 0o640, uid: 0, gid: c.tls.gid ?? 0 },
          { name: 'ca.pem', content: caPem, mode: 0o644 },
        ],
      });
    }
    return out;
  }
}
