import type { ServiceManifest } from '@pic/manifest';
import type { ManifestLib } from '../store/manifest-lib.js';

export interface FilledCredential {
  label: string;
  protocol: string;
  security: string;
  host: string;
  port: number;
  username: string;
  password: string;
  path?: string;
}

/** The manifest's credentials templates filled with one account: what a peer's client needs to connect. */
export function fillCredentials(
  manifest: ServiceManifest,
  values: { username: string; password: string; domain: string },
  renderTemplate: ManifestLib['renderTemplate'],
): FilledCredential[] {
  const v = { ...values, subdomain: manifest.subdomain };
  return (manifest.credentials ?? []).map((c) => ({
    label: c.label,
    protocol: c.protocol,
    security: c.security,
    host: renderTemplate(c.host, v),
    port: c.port,
    username: renderTemplate(c.username, v),
    password: renderTemplate(c.password, v),
    ...(c.path !== undefined ? { path: renderTemplate(c.path, v) } : {}),
  }));
}
