import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { ContainerSpec as ManifestContainer, ServiceManifest, TemplateValues } from '@pic/manifest';
import type { ManifestLib } from './manifest-lib.js';
import type { ContainerSpec, PortSpec } from '@pic/runtime';
import type { Database } from '../../db/schema.js';
import type { Vault } from '../vault/vault.js';
import { objectNames } from './engine.js';

/** Labels the cell adds besides the runtime's pic.cell/pic.service (those are reserved to it). */
export const LABEL_CONTAINER = 'org.pic-cell.container';
export const LABEL_VERSION = 'org.pic-cell.version';

/** Where a service's generated secrets live in the vault. */
export const serviceSecretName = (serviceId: string, name: string) => `service/${serviceId}/secret/${name}`;

/** A random URL-safe value of exactly `length` characters. */
export function generateSecret(length: number): string {
  return randomBytes(Math.ceil((length * 3) / 4) + 3)
    .toString('base64url')
    .slice(0, length);
}

/** Reads a secret through the caller's transaction when there is one (the vault insists on it). */
export async function readVaultSecret(
  vault: Vault,
  executor: Kysely<Database>,
  name: string,
): Promise<string | undefined> {
  return vault.get(name, executor);
}

/** The service's secrets from the vault, by name; missing ones are absent (rendering then fails loudly). */
export async function serviceSecrets(
  vault: Vault,
  executor: Kysely<Database>,
  manifest: ServiceManifest,
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const s of manifest.secrets ?? []) {
    const value = await readVaultSecret(vault, executor, serviceSecretName(manifest.id, s.name));
    if (value !== undefined) out[s.name] = value;
  }
  return out;
}

/** The seconds install waits for a container's health check, from its own settings plus slack. */
export function healthDeadlineMs(c: ManifestContainer): number {
  const hc = c.healthcheck;
  return ((hc.startPeriodSeconds ?? 0) + hc.intervalSeconds * (hc.retries + 1) + hc.timeoutSeconds) * 1000 + 10_000;
}

/**
 * The engine's container spec for a manifest container. Every declared tcp port is published on
 * 127.0.0.1 at a port the engine picks (how the cell reaches health checks, account endpoints and
 * proxied routes); a port with `host` is also published at that number, on each of `publishAddresses`:
 * the addresses are the cell's choice (store.publish_address; by default 127.0.0.1 and the WireGuard
 * address while the tunnel is up), never the manifest's.
 */
export function containerSpec(
  cellId: string,
  manifest: ServiceManifest,
  c: ManifestContainer,
  image: string,
  values: TemplateValues,
  renderTemplate: ManifestLib['renderTemplate'],
  publishAddresses: readonly string[] = [DEFAULT_PUBLISH_ADDRESS],
): ContainerSpec {
  const names = objectNames(cellId, manifest.id);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(c.env ?? {})) env[k] = renderTemplate(v, values);
  const ports: PortSpec[] = [];
  for (const p of c.ports ?? []) {
    if (p.protocol === 'tcp')
      ports.push({ containerPort: p.container, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 0 });
    if (p.host === undefined) continue;
    for (const hostIp of publishAddresses) {
      ports.push({ containerPort: p.container, protocol: p.protocol, hostIp, hostPort: p.host });
    }
  }
  const hc = c.healthcheck;
  return {
    name: names.container(c.name),
    service: manifest.id,
    image,
    ...(c.command ? { cmd: [...c.command] } : {}),
    env,
    labels: { [LABEL_CONTAINER]: c.name, [LABEL_VERSION]: manifest.version },
    ports,
    volumes: (c.volumes ?? []).map((v) => ({
      volume: names.volume(v.name),
      target: v.path,
      readOnly: v.readOnly ?? false,
    })),
    network: names.network,
    networkAliases: [c.name],
    restart: 'unless-stopped',
    stopTimeoutSeconds: 10,
    // An exec check runs in the engine; an http check is made by the cell itself (see health.ts).
    ...(hc.exec
      ? {
          healthcheck: {
            test: [...hc.exec],
            intervalMs: hc.intervalSeconds * 1000,
            timeoutMs: hc.timeoutSeconds * 1000,
            retries: hc.retries,
            ...(hc.startPeriodSeconds ? { startPeriodMs: hc.startPeriodSeconds * 1000 } : {}),
          },
        }
      : {}),
  };
}

export const DEFAULT_PUBLISH_ADDRESS = '127.0.0.1';

/**
 * The host ports a manifest asks for that this cell uses itself: its WireGuard listen port, its
 * API port (and the fixed ones the manifest rules already refuse: SSH, DNS, HTTP(S)).
 * Returns `{ "containers.0.ports.1.host": reason }` for each, empty when there is none.
 */
export function reservedPortProblems(
  manifest: ServiceManifest,
  cell: { wireguardPort: number; apiPort: number },
): Record<string, string> {
  const reserved = new Map<number, string>([
    [22, 'SSH'],
    [53, 'DNS'],
    [80, 'HTTP'],
    [443, 'HTTPS'],
    [cell.wireguardPort, "the cell's WireGuard listen port"],
    [cell.apiPort, "the cell's API port"],
  ]);
  const problems: Record<string, string> = {};
  manifest.containers.forEach((c, i) => {
    (c.ports ?? []).forEach((p, j) => {
      const use = p.host !== undefined ? reserved.get(p.host) : undefined;
      if (use) problems[`containers.${i}.ports.${j}.host`] = `host port ${p.host} is used by this cell (${use})`;
    });
  });
  return problems;
}

/** Every distinct volume name of the manifest. */
export function manifestVolumes(manifest: ServiceManifest): string[] {
  return [...new Set(manifest.containers.flatMap((c) => (c.volumes ?? []).map((v) => v.name)))];
}
