import type { Db } from '../../db/database.js';
import type { Logger } from '../../lib/logger.js';
import { archiveEntriesBefore, type FileCipher } from './archive.js';
import type { AuditLog } from './service.js';

/**
 * With `audit.retention_days` set, archives entries older than that once a day (and once at start).
 * The archive run is itself audited, as the system's action.
 */
export class AuditRetention {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Db,
    private readonly log: AuditLog,
    private readonly cipher: FileCipher,
    private readonly dataDir: string,
    private readonly retentionDays: number | null,
    private readonly logger: Logger,
  ) {}

  start(): void {
    if (this.retentionDays === null) return;
    const run = () =>
      void this.runOnce().catch((err) => this.logger.error('audit retention failed', { error: String(err) }));
    run();
    this.timer = setInterval(run, 24 * 3_600_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async runOnce(now = Date.now()): Promise<number> {
    if (this.retentionDays === null) return 0;
    const before = new Date(now - this.retentionDays * 86_400_000).toISOString();
    return this.db.transaction().execute(async (trx) => {
      const result = await archiveEntriesBefore(trx, this.cipher, this.dataDir, before);
      if (result.archived > 0) {
        this.log.appendIn(trx, {
          actor: 'system',
          action: 'audit.archive',
          targetType: 'audit',
          result: 'ok',
          details: {
            before,
            archived: result.archived,
            first_id: result.first_id,
            last_id: result.last_id,
            retention_days: this.retentionDays,
          },
        });
        this.logger.info('audit entries archived', { archived: result.archived, file: result.file });
      }
      return result.archived;
    });
  }
}
