// Bundles the guest agent into one self-contained file that the kickstart
// installs inside the VM (no node_modules there). Tests bundle through this
// same script (`--outfile <path>`) so they run exactly what ships.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';

const entry = 'guest-agent/src/main.ts';
const at = process.argv.indexOf('--outfile');
const outfile = at > 0 ? process.argv[at + 1] : 'dist/guest-agent/vm-guest-agent.cjs';
if (!outfile) {
  console.error('bundle-agent: --outfile needs a path');
  process.exit(2);
}
if (!existsSync(entry)) {
  // The kickstart installs this bundle into every VM: building without it is a broken build.
  console.error(`bundle-agent: ${entry} is missing`);
  process.exit(1);
}

// The x11 package reaches its X *server* and its keysym table only through
// lazy getters the agent never touches; leaving them out halves the bundle
// (it travels inside every kickstart). Touching them anyway fails loudly.
const lazyX11Parts = {
  name: 'drop-unused-x11-parts',
  setup(b) {
    b.onResolve({ filter: /^\.\/(xserver|keysyms)$/ }, (args) =>
      /[\\/]node_modules[\\/]x11[\\/]lib[\\/]index\.js$/.test(args.importer)
        ? { path: args.path, namespace: 'vmp-stub' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'vmp-stub' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`x11 ${args.path} is not bundled into the guest agent`)});`,
      loader: 'js',
    }));
  },
};

await build({
  entryPoints: [entry],
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  outfile,
  banner: { js: '#!/usr/bin/env node' },
  legalComments: 'none',
  // Whitespace and syntax only: identifiers stay readable in stack traces from the guest.
  minifyWhitespace: true,
  minifySyntax: true,
  plugins: [lazyX11Parts],
  logLevel: 'warning',
});
