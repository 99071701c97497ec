import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PROXY_UNIT_NAME, renderProxyUnit } from '../render/proxy-unit.js';
import { findPackageRoot } from '../render/template.js';
import { VmpError } from '../util/errors.js';

/**
 * `service install`: the proxy as a systemd user service of this install.
 * The unit names node and this package's CLI entry file by absolute path, and
 * documentation that this install really has (its README, and its man page
 * once the package lists one).
 */

/** Runs `systemctl --user ARGS`; resolves with its exit code and stderr. Injected for tests. */
export type Systemctl = (args: string[]) => Promise<{ code: number; stderr: string }>;

export async function execaSystemctl(args: string[]): Promise<{ code: number; stderr: string }> {
  const { execa } = await import('execa');
  const r = await execa('systemctl', ['--user', ...args], {
    reject: false,
    timeout: 30_000,
    stdin: 'ignore',
    env: { LC_ALL: 'C' },
  });
  return { code: r.timedOut ? 124 : (r.exitCode ?? 1), stderr: String(r.stderr ?? '') };
}

export interface ThisInstall {
  node: string;
  cli: string;
  documentation: string[];
}

/** node, the CLI entry file and the documentation of the install this code runs from; every path exists. */
export async function thisInstall(
  root: string = findPackageRoot(),
  node: string = process.execPath,
): Promise<ThisInstall> {
  const pkg = JSON.parse(await fs.readFile(path.join(root, 'package.json'), 'utf8')) as {
    bin?: Record<string, string>;
    man?: string | string[];
  };
  const entry = pkg.bin?.['vm-provisioner'];
  if (entry === undefined) throw new VmpError(`${root}/package.json has no bin entry for vm-provisioner`);
  const cli = await fs.realpath(path.resolve(root, entry)).catch(() => {
    throw new VmpError(`the CLI entry file ${path.resolve(root, entry)} is missing: run npm run build`);
  });
  const documentation: string[] = [];
  const manPages = pkg.man === undefined ? [] : Array.isArray(pkg.man) ? pkg.man : [pkg.man];
  // npm links a package's `man` pages into the prefix's man path, so man: resolves only if the package lists one.
  for (const page of manPages) {
    const m = /(?:^|\/)(vm-provisioner)\.([1-8])$/.exec(page);
    if (m && (await exists(path.resolve(root, page)))) documentation.push(`man:${m[1]}(${m[2]})`);
  }
  const readme = path.join(root, 'README.md');
  if (await exists(readme)) documentation.push(readme);
  if (documentation.length === 0)
    throw new VmpError(`no documentation found in ${root} (README.md is missing)`);
  return { node: await fs.realpath(node), cli, documentation };
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/** $XDG_CONFIG_HOME/systemd/user: the user manager's own unit directory. */
export function userUnitDir(configHome: string): string {
  return path.join(configHome, 'systemd', 'user');
}

export interface InstallResult {
  unitFile: string;
  text: string;
  /** `same`: the file already held this unit. */
  written: 'new' | 'replaced' | 'same';
  /** True when systemctl --user reloaded and enabled it; else `howTo` says what to run. */
  enabled: boolean;
  howTo?: string;
  /** Why the user manager could not be used. */
  why?: string;
}

export const ENABLE_COMMAND = `systemctl --user daemon-reload && systemctl --user enable --now ${PROXY_UNIT_NAME}`;

/** The unit text for this install (what --dry-run prints). */
export async function proxyUnitText(connect?: string): Promise<string> {
  return renderProxyUnit({ ...(await thisInstall()), ...(connect !== undefined ? { connect } : {}) });
}

/** Writes the unit (atomically, mode 0644) and enables it when a user systemd answers. */
export async function installProxyService(options: {
  configHome: string;
  connect?: string;
  systemctl?: Systemctl;
  text?: string;
}): Promise<InstallResult> {
  const text = options.text ?? (await proxyUnitText(options.connect));
  const dir = userUnitDir(options.configHome);
  const unitFile = path.join(dir, PROXY_UNIT_NAME);
  const before = await fs.readFile(unitFile, 'utf8').catch(() => undefined);
  const written: InstallResult['written'] =
    before === undefined ? 'new' : before === text ? 'same' : 'replaced';
  if (written !== 'same') {
    await fs.mkdir(dir, { recursive: true, mode: 0o755 });
    const tmp = path.join(dir, `.${PROXY_UNIT_NAME}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await fs.writeFile(tmp, text, { mode: 0o644, flag: 'wx' });
      await fs.rename(tmp, unitFile);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw new VmpError(
        `cannot write ${unitFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  }
  const systemctl = options.systemctl ?? execaSystemctl;
  // A user manager that answers: reload it, then enable and (re)start the proxy.
  const probe = await systemctl(['show-environment']);
  if (probe.code !== 0) {
    return {
      unitFile,
      text,
      written,
      enabled: false,
      howTo: ENABLE_COMMAND,
      why: firstLine(probe.stderr) || `systemctl --user exited with ${probe.code}`,
    };
  }
  for (const args of [['daemon-reload'], ['enable', '--now', PROXY_UNIT_NAME]]) {
    const r = await systemctl(args);
    if (r.code !== 0) {
      throw new VmpError(
        `systemctl --user ${args.join(' ')} failed: ${firstLine(r.stderr) || `exit ${r.code}`}; the unit is at ${unitFile}`,
      );
    }
  }
  return { unitFile, text, written, enabled: true };
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.trim() ?? '';
}
