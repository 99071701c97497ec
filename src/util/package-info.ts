import fs from 'node:fs';
import path from 'node:path';
import { findPackageRoot } from '../render/template.js';

let version: string | undefined;

/** vm-provisioner's own version, from its package.json (recorded in domain metadata). */
export function packageVersion(): string {
  if (version === undefined) {
    const pkg = JSON.parse(fs.readFileSync(path.join(findPackageRoot(), 'package.json'), 'utf8')) as {
      version: string;
    };
    version = pkg.version;
  }
  return version;
}

/** The bundled guest agent that `npm run build` writes and the kickstart embeds. */
export function agentBundlePath(): string {
  return path.join(findPackageRoot(), 'dist', 'guest-agent', 'vm-guest-agent.cjs');
}
