import { setFlagsFromString } from 'node:v8';

// A home server idles most of its life on a small machine: favour memory over peak speed. This is
// set before the rest of the cell is loaded, so the code it compiles is compiled for size too.
setFlagsFromString('--optimize-for-size');

/** Entry: the cell is in server.ts (load config → open db → build app → listen); `vpn down` in vpn-cli.ts. */
if (process.argv[2] === 'vpn') await import('./vpn-cli.js');
else (await import('./server.js')).serve();
