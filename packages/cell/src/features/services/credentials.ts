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

/** Protocols Caddy can carry (HTTP underneath): their credentials move to the proxy's port. */
const HTTP_PROTOCOLS = new Set(['caldav', 'carddav', 'webdav', 'http']);

/**
 * The port the manifest's credentials name for its web endpoint: the host port the web container
 * port is published on (or the container port itself), when the manifest has a `web` entry.
 */
function webCredentialPort(manifest: ServiceManifest): number[] {
  const web = manifest.web;
  if (!web) return [];
  const c = manifest.containers.find((x) => x.name === web.container);
  const published = c?.ports?.find((p) => p.container === web.port && p.protocol === 'tcp')?.host;
  return published === undefined ? [web.port] : [web.port, published];
}

/**
 * The manifest's credentials templates filled with one account: what a peer's client needs to connect.
 * With `httpsPort` (Caddy serves the service's subdomain), an HTTP-based credential that names the
 * web port at <subdomain>.<domain> names Caddy's port instead, over TLS: what a phone over the
 * tunnel reaches. Without it the manifest's own port stays.
 */
export function fillCredentials(
  manifest: ServiceManifest,
  values: { username: string; password: string; domain: string },
  renderTemplate: ManifestLib['renderTemplate'],
  httpsPort?: number,
): FilledCredential[] {
  const v = { ...values, subdomain: manifest.subdomain };
  const webHost = `${manifest.subdomain}.${values.domain}`;
  const webPorts = httpsPort === undefined ? [] : webCredentialPort(manifest);
  return (manifest.credentials ?? []).map((c) => {
    const host = renderTemplate(c.host, v);
    const proxied = HTTP_PROTOCOLS.has(c.protocol) && host === webHost && webPorts.includes(c.port);
    const port = proxied && httpsPort !== undefined ? httpsPort : c.port;
    return {
      label: c.label,
      protocol: c.protocol,
      security: proxied ? 'tls' : c.security,
      host,
      port,
      username: renderTemplate(c.username, v),
      password: renderTemplate(c.password, v),
      ...(c.path !== undefined ? { path: renderTemplate(c.path, v) } : {}),
    };
  });
}
