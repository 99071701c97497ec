// Bundles the CLI so that a command loads a few files instead of hundreds of
// small modules (docs/architecture.md, "Start-up"). It replaces tsc's
// dist/src/cli/main.js, which package.json's bin and the tests run; every
// command stays a separate chunk loaded by import() when it runs. Left out:
// the native addons, and yargs, which finds its translations beside itself.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';

const outdir = 'dist/src/cli';
for (const file of fs.readdirSync(outdir)) {
  if (/^chunk-.*\.js(\.map)?$/.test(file)) fs.rmSync(path.join(outdir, file));
}

await build({
  entryPoints: {
    main: 'src/cli/main.ts',
    // keyring.ts runs its worker as a script found beside its own (bundled) code.
    'keyring-worker': 'src/secrets/keyring-worker.ts',
  },
  outdir,
  chunkNames: 'chunk-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['yargs', '@unraid/libvirt', '@napi-rs/keyring'],
  // CommonJS dependencies call require(); an ES module has none of its own.
  banner: {
    js: "import { createRequire as vmpCreateRequire } from 'node:module'; const require = vmpCreateRequire(import.meta.url);",
  },
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
});

// esbuild writes its outputs afresh (mode 0644); the bin must stay executable for `npx vm-provisioner`
// and `npm link` after any rebuild, not only after npm first linked it.
fs.chmodSync(path.join(outdir, 'main.js'), 0o755);
