#!/usr/bin/env node
// Makes a store signing key pair (ECDSA P-256). The private key goes outside the repository by
// default, mode 0600; only the public key belongs in services-index/.
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PASSPHRASE_ENV, isInside, loadManifestPackage, repoRoot, resolveFrom, runMain } from './lib.mjs';

const DEFAULT_DIR = join(homedir(), '.config', 'pic-store');
const USAGE = `usage: node scripts/store/keygen.mjs [--out <dir>] [--public-out <path>]

  --out <dir>           where to write store.key.pem (mode 0600) and store.pub.pem
                        (default ${DEFAULT_DIR}); existing files are never overwritten
  --public-out <path>   also write the public key here, e.g. services-index/store.pub.pem
  --no-build            use packages/manifest/dist as it is (default: build the workspace first)

Set $${PASSPHRASE_ENV} to encrypt the private key (AES-256-CBC, PKCS#8); store:sign reads the same variable.
`;

await runMain(
  USAGE,
  {
    out: 'string',
    'public-out': 'string',
    'no-build': 'boolean',
  },
  async (args) => {
    const m = await loadManifestPackage({ build: !args['no-build'] });
    const dir = resolveFrom(process.cwd(), args.out ?? DEFAULT_DIR);
    if (isInside(repoRoot, dir))
      process.stderr.write(`warning: ${dir} lies inside the repository; never commit store.key.pem\n`);
    await mkdir(dir, { recursive: true, mode: 0o700 });

    const { privateKey, publicKey } = m.generateStoreKeyPair();
    const passphrase = process.env[PASSPHRASE_ENV] || undefined;
    const privatePem = privateKey.export(
      passphrase
        ? { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }
        : { type: 'pkcs8', format: 'pem' },
    );
    const publicPem = m.publicKeyPem(publicKey);
    const keyFile = join(dir, 'store.key.pem');
    const pubFile = join(dir, 'store.pub.pem');
    // "wx": fail rather than overwrite a key someone may still need.
    await writeFile(keyFile, privatePem, { mode: 0o600, flag: 'wx' }).catch((err) => {
      throw new Error(
        err.code === 'EEXIST'
          ? `${keyFile} already exists; not overwriting a key`
          : `cannot write ${keyFile}: ${err.message}`,
      );
    });
    await chmod(keyFile, 0o600); // the umask cannot widen it, but be explicit
    await writeFile(pubFile, publicPem, { mode: 0o644, flag: 'wx' }).catch((err) => {
      throw new Error(
        err.code === 'EEXIST'
          ? `${pubFile} already exists; not overwriting it`
          : `cannot write ${pubFile}: ${err.message}`,
      );
    });
    if (args['public-out']) await writeFile(resolveFrom(process.cwd(), args['public-out']), publicPem, { mode: 0o644 });

    process.stdout.write(
      `store key ${m.keyFingerprint(publicKey)}\n  private  ${keyFile} (0600${passphrase ? ', encrypted' : ''})\n  public   ${pubFile}\n` +
        (args['public-out'] ? `  public   ${args['public-out']}\n` : ''),
    );
    return 0;
  },
);
