// @pic/manifest: service manifests, the signed catalog index, and the checks a cell makes before
// it trusts either (ADR 001). Pure functions and typed refusals; files.ts is the only I/O.
export * from './errors.js';
export * from './schema.js';
export * from './templates.js';
export * from './image-ref.js';
export * from './canonical.js';
export * from './manifest.js';
export * from './keys.js';
export * from './signing.js';
export * from './catalog.js';
export * from './images.js';
export * from './files.js';
export * from './read-file.js';
export * from './publish.js';
