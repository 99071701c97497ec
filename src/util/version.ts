import fs from 'node:fs';
import path from 'node:path';
import { findPackageRoot } from '../render/template.js';

let version: string | undefined;

/** This package's version (from package.json), recorded in every domain we define. */
export function packageVersion(): string {
  if (version === undefined) {
    const manifest = JSON.parse(fs.readFileSync(path.join(findPackageRoot(), 'package.json'), 'utf8')) as {
      version: string;
    };
    version = manifest.version;
  }
  return version;
}
