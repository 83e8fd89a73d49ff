/** A subsystem's state as GET /api/status shows it. */
export interface SubsystemStatus {
  state: 'ok' | 'degraded' | 'down' | 'not_configured' | 'not_installed';
  [detail: string]: unknown;
}

export type StatusProvider = () => Promise<SubsystemStatus> | SubsystemStatus;

/**
 * Features register a provider under their name; GET /api/status asks them all.
 * A provider that throws or hangs shows as `down` instead of failing the whole summary.
 */
export class StatusRegistry {
  private readonly providers = new Map<string, StatusProvider>();

  register(name: string, provider: StatusProvider): void {
    if (this.providers.has(name)) throw new Error(`status provider "${name}" registered twice`);
    this.providers.set(name, provider);
  }

  private recent: { at: number; result: Promise<Record<string, SubsystemStatus>> } | undefined;

  /**
   * The summary, at most `maxAgeMs` old: a dashboard polling /api/status (or many at once) costs
   * one round of provider checks per interval, and concurrent callers share one round.
   */
  summary(maxAgeMs = 1000, now = Date.now()): Promise<Record<string, SubsystemStatus>> {
    if (!this.recent || now - this.recent.at > maxAgeMs) this.recent = { at: now, result: this.collect() };
    return this.recent.result; // the shared promise itself: an async wrapper would add a promise per call
  }

  /** Asks every provider now. */
  async collect(timeoutMs = 2000): Promise<Record<string, SubsystemStatus>> {
    const entries = await Promise.all(
      [...this.providers].map(async ([name, provider]) => [name, await runProvider(provider, timeoutMs)] as const),
    );
    return Object.fromEntries(entries);
  }
}

async function runProvider(provider: StatusProvider, timeoutMs: number): Promise<SubsystemStatus> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve().then(provider),
      new Promise<SubsystemStatus>((resolve) => {
        timer = setTimeout(() => resolve({ state: 'down', error: 'status check timed out' }), timeoutMs);
      }),
    ]);
  } catch (err) {
    return { state: 'down', error: err instanceof Error ? err.message : 'status check failed' };
  } finally {
    clearTimeout(timer);
  }
}

/** Overall state: the worst of the subsystems that are in use. */
export function overallState(subsystems: Record<string, SubsystemStatus>): 'ok' | 'degraded' | 'down' {
  const states = Object.values(subsystems).map((s) => s.state);
  if (states.includes('down')) return 'down';
  if (states.includes('degraded')) return 'degraded';
  return 'ok';
}
