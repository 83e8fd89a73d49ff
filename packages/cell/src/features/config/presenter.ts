import type { CellConfig } from '../../config.js';
import type { CellSettings } from './service.js';

/** The cell config as the API shows it: settings from the wizard plus read-only runtime facts. */
export function presentConfig(settings: CellSettings, runtime: CellConfig) {
  return {
    identity: settings.identity,
    network: { ...settings.network, endpoint: settings.network.endpoint ?? null },
    server: { host: runtime.host, port: runtime.port, data_dir: runtime.dataDir },
  };
}
