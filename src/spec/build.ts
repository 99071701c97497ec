import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConfigStore } from '../service/ports.js';
import { FileTooLargeError, NotRegularFileError, readRegularFileBounded } from '../util/bounded-read.js';
import { InputError } from '../util/errors.js';
import {
  DEFAULT_CONNECT_URI,
  defaultSpec,
  defaultVmDir,
  flatpakLaunchCommand,
  NO_INSTALLER_MIN_MEMORY_MB,
} from './defaults.js';
import { type DefaultsFileText, parseDefaults, readDefaultsFile, recheckDefault } from './defaults-file.js';
import { autoName, chooseFreeName } from './naming.js';
import { describeSource, parseSpecFields } from './toml.js';
import type { VmSpec } from './types.js';
import {
  MAX_LIST_LENGTH,
  type ResourceLimits,
  singleValue,
  validateArch,
  validateAutostartCommand,
  validateConnectUri,
  validateDiskGb,
  validateFedoraRelease,
  validateFlatpakId,
  validateGraphicsBackend,
  validateHostPath,
  validateKernelArgs,
  validateList,
  validateLocationUrl,
  validateMemoryMb,
  validateNetworkMode,
  validateOnStop,
  validateLabel,
  validateDisplay,
  validatePackageSpec,
  validateSpec,
  validateVcpus,
  validateVirtType,
  validateVmName,
} from './validate.js';

/**
 * Turns `create`'s flags and an optional --config TOML file into one
 * validated VmSpec: built-in defaults < the user's defaults.toml < (an app
 * VM's template) < config file < flags. Lists given as flags
 * replace the file's list rather than extend it.
 */

/** `create`'s flags as yargs delivers them (camel-cased). Values are untrusted. */
export interface CreateFlags {
  name?: string | string[];
  system?: string[];
  flatpak?: string[];
  memory?: string | number | Array<string | number>;
  vcpus?: string | number | Array<string | number>;
  disk?: string | number | Array<string | number>;
  autostartApp?: string | string[];
  fedoraRelease?: string | number | Array<string | number>;
  arch?: string | string[];
  virtType?: string | string[];
  network?: string | string[];
  /** `save` or `shutdown`: what `stop` does by default (the spec's on_stop). */
  onStop?: string | string[];
  /** One of Qubes' eight trust colours (the spec's label). */
  label?: string | string[];
  /** `spice` or `seamless` (the spec's display). */
  display?: string | string[];
  graphics?: string | string[];
  /** Directory for the VM's disk image (the spec's vm_dir). */
  vmDir?: string | string[];
  /** With --dry-run: directory that receives the kickstart, domain XML and plan. */
  output?: string | string[];
  connect?: string | string[];
  import?: string | string[];
  /** An app VM on this template (docs/templates.md): an overlay of its disk, no install, no copy. */
  template?: string | string[];
  /** With --import: boot this kernel (copied into the VM's directory) instead of the disk's boot loader. */
  kernel?: string | string[];
  initrd?: string | string[];
  kernelArgs?: string | string[];
  location?: string | string[];
  config?: string | string[];
  force?: boolean;
  yes?: boolean;
  dryRun?: boolean;
  verbose?: boolean;
}

/** What `create` does besides the spec itself. */
export interface CreateOptions {
  /** The connection really used (--connect, LIBVIRT_DEFAULT_URI, defaults.toml, qemu:///system). */
  connectUri: string;
  /** Where connectUri came from, as the plan shows it. */
  connectSource?: string;
  /** Where the spec's template came from, when it came from the defaults file (its path, for the plan). */
  templateSource?: string;
  /** Absolute path of an existing disk image to boot instead of installing. */
  importDisk?: string;
  /** With importDisk: direct kernel boot from copies of these files (absolute paths), with this command line. */
  importBoot?: { kernel: string; initrd: string; kernelArgs: string };
  /** Install tree URL instead of the release's default mirror. */
  location?: string;
  /** The --config file as given, if any. */
  configFile?: string;
  /** --dry-run only: where to write the kickstart, domain XML and plan (absolute). */
  outputDir?: string;
  force: boolean;
  yes: boolean;
  dryRun: boolean;
  verbose: boolean;
}

export interface HostResources {
  memoryMb: number;
  cpus: number;
}

/** This host's RAM and logical CPUs: the default maximums for a VM. */
export function hostResources(): HostResources {
  return { memoryMb: Math.floor(os.totalmem() / (1024 * 1024)), cpus: os.cpus().length || 1 };
}

export interface BuildOptions {
  /** Name of the --config file, for error messages. */
  configFile?: string;
  /** Defaults to this host's; tests pass fixed numbers. */
  host?: HostResources;
  /** Clock for `app-vm-<timestamp>` names. */
  now?: Date;
  /** Settings that stand in for the defaults: an app VM takes its template's. */
  base?: Partial<VmSpec>;
  /** The user's defaults file (defaults-file.ts): above the built-in defaults, below everything else. */
  defaults?: DefaultsFileText;
  /** The connection in use (resolved); decides the default VM directory. Default: --connect or qemu:///system. */
  connectUri?: string;
  /** False for templates: the defaults file's `template` names what app VMs are made on, not a template's base. */
  templateFromDefaults?: boolean;
}

export interface BuiltSpec {
  spec: VmSpec;
  /** True when neither the flags nor the config file named the VM. */
  nameGenerated: boolean;
  /** The defaults file's path when the spec's template came from it. */
  templateFromDefaults?: string;
}

function limitsFor(flags: CreateFlags, host: HostResources): ResourceLimits {
  return { force: flags.force === true, hostMb: host.memoryMb, hostCpus: host.cpus };
}

function dedupe<T>(values: T[]): T[] {
  return [...new Set(values)];
}

function flagList(
  flag: string,
  value: unknown,
  max: number,
  check: (v: unknown) => string,
): string[] | undefined {
  if (value === undefined) return undefined;
  const list = Array.isArray(value) ? value : [value];
  return dedupe(validateList(`--${flag} list`, list, max, check));
}

function flagValue<T>(flag: string, value: unknown, check: (v: unknown) => T): T | undefined {
  if (value === undefined) return undefined;
  return check(singleValue(flag, value));
}

/** Like buildSpec, and says whether the name was generated (and so may take a numeric suffix). */
export function buildSpecWithMeta(
  flags: CreateFlags,
  configFileText?: string,
  options: BuildOptions = {},
): BuiltSpec {
  const host = options.host ?? hostResources();
  const limits = limitsFor(flags, host);
  const connectUri =
    options.connectUri ?? flagValue('connect', flags.connect, validateConnectUri) ?? DEFAULT_CONNECT_URI;
  // The installer's memory floor is checked once the whole spec is known: the file may name a template.
  const userDefaults =
    options.defaults === undefined
      ? undefined
      : parseDefaults(options.defaults, { ...limits, minMemoryMb: NO_INSTALLER_MIN_MEMORY_MB });
  const fromFile =
    configFileText === undefined
      ? {}
      : parseSpecFields(configFileText, options.configFile ?? '--config', {
          ...limits,
          minMemoryMb: NO_INSTALLER_MIN_MEMORY_MB,
        });
  // `--no-template` (false) says: no template, not even the defaults file's.
  const noTemplate = (flags.template as unknown) === false;
  const explicitTemplate = noTemplate
    ? undefined
    : (flagValue('template', flags.template, validateVmName) ?? fromFile.template);
  // The defaults file's template is for a plain `create`: not for an import, an install from a tree, a template.
  const defaultTemplate =
    explicitTemplate === undefined &&
    !noTemplate &&
    options.templateFromDefaults !== false &&
    flags.import === undefined &&
    flags.location === undefined &&
    flags.kernel === undefined
      ? userDefaults?.spec.template
      : undefined;
  const template = explicitTemplate ?? defaultTemplate;
  const noInstaller = flags.import !== undefined || template !== undefined;
  const memoryLimits = noInstaller ? { ...limits, minMemoryMb: NO_INSTALLER_MIN_MEMORY_MB } : limits;

  const systemPackages =
    flagList('system', flags.system, MAX_LIST_LENGTH.systemPackages, validatePackageSpec) ??
    fromFile.systemPackages ??
    [];
  const flatpakPackages =
    flagList('flatpak', flags.flatpak, MAX_LIST_LENGTH.flatpakPackages, validateFlatpakId) ??
    fromFile.flatpakPackages ??
    [];
  const autoLaunchApps =
    flagList('autostart-app', flags.autostartApp, MAX_LIST_LENGTH.autoLaunchApps, validateAutostartCommand) ??
    fromFile.autoLaunchApps ??
    flatpakPackages.map(flatpakLaunchCommand);

  const givenName = flagValue('name', flags.name, validateVmName) ?? fromFile.name;
  const name = givenName ?? autoName({ flatpakPackages, systemPackages }, options.now);

  const vmDirFlag = flagValue('vm-dir', flags.vmDir, (v) =>
    validateHostPath('--vm-dir directory', typeof v === 'string' ? path.resolve(v) : v),
  );

  const { template: _fromDefaults, ...defaultSettings } = userDefaults?.spec ?? {};
  const spec = defaultSpec(name, {
    vmDir: defaultVmDir(connectUri),
    ...defaultSettings,
    ...options.base,
    ...fromFile,
    name,
    systemPackages,
    flatpakPackages,
    autoLaunchApps,
  });
  const overrides: Partial<VmSpec> = {
    memoryMb: flagValue('memory', flags.memory, (v) => validateMemoryMb(v, memoryLimits)),
    vcpus: flagValue('vcpus', flags.vcpus, (v) => validateVcpus(v, limits)),
    diskSizeGb: flagValue('disk', flags.disk, (v) => validateDiskGb(v, limits)),
    fedoraRelease: flagValue('fedora-release', flags.fedoraRelease, validateFedoraRelease),
    arch: flagValue('arch', flags.arch, validateArch),
    virtType: flagValue('virt-type', flags.virtType, validateVirtType),
    networkMode: flagValue('network', flags.network, validateNetworkMode),
    onStop: flagValue('on-stop', flags.onStop, validateOnStop),
    label: flagValue('label', flags.label, validateLabel),
    display: flagValue('display', flags.display, validateDisplay),
    graphicsBackend: flagValue('graphics', flags.graphics, validateGraphicsBackend),
    vmDir: vmDirFlag,
    template,
  };
  for (const [key, value] of Object.entries(overrides)) {
    if (value !== undefined) (spec as unknown as Record<string, unknown>)[key] = value;
  }
  if (template === undefined) delete spec.template;
  // The defaults file's memory was checked with the lowest floor; if it is what this VM gets,
  // the installer's floor applies too, and the message names the file's line.
  if (
    userDefaults?.spec.memoryMb !== undefined &&
    spec.memoryMb === userDefaults.spec.memoryMb &&
    flags.memory === undefined &&
    fromFile.memoryMb === undefined &&
    options.base?.memoryMb === undefined
  ) {
    recheckDefault(userDefaults, 'memory_mb', () => validateMemoryMb(spec.memoryMb, memoryLimits));
  }
  // Every field again, with the host limits: catches config-file defaults
  // that only fail in combination (and is cheap insurance against a missed flag).
  return {
    spec: validateSpec(spec, memoryLimits),
    nameGenerated: givenName === undefined,
    ...(defaultTemplate !== undefined && userDefaults ? { templateFromDefaults: userDefaults.source } : {}),
  };
}

/** defaults < --config file text < flags, every field validated. Throws InputError on bad input. */
export function buildSpec(flags: CreateFlags, configFileText?: string, options: BuildOptions = {}): VmSpec {
  return buildSpecWithMeta(flags, configFileText, options).spec;
}

/** The non-spec flags of `create`, validated. Does not touch the file system. */
export function buildCreateOptions(flags: CreateFlags, cwd: string = process.cwd()): CreateOptions {
  const connectUri = flagValue('connect', flags.connect, validateConnectUri) ?? DEFAULT_CONNECT_URI;
  const importDisk = flagValue('import', flags.import, (v) =>
    validateHostPath('--import disk', typeof v === 'string' && v !== '' ? path.resolve(cwd, v) : v),
  );
  const location = flagValue('location', flags.location, validateLocationUrl);
  if (importDisk !== undefined && location !== undefined) {
    throw new InputError('--import and --location exclude each other: import a disk, or install from a tree');
  }
  const importBoot = buildImportBoot(flags, importDisk !== undefined, cwd);
  const configFile = flagValue('config', flags.config, (v) => {
    if (typeof v !== 'string' || v === '') throw new InputError('option --config needs a file name');
    return v;
  });
  const outputDir = flagValue('output', flags.output, (v) =>
    validateHostPath('--output directory', typeof v === 'string' && v !== '' ? path.resolve(cwd, v) : v),
  );
  if (outputDir !== undefined && flags.dryRun !== true) {
    throw new InputError('--output goes with --dry-run: it names where the dry run writes its files');
  }
  return {
    connectUri,
    ...(outputDir !== undefined ? { outputDir } : {}),
    ...(importDisk !== undefined ? { importDisk } : {}),
    ...(importBoot !== undefined ? { importBoot } : {}),
    ...(location !== undefined ? { location } : {}),
    ...(configFile !== undefined ? { configFile } : {}),
    force: flags.force === true,
    yes: flags.yes === true,
    dryRun: flags.dryRun === true,
    verbose: flags.verbose === true,
  };
}

/** --kernel, --initrd and --kernel-args, as virt-install's --boot kernel=,initrd=,kernel_args=. */
function buildImportBoot(
  flags: CreateFlags,
  importing: boolean,
  cwd: string,
): CreateOptions['importBoot'] | undefined {
  const file = (flag: string, value: unknown): string | undefined =>
    flagValue(flag, value, (v) =>
      validateHostPath(`--${flag} file`, typeof v === 'string' && v !== '' ? path.resolve(cwd, v) : v),
    );
  const kernel = file('kernel', flags.kernel);
  const initrd = file('initrd', flags.initrd);
  const kernelArgs = flagValue('kernel-args', flags.kernelArgs, validateKernelArgs);
  if (kernel === undefined && initrd === undefined && kernelArgs === undefined) return undefined;
  if (!importing) {
    throw new InputError(
      '--kernel, --initrd and --kernel-args go with --import: an installed VM boots its own kernel',
    );
  }
  if (kernel === undefined || initrd === undefined) {
    throw new InputError('--kernel and --initrd go together: give both files, or neither');
  }
  return { kernel, initrd, kernelArgs: kernelArgs ?? '' };
}

/** A --config file larger than this is refused: a spec is a few hundred bytes. */
export const MAX_CONFIG_FILE_BYTES = 256 * 1024;

/**
 * Reads a --config file, refusing missing, unreadable, non-regular (FIFO,
 * device, directory), oversized or non-UTF-8 files with InputError. At most
 * MAX_CONFIG_FILE_BYTES + 1 bytes are ever read, whatever size stat reports.
 */
export async function readConfigFile(file: string): Promise<string> {
  const shown = describeSource(file);
  let bytes: Buffer;
  try {
    bytes = await readRegularFileBounded(file, MAX_CONFIG_FILE_BYTES);
  } catch (err) {
    if (err instanceof NotRegularFileError) {
      throw new InputError(`config file ${shown} is not a regular file: give a TOML file`);
    }
    if (err instanceof FileTooLargeError) {
      throw new InputError(
        `config file ${shown} is larger than ${MAX_CONFIG_FILE_BYTES} bytes: a config file may hold at most ${MAX_CONFIG_FILE_BYTES} bytes`,
      );
    }
    throw new InputError(
      `cannot read config file ${shown}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  const text = bytes.toString('utf8');
  if (Buffer.from(text, 'utf8').compare(bytes) !== 0) {
    throw new InputError(`config file ${shown} is not UTF-8 text`);
  }
  return text;
}

export interface PreparedCreate {
  spec: VmSpec;
  options: CreateOptions;
  nameGenerated: boolean;
}

/** Where create's connection came from: resolved by the CLI (cli/hypervisor.ts), which reads the environment. */
export interface ResolvedConnection {
  uri: string;
  /** As the plan shows it. */
  shown: string;
}

export interface PrepareDeps {
  store: Pick<ConfigStore, 'exists'>;
  /** Extra "is this name in use" check, e.g. an existing libvirt domain. */
  isTaken?: (name: string) => Promise<boolean>;
  host?: HostResources;
  now?: Date;
  cwd?: string;
  base?: Partial<VmSpec>;
  /** The user's defaults file; undefined = read $XDG_CONFIG_HOME/vm-provisioner/defaults.toml, null = none. */
  defaults?: DefaultsFileText | null;
  /** The connection really used; default: --connect, else qemu:///system (no environment). */
  connection?: ResolvedConnection;
  /** See BuildOptions.templateFromDefaults. */
  templateFromDefaults?: boolean;
}

/**
 * Everything `create` decides before touching libvirt: options, the --config
 * file, the spec, a free name, the --import disk's existence. Reads only.
 */
export async function prepareCreate(flags: CreateFlags, deps: PrepareDeps): Promise<PreparedCreate> {
  const built0 = buildCreateOptions(flags, deps.cwd);
  const options: CreateOptions = deps.connection
    ? { ...built0, connectUri: deps.connection.uri, connectSource: deps.connection.shown }
    : built0;
  const defaults = deps.defaults === undefined ? await readDefaultsFile() : (deps.defaults ?? undefined);
  const configText = options.configFile === undefined ? undefined : await readConfigFile(options.configFile);
  const built = buildSpecWithMeta(flags, configText, {
    ...(options.configFile !== undefined ? { configFile: options.configFile } : {}),
    ...(deps.host ? { host: deps.host } : {}),
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.base ? { base: deps.base } : {}),
    ...(defaults ? { defaults } : {}),
    ...(deps.templateFromDefaults === false ? { templateFromDefaults: false } : {}),
    connectUri: options.connectUri,
  });
  if (built.templateFromDefaults !== undefined) options.templateSource = built.templateFromDefaults;
  for (const [what, file] of Object.entries({
    '--import disk': options.importDisk,
    '--kernel file': options.importBoot?.kernel,
    '--initrd file': options.importBoot?.initrd,
  })) {
    if (file === undefined) continue;
    const stat = await fs.stat(file).catch(() => undefined);
    if (!stat?.isFile()) throw new InputError(`${what} ${file} is not an existing file`);
  }
  const isTaken = async (name: string): Promise<boolean> =>
    (await deps.store.exists(name)) || (deps.isTaken ? await deps.isTaken(name) : false);
  const name = await chooseFreeName(built.spec.name, built.nameGenerated, isTaken);
  return { spec: { ...built.spec, name }, options, nameGenerated: built.nameGenerated };
}
