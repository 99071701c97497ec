// Bundles the guest agent into one self-contained file that the kickstart
// installs inside the VM (no node_modules there).
import { build } from 'esbuild';
import { existsSync } from 'node:fs';

const entry = 'guest-agent/src/main.ts';
if (!existsSync(entry)) {
  // The kickstart installs this bundle into every VM: building without it is a broken build.
  console.error(`bundle-agent: ${entry} is missing`);
  process.exit(1);
}
await build({
  entryPoints: [entry],
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  outfile: 'dist/guest-agent/vm-guest-agent.cjs',
  banner: { js: '#!/usr/bin/env node' },
  legalComments: 'none',
  logLevel: 'warning',
});
