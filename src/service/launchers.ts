import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  appArgv,
  appDisplayName,
  appSlug,
  ICON_MARKER,
  LAUNCHER_ID,
  LAUNCHER_MARKER_KEY,
  renderLauncher,
  renderLauncherIcon,
} from '../render/desktop-entry.js';
import { FileConfigStore } from '../spec/store.js';
import { DEFAULT_LABEL } from '../spec/validate.js';
import { ourDomains } from './lifecycle.js';
import type { ConfigStore, Hypervisor } from './ports.js';

/**
 * `launchers sync` (docs/launchers.md): one .desktop file per auto-launched
 * app of each VM in $XDG_DATA_HOME/applications, with an icon in its label
 * colour in $XDG_DATA_HOME/icons/hicolor/scalable/apps; files of VMs that are
 * gone are removed. Only files that carry our marker are ever changed or
 * removed. `create`, `destroy` and label changes call syncLaunchers().
 */

export interface LauncherOptions {
  /** Where the VMs' configs are (default: the user's). */
  configStore?: Pick<ConfigStore, 'list'>;
  /** $XDG_DATA_HOME (default: from the environment, else ~/.local/share). */
  dataHome?: string;
  /** How launchers run this install's CLI (default: this process's node and this install's main script). */
  cli?: { node: string; script: string };
  /** With it, templates (which nobody runs) get no launchers. */
  hypervisor?: Hypervisor;
}

export interface SyncReport {
  /** Files written because they were new or different. */
  written: string[];
  unchanged: number;
  removed: string[];
  /** VMs whose config could not be read (their launchers are kept) or whose apps could not be rendered. */
  problems: string[];
}

export function dataHome(env: NodeJS.ProcessEnv = process.env): string {
  const value = env.XDG_DATA_HOME;
  return value && path.isAbsolute(value) ? value : path.join(os.homedir(), '.local', 'share');
}

export function launcherDirs(home: string): { applications: string; icons: string } {
  return {
    applications: path.join(home, 'applications'),
    icons: path.join(home, 'icons', 'hicolor', 'scalable', 'apps'),
  };
}

/** This install's CLI: the node running us and src/cli/main.js next to this module's build output. */
export function thisCli(): { node: string; script: string } {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return { node: process.execPath, script: path.resolve(here, '..', 'cli', 'main.js') };
}

interface Wanted {
  file: string;
  content: string;
}

async function readIfOurs(file: string, marker: string): Promise<string | undefined> {
  try {
    const st = await fs.lstat(file);
    if (!st.isFile()) return undefined;
    const text = await fs.readFile(file, 'utf8');
    return text.includes(marker) ? text : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function writeAtomic(file: string, content: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, content, { mode: 0o644 });
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** Brings the launcher files in line with the VMs' configs; idempotent. */
export async function syncLaunchers(options: LauncherOptions = {}): Promise<SyncReport> {
  const store = options.configStore ?? new FileConfigStore();
  const dirs = launcherDirs(options.dataHome ?? dataHome());
  const cli = options.cli ?? thisCli();
  const templates = options.hypervisor
    ? new Set((await ourDomains(options.hypervisor)).filter((d) => d.role !== undefined).map((d) => d.name))
    : new Set<string>();
  const report: SyncReport = { written: [], unchanged: 0, removed: [], problems: [] };
  const wanted = new Map<string, Wanted>();
  /** VMs whose files stay as they are: their config exists but could not be read. */
  const keep = new Set<string>();
  for (const entry of await store.list()) {
    if (!entry.spec) {
      keep.add(entry.name);
      report.problems.push(
        `${entry.name}: config not readable (${entry.error ?? 'unknown error'}); its launchers are kept`,
      );
      continue;
    }
    if (templates.has(entry.name)) continue;
    const spec = entry.spec;
    const label = spec.label ?? DEFAULT_LABEL;
    const used = new Set<string>();
    for (const command of spec.autoLaunchApps) {
      try {
        const base = appSlug(appDisplayName(appArgv(command)));
        let slug = base;
        for (let n = 2; used.has(slug); n++) slug = `${base.slice(0, 36)}-${n}`;
        used.add(slug);
        const iconFile = path.join(dirs.icons, `vm-provisioner-${spec.name}_${slug}.svg`);
        const launcher = renderLauncher({ vm: spec.name, label, command, cli, iconPath: iconFile }, slug);
        wanted.set(path.join(dirs.applications, `${launcher.id}.desktop`), {
          file: path.join(dirs.applications, `${launcher.id}.desktop`),
          content: launcher.desktopEntry,
        });
        wanted.set(iconFile, { file: iconFile, content: renderLauncherIcon(label, launcher.name) });
      } catch (err) {
        report.problems.push(`${spec.name}: app ${JSON.stringify(command)}: ${(err as Error).message}`);
      }
    }
  }
  await fs.mkdir(dirs.applications, { recursive: true });
  await fs.mkdir(dirs.icons, { recursive: true });
  for (const { file, content } of wanted.values()) {
    const marker = file.endsWith('.svg') ? ICON_MARKER : LAUNCHER_MARKER_KEY;
    const existing = await readIfOurs(file, marker);
    if (existing === content) {
      report.unchanged++;
      continue;
    }
    // A file of that name that is not ours (no marker) is never overwritten.
    if (existing === undefined && (await fs.lstat(file).catch(() => undefined))) {
      report.problems.push(`${file} exists and was not made by vm-provisioner; left alone`);
      continue;
    }
    await writeAtomic(file, content);
    report.written.push(file);
  }
  for (const [dir, ext, marker] of [
    [dirs.applications, '.desktop', LAUNCHER_MARKER_KEY],
    [dirs.icons, '.svg', ICON_MARKER],
  ] as const) {
    for (const name of await fs.readdir(dir)) {
      if (!name.endsWith(ext)) continue;
      const id = LAUNCHER_ID.exec(name.slice(0, -ext.length));
      const file = path.join(dir, name);
      if (!id || wanted.has(file) || keep.has(id[1]!)) continue;
      if ((await readIfOurs(file, marker)) === undefined) continue;
      await fs.rm(file, { force: true });
      report.removed.push(file);
    }
  }
  return report;
}

/** One line for create/destroy/label changes, which sync best effort and never fail for it. */
export async function syncLaunchersQuietly(options: LauncherOptions = {}): Promise<string> {
  try {
    const r = await syncLaunchers(options);
    const problems = r.problems.length > 0 ? `; ${r.problems.join('; ')}` : '';
    return `launchers: ${r.written.length} written, ${r.removed.length} removed${problems}`;
  } catch (err) {
    return `launchers: not synced (${(err as Error).message}); run vm-provisioner launchers sync`;
  }
}
