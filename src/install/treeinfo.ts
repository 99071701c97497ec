import type { Arch } from '../spec/types.js';
import { VmpError } from '../util/errors.js';

/**
 * Parser for an install tree's `.treeinfo` (productmd's INI format, as Fedora
 * composes publish it). We need three things from it: the tree's arch, where
 * the PXE kernel and initrd live ([images-<arch>]), and their sha256 sums
 * ([checksums], values "sha256:<hex>").
 */

export class TreeInfoError extends VmpError {}

export type IniSections = Map<string, Map<string, string>>;

export function parseIni(text: string): IniSections {
  const sections: IniSections = new Map();
  let current: Map<string, string> | undefined;
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const section = /^\[([^\]]+)\]$/.exec(line);
    if (section) {
      const name = section[1]!.trim();
      current = sections.get(name) ?? new Map<string, string>();
      sections.set(name, current);
      return;
    }
    const eq = line.indexOf('=');
    if (eq <= 0 || !current)
      throw new TreeInfoError(
        `.treeinfo line ${index + 1} is neither [section] nor key = value: ${JSON.stringify(raw)}`,
      );
    current.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  });
  return sections;
}

export interface TreeImage {
  /** Path relative to the tree root, e.g. images/pxeboot/vmlinuz. */
  path: string;
  /** Lower-case hex sha256 the tree publishes for it. */
  sha256: string;
}

export interface TreeInfo {
  arch: string | undefined;
  release: string | undefined;
  kernel: TreeImage;
  initrd: TreeImage;
}

const IMAGE_PATH_RE = /^[A-Za-z0-9._+-]+(\/[A-Za-z0-9._+-]+)*$/;

function imagePath(value: string | undefined, fallback: string, what: string): string {
  const p = value ?? fallback;
  if (!IMAGE_PATH_RE.test(p) || p.split('/').some((seg) => seg === '..' || seg === '.')) {
    throw new TreeInfoError(
      `.treeinfo ${what} path ${JSON.stringify(p)} must be a relative path of [A-Za-z0-9._+-] segments`,
    );
  }
  return p;
}

/** Reads the kernel/initrd paths and their sha256 sums for `arch` from a .treeinfo text. */
export function parseTreeInfo(text: string, arch: Arch): TreeInfo {
  const ini = parseIni(text);
  const treeArch = ini.get('tree')?.get('arch') ?? ini.get('general')?.get('arch');
  if (treeArch !== undefined && treeArch !== arch) {
    throw new TreeInfoError(`install tree is for arch ${treeArch}, not ${arch}`);
  }
  const images = ini.get(`images-${arch}`);
  const checksums = ini.get('checksums');
  const image = (key: 'kernel' | 'initrd', fallback: string): TreeImage => {
    const p = imagePath(images?.get(key), fallback, key);
    const sum = checksums?.get(p);
    if (sum === undefined) throw new TreeInfoError(`.treeinfo publishes no checksum for ${p}`);
    const m = /^sha256:([0-9a-fA-F]{64})$/.exec(sum);
    if (!m)
      throw new TreeInfoError(
        `.treeinfo checksum for ${p} is ${JSON.stringify(sum)}, not sha256:<64 hex digits>`,
      );
    return { path: p, sha256: m[1]!.toLowerCase() };
  };
  return {
    arch: treeArch,
    release: ini.get('release')?.get('version') ?? ini.get('general')?.get('version'),
    kernel: image('kernel', 'images/pxeboot/vmlinuz'),
    initrd: image('initrd', 'images/pxeboot/initrd.img'),
  };
}
