/**
 * Placeholders in manifest strings: `{{username}}`, `{{password}}`, `{{domain}}`, `{{subdomain}}`
 * and `{{secret:NAME}}`. They are filled by the cell, one string at a time, never by a shell: an
 * argv element stays one argument whatever a username contains.
 */

/** The values a placeholder can stand for. */
export type PlaceholderName = 'username' | 'password' | 'domain' | 'subdomain';
export const PLACEHOLDER_NAMES: readonly PlaceholderName[] = ['username', 'password', 'domain', 'subdomain'];

/** A secret's name as written after `secret:`; the same pattern the manifest's `secrets[].name` uses. */
export const SECRET_NAME_PATTERN = '^[a-z][a-z0-9-]{0,62}$';

export type Placeholder = { kind: 'value'; name: PlaceholderName } | { kind: 'secret'; name: string };

/** A `{{…}}` that is not a known placeholder, and where it starts. */
export interface UnknownPlaceholder {
  text: string;
  index: number;
}

const TOKEN = /\{\{([^{}]*)\}\}/g;
const SECRET_NAME = new RegExp(SECRET_NAME_PATTERN);

/** Every placeholder in a template, plus anything in double braces that is not one. */
export function scanTemplate(template: string): { placeholders: Placeholder[]; unknown: UnknownPlaceholder[] } {
  const placeholders: Placeholder[] = [];
  const unknown: UnknownPlaceholder[] = [];
  for (const m of template.matchAll(TOKEN)) {
    const inner = m[1] ?? '';
    const p = toPlaceholder(inner);
    if (p) placeholders.push(p);
    else unknown.push({ text: m[0], index: m.index });
  }
  // Stray braces would read as a placeholder to a person but not to the cell: refuse them too.
  const rest = template.replace(TOKEN, '');
  const stray = rest.indexOf('{{') >= 0 ? '{{' : rest.indexOf('}}') >= 0 ? '}}' : undefined;
  if (stray) unknown.push({ text: stray, index: template.indexOf(stray) });
  return { placeholders, unknown };
}

function toPlaceholder(inner: string): Placeholder | undefined {
  if ((PLACEHOLDER_NAMES as readonly string[]).includes(inner))
    return { kind: 'value', name: inner as PlaceholderName };
  if (inner.startsWith('secret:') && SECRET_NAME.test(inner.slice('secret:'.length))) {
    return { kind: 'secret', name: inner.slice('secret:'.length) };
  }
  return undefined;
}

export interface TemplateValues {
  username?: string;
  password?: string;
  domain?: string;
  subdomain?: string;
  /** The service's secrets from the vault, by name. */
  secrets?: Readonly<Record<string, string>>;
}

/** A placeholder had no value to fill it with: a bug in the caller or a manifest the validator let through. */
export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

/**
 * Fills a template. Every placeholder must have a value; unknown `{{…}}` text is an error rather
 * than being copied through, so a typo never reaches a container.
 */
export function renderTemplate(template: string, values: TemplateValues): string {
  const { unknown } = scanTemplate(template);
  if (unknown.length > 0) throw new TemplateError(`unknown placeholder ${unknown[0]!.text} in "${template}"`);
  return template.replace(TOKEN, (_all, inner: string) => {
    const p = toPlaceholder(inner)!;
    const value = p.kind === 'secret' ? values.secrets?.[p.name] : values[p.name];
    if (value === undefined) throw new TemplateError(`no value for {{${inner}}} in "${template}"`);
    return value;
  });
}
