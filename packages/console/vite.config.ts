import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The cell serves dist/ at / with a strict CSP (no inline script): Vite's module-preload polyfill
// would be an inline script, so it is off (every browser the console supports has modulepreload).
export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: 'es2022',
    assetsInlineLimit: 0,
  },
});
