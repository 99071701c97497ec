import { type ApplyEntry, type ApplyFile, whereIn } from '../spec/apply-file.js';
import { prepareCreate, type CreateFlags, type CreateOptions, type HostResources } from '../spec/build.js';
import type { VmSpec } from '../spec/types.js';
import type { VolumeStore } from '../storage/volumes.js';
import type { CredentialStores } from '../secrets/credentials.js';
import { AlreadyExistsError, CancelledError, InputError, VmpError } from '../util/errors.js';
import { destroyVm, ourDomains } from './lifecycle.js';
import type { ConfigStore, Hypervisor } from './ports.js';
import { planPrefs, PREF_KEYS, prefValue, setPrefs, type PrefChange, type PrefKey } from './prefs.js';
import {
  appVmPaths,
  createFromTemplate,
  importTemplate,
  inheritedFrom,
  planOnTemplate,
} from './templates.js';
import { pathExists } from './undo.js';

/**
 * `apply FILE` (docs/apply.md): makes the templates and app VMs the file
 * declares, changes the settings of those that exist, and with `prune`
 * removes app VMs vm-provisioner made that the file no longer lists. The
 * whole plan is worked out and checked first, reading only; then each step
 * runs through the same service calls as `template import`,
 * `create --template`, `set` and `destroy`.
 */

export interface ApplyDeps {
  hypervisor: Hypervisor;
  configStore: ConfigStore;
  credentials: CredentialStores;
  volumes: VolumeStore;
  afterChange?: (change: PrefChange) => Promise<void>;
  /** Where create journals go (tests); default the state directory's. */
  journalDir?: string;
}

export type ApplyStep =
  | { op: '+'; kind: 'template'; name: string; spec: VmSpec; options: CreateOptions }
  | { op: '+'; kind: 'vm'; name: string; spec: VmSpec }
  | {
      op: '~';
      kind: 'template' | 'vm';
      name: string;
      changes: Partial<Record<PrefKey, unknown>>;
      diff: Array<{ key: PrefKey; from: unknown; to: unknown }>;
    }
  | { op: '-'; kind: 'vm'; name: string };

export interface ApplyPlan {
  steps: ApplyStep[];
  /** App VMs of ours the file does not list, kept because `prune` was not asked for. */
  unlisted: string[];
}

/** Keys a VM's entry sets at creation only: a different value for an existing VM is refused. */
const CREATE_ONLY: Array<{ key: string; of: (spec: VmSpec) => unknown }> = [
  { key: 'template', of: (s) => s.template },
  { key: 'flatpak_packages', of: (s) => s.flatpakPackages },
  { key: 'disk_size_gb', of: (s) => s.diskSizeGb },
  { key: 'virt_type', of: (s) => s.virtType },
  { key: 'arch', of: (s) => s.arch },
  { key: 'vm_dir', of: (s) => s.vmDir },
];

/** An entry's settings as `create`'s flags, so a new VM is built and checked exactly as `create` builds it. */
function flagsOf(entry: ApplyEntry, connect: string): CreateFlags {
  const s = entry.settings;
  const str = (key: string): string | undefined => (s[key] === undefined ? undefined : String(s[key]));
  const flags: CreateFlags = { name: entry.name, connect, yes: true };
  const map: Array<[keyof CreateFlags, string]> = [
    ['memory', 'memory_mb'],
    ['vcpus', 'vcpus'],
    ['disk', 'disk_size_gb'],
    ['label', 'label'],
    ['display', 'display'],
    ['onStop', 'on_stop'],
    ['network', 'network_mode'],
    ['template', 'template'],
    ['vmDir', 'vm_dir'],
    ['virtType', 'virt_type'],
    ['arch', 'arch'],
    ['import', 'import'],
    ['kernel', 'kernel'],
    ['initrd', 'initrd'],
    ['kernelArgs', 'kernel_args'],
  ];
  for (const [flag, key] of map) {
    const value = str(key);
    if (value !== undefined) (flags as Record<string, unknown>)[flag] = value;
  }
  if (s.flatpak_packages !== undefined) flags.flatpak = s.flatpak_packages as string[];
  if (s.auto_launch_apps !== undefined) flags.autostartApp = s.auto_launch_apps as string[];
  return flags;
}

/** Errors about one entry carry its place in the file. */
async function forEntry<T>(file: ApplyFile, entry: ApplyEntry, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (!(err instanceof VmpError)) throw err;
    const Ctor = err.constructor as typeof VmpError;
    throw new Ctor(`${whereIn(file.source, entry.line)}: ${entry.kind} '${entry.name}': ${err.message}`, {
      cause: err,
    });
  }
}

/**
 * The steps that make the connection's VMs what the file says, in the order
 * they run: templates made, templates changed, app VMs made, app VMs
 * changed, app VMs removed. Reads only; any bad entry or refused change
 * throws here, so nothing is touched.
 */
export async function planApply(
  deps: ApplyDeps,
  file: ApplyFile,
  options: { prune: boolean; version: string; host?: HostResources; force?: boolean },
): Promise<ApplyPlan> {
  const { hypervisor, configStore } = deps;
  const ours = await ourDomains(hypervisor);
  const byName = new Map(ours.map((d) => [d.name, d]));
  const allNames = new Set(await hypervisor.listDomains());
  const limits = {
    force: options.force ?? false,
    ...(options.host ? { hostMb: options.host.memoryMb, hostCpus: options.host.cpus } : {}),
  };
  const prepare = {
    store: configStore,
    ...(options.host ? { host: options.host } : {}),
  };
  const steps: ApplyStep[] = [];
  const templateSpecs = new Map<string, VmSpec>();

  const changeStep = async (entry: ApplyEntry): Promise<ApplyStep | undefined> => {
    const changes: Partial<Record<PrefKey, unknown>> = {};
    for (const key of PREF_KEYS) if (entry.settings[key] !== undefined) changes[key] = entry.settings[key];
    const plan = await planPrefs(deps, entry.name, changes, { limits });
    for (const { key, of } of CREATE_ONLY) {
      const wanted = entry.settings[key];
      if (wanted === undefined || JSON.stringify(wanted) === JSON.stringify(of(plan.before))) continue;
      throw new InputError(
        `${key} is ${JSON.stringify(of(plan.before))} and is set only when it is made, not ${JSON.stringify(wanted)}; ` +
          `destroy it and apply again to make it anew`,
      );
    }
    if (plan.changed.length === 0 && plan.writes.newXml === undefined) return undefined;
    return {
      op: '~',
      kind: entry.kind,
      name: entry.name,
      changes,
      diff: plan.changed.map((key) => ({
        key,
        from: prefValue(plan.before, key),
        to: prefValue(plan.after, key),
      })),
    };
  };

  const refuseForeign = (entry: ApplyEntry): void => {
    if (allNames.has(entry.name) && !byName.has(entry.name)) {
      throw new AlreadyExistsError(
        `a domain named '${entry.name}' exists at ${hypervisor.uri} that vm-provisioner did not make; it is never touched`,
      );
    }
  };

  for (const entry of file.templates) {
    await forEntry(file, entry, async () => {
      refuseForeign(entry);
      const existing = byName.get(entry.name);
      if (existing) {
        if (existing.role !== 'template') throw new InputError('it exists as an app VM, not a template');
        templateSpecs.set(entry.name, await configStore.read(entry.name));
        const step = await changeStep(entry);
        if (step) steps.push(step);
        return;
      }
      if (entry.settings.import === undefined) {
        throw new InputError(
          `there is no such template at ${hypervisor.uri} and the entry has no import = "DISK"`,
        );
      }
      const { spec, options: createOptions } = await prepareCreate(
        { ...flagsOf(entry, hypervisor.uri), autostartApp: [] },
        prepare,
      );
      if (await configStore.exists(spec.name)) {
        throw new AlreadyExistsError(`it already has a config file: ${configStore.pathOf(spec.name)}`);
      }
      templateSpecs.set(entry.name, spec);
      steps.push({ op: '+', kind: 'template', name: entry.name, spec, options: createOptions });
    });
  }

  const listed = new Set([...file.templates, ...file.vms].map((e) => e.name));
  for (const entry of file.vms) {
    await forEntry(file, entry, async () => {
      refuseForeign(entry);
      const templateName = entry.settings.template as string;
      const existing = byName.get(entry.name);
      if (existing) {
        if (existing.role === 'template') throw new InputError('it exists as a template, not an app VM');
        const step = await changeStep(entry);
        if (step) steps.push(step);
        return;
      }
      let templateSpec = templateSpecs.get(templateName);
      if (!templateSpec) {
        const template = byName.get(templateName);
        if (!template || template.role !== 'template') {
          throw new InputError(
            `its template '${templateName}' is neither in this file nor a template at ${hypervisor.uri}`,
          );
        }
        templateSpec = await configStore.read(templateName);
        templateSpecs.set(templateName, templateSpec);
      }
      const { spec } = await prepareCreate(flagsOf(entry, hypervisor.uri), {
        ...prepare,
        base: inheritedFrom(templateSpec),
      });
      if (byName.has(templateName)) {
        // The same checks as create --template's, reading only: the template sealed and shut off, the names and files free.
        await planOnTemplate(deps, spec, options.version);
      } else {
        if (await configStore.exists(spec.name)) {
          throw new AlreadyExistsError(`it already has a config file: ${configStore.pathOf(spec.name)}`);
        }
        for (const f of Object.values(appVmPaths(spec))) {
          if (await pathExists(f))
            throw new AlreadyExistsError(`${f} already exists; it is never overwritten`);
        }
      }
      steps.push({ op: '+', kind: 'vm', name: entry.name, spec });
    });
  }

  // Only this user's: a VM whose config file is in this config directory (others on a shared libvirtd are not theirs to prune).
  const unlisted: string[] = [];
  for (const d of ours) {
    // Templates and disposables are never app VMs a file could list.
    if (d.role === undefined && !listed.has(d.name) && (await configStore.exists(d.name)))
      unlisted.push(d.name);
  }
  if (options.prune) for (const name of unlisted) steps.push({ op: '-', kind: 'vm', name });
  return { steps, unlisted: options.prune ? [] : unlisted };
}

const shown = (value: unknown): string =>
  Array.isArray(value) ? `[${value.map((v) => JSON.stringify(v)).join(', ')}]` : String(value);

/** One line per step: `+` made, `~` changed (key old -> new), `-` removed. */
export function formatStep(step: ApplyStep): string {
  switch (step.op) {
    case '+':
      if (step.kind === 'template') {
        return `+ template ${step.name} (import ${step.options.importDisk ?? '?'}, ${step.spec.memoryMb} MiB, ${step.spec.vcpus} vCPUs, network ${step.spec.networkMode})`;
      }
      return (
        `+ vm ${step.name} (on ${step.spec.template ?? '?'}, ${step.spec.memoryMb} MiB, ${step.spec.vcpus} vCPUs, ` +
        `label ${step.spec.label ?? 'gray'}, network ${step.spec.networkMode}` +
        (step.spec.flatpakPackages.length > 0 ? `, flatpaks ${step.spec.flatpakPackages.join(' ')}` : '') +
        ')'
      );
    case '~':
      return `~ ${step.kind} ${step.name}: ${
        step.diff.length > 0
          ? step.diff.map((d) => `${d.key} ${shown(d.from)} -> ${shown(d.to)}`).join(', ')
          : 'its libvirt definition is written again to agree with its config'
      }`;
    case '-':
      return `- vm ${step.name}`;
  }
}

export function formatPlan(plan: ApplyPlan): string {
  const lines = plan.steps.map(formatStep);
  const count = (op: string): number => plan.steps.filter((s) => s.op === op).length;
  lines.push(
    plan.steps.length === 0
      ? 'no changes'
      : `${count('+')} to make, ${count('~')} to change, ${count('-')} to remove`,
  );
  if (plan.unlisted.length > 0) {
    lines.push(`kept, not in the file (apply --prune removes them): ${plan.unlisted.join(', ')}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Runs the steps in order. Each is whole or undone by the service it goes
 * through; a failure stops the run, with the steps before it done (applying
 * the file again carries on from there).
 */
export async function runApply(
  deps: ApplyDeps,
  plan: ApplyPlan,
  options: {
    version: string;
    force?: boolean;
    host?: HostResources;
    onDone?: (step: ApplyStep, note?: string) => void;
    /** Ctrl+C: a make in progress is undone (as create's is); a change or removal in progress is finished; no further step starts. */
    signal?: AbortSignal;
  },
): Promise<void> {
  const limits = {
    force: options.force ?? false,
    ...(options.host ? { hostMb: options.host.memoryMb, hostCpus: options.host.cpus } : {}),
  };
  const signal = options.signal ? { signal: options.signal } : {};
  let done = 0;
  for (const step of plan.steps) {
    if (options.signal?.aborted) {
      throw new CancelledError(
        `apply interrupted after ${done} of ${plan.steps.length} steps; apply the file again to carry on`,
      );
    }
    let note: string | undefined;
    if (step.op === '+' && step.kind === 'template') {
      await importTemplate(deps, step.spec, {
        importDisk: step.options.importDisk!,
        ...(step.options.importBoot ? { boot: step.options.importBoot } : {}),
        version: options.version,
        ...signal,
      });
    } else if (step.op === '+') {
      const made = await createFromTemplate(deps, step.spec, {
        version: options.version,
        ...(deps.journalDir ? { journalDir: deps.journalDir } : {}),
        ...signal,
      });
      if (made.pendingFlatpaks.length > 0)
        note = `installs ${made.pendingFlatpaks.join(', ')} at its first boot`;
    } else if (step.op === '~') {
      const result = await setPrefs(deps, step.name, step.changes, { limits });
      note = result.notes.join('; ') || undefined;
    } else {
      await destroyVm(
        {
          hypervisor: deps.hypervisor,
          configStore: deps.configStore,
          secretStores: [deps.credentials.passwords, deps.credentials.agentSecrets],
        },
        step.name,
      );
    }
    done += 1;
    options.onDone?.(step, note);
  }
}
