/**
 * How many refused peer-sync messages get an audit entry of their own. Every refusal is still
 * refused; only its audit entry is rationed, so a flood of forged messages cannot flood the audit
 * log: per source address, the first `perWindow` refusals of a window (a minute by default) are
 * audited one by one, and the rest are counted and written as one summary entry when the window
 * ends (or when the cell stops).
 */
export interface RefusalSummary {
  source: string;
  /** Refusals not audited one by one in this window. */
  count: number;
  /** How many of each error (bad_mac, replayed, …). */
  errors: Record<string, number>;
  /** The link, when every counted refusal named the same one. */
  link: string | null;
  from: string;
  to: string;
}

interface Window {
  start: number;
  audited: number;
  count: number;
  errors: Record<string, number>;
  links: Set<string | null>;
  timer?: NodeJS.Timeout;
}

/** Sources tracked at once; beyond that, new sources share one window (memory stays bounded). */
const MAX_SOURCES = 1024;
const OVERFLOW = '*';

export class RefusalAuditLimiter {
  private readonly windows = new Map<string, Window>();
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly write: (summary: RefusalSummary) => Promise<void>,
    readonly perWindow = 20,
    readonly windowMs = 60_000,
  ) {}

  /** True: audit this refusal on its own. False: it was counted for the window's summary. */
  admit(source: string, error: string, link: string | null): boolean {
    const now = Date.now();
    let key = source;
    let w = this.windows.get(key);
    if (w && now - w.start >= this.windowMs) {
      this.close(key); // its timer has not fired yet: the window is over all the same
      w = undefined;
    }
    if (!w) {
      if (this.windows.size >= MAX_SOURCES) key = OVERFLOW;
      w = this.windows.get(key);
      if (!w) {
        w = { start: now, audited: 0, count: 0, errors: {}, links: new Set() };
        this.windows.set(key, w);
        // an idle window with nothing counted is dropped at its end too: no map growing forever
        w.timer = setTimeout(() => this.close(key), this.windowMs);
        w.timer.unref();
      }
    }
    if (w.audited < this.perWindow) {
      w.audited++;
      return true;
    }
    w.count++;
    w.errors[error] = (w.errors[error] ?? 0) + 1;
    w.links.add(link);
    return false;
  }

  private close(key: string): void {
    const w = this.windows.get(key);
    if (!w) return;
    this.windows.delete(key);
    if (w.timer) clearTimeout(w.timer);
    if (w.count === 0) return;
    const links = [...w.links];
    const summary: RefusalSummary = {
      source: key,
      count: w.count,
      errors: w.errors,
      link: links.length === 1 ? links[0]! : null,
      from: new Date(w.start).toISOString(),
      to: new Date(Math.min(Date.now(), w.start + this.windowMs)).toISOString(),
    };
    const p = this.write(summary)
      .catch(() => undefined)
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /** Writes the summaries of open windows now (the cell is stopping). */
  async flush(): Promise<void> {
    for (const key of [...this.windows.keys()]) this.close(key);
    await Promise.all([...this.pending]);
  }
}
