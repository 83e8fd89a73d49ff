/** The wireguard module: keys, config text, addresses, QR codes and the live interface. */
export * from './keys.js';
export * from './config.js';
export * from './addresses.js';
export * from './status.js';
export * from './qr.js';
export { isInterfaceName, isNetnsName, redactKeys } from './commands.js';
export * from './interface.js';
