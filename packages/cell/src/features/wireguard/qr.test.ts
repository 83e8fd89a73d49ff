import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import jsQRModule from 'jsqr';
import { PNG } from 'pngjs';
import { renderClientConfig } from './config.js';
import { generateKeyPair, generatePresharedKey } from './keys.js';
import { configQrPng, configQrSvg } from './qr.js';

// jsqr is CommonJS with an ES-style `default` in its typings: under NodeNext the callable sits one level down.
const jsQR = jsQRModule.default;

const config = renderClientConfig({
  privateKey: generateKeyPair().privateKey,
  address: '10.8.0.77',
  dns: ['10.8.0.1'],
  cellPublicKey: generateKeyPair().publicKey,
  presharedKey: generatePresharedKey(),
  endpoint: 'home.example.net:51820',
  allowedIps: ['0.0.0.0/0', '::/0'],
});

describe('config QR codes', () => {
  it('PNG decodes back to exactly the config text (what a phone camera does)', async () => {
    const png = await configQrPng(config);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
    const image = PNG.sync.read(png);
    assert.ok(image.width >= 300, `large enough to scan: ${image.width}px`);
    const decoded = jsQR(new Uint8ClampedArray(image.data), image.width, image.height);
    assert.ok(decoded, 'jsQR found a QR code');
    assert.equal(decoded.data, config);
  });

  it('a different config gives a different code (the decode is not a fluke)', async () => {
    const other = config.replace('10.8.0.77/32', '10.8.0.78/32');
    const image = PNG.sync.read(await configQrPng(other));
    assert.equal(jsQR(new Uint8ClampedArray(image.data), image.width, image.height)?.data, other);
  });

  it('SVG is a complete svg document', async () => {
    const svg = await configQrSvg(config);
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]*viewBox="0 0 \d+ \d+"/);
    assert.match(svg.trim(), /<\/svg>$/);
    assert.match(svg, /<path[^>]+d="M/);
  });
});
