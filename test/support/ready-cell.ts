import { startCellProcess, type CellProcess, type StartOptions } from './cell-process.js';
import { ApiClient, completeSetup } from './client.js';

export interface ReadyCell {
  cell: CellProcess;
  /** Signed in as the first admin (ADMIN), with its CSRF token. */
  admin: ApiClient;
  /** A fresh client with no cookies. */
  anon(): ApiClient;
}

/** Starts a real cell process and walks the whole setup wizard, so the API is fully open to the admin. */
export async function startReadyCell(opts: StartOptions = {}): Promise<ReadyCell> {
  const cell = await startCellProcess(opts);
  try {
    const admin = new ApiClient(cell.url);
    await completeSetup(admin);
    return { cell, admin, anon: () => new ApiClient(cell.url) };
  } catch (err) {
    await cell.destroy();
    throw err;
  }
}
