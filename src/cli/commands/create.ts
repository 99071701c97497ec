import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { followFile } from '../../install/index.js';
import { openHypervisor } from '../../libvirt/index.js';
import { testStopPoint } from '../../service/journal.js';
import { createFromDisk } from '../../service/lifecycle.js';
import { keyringCredentialStores } from '../../secrets/credentials.js';
import { createVm, DEFAULT_INSTALL_TIMEOUT_MINUTES } from '../../service/create.js';
import { checkNetworkForCreate } from '../../service/networks.js';
import type { Hypervisor } from '../../service/ports.js';
import { prepareCreate, type CreateFlags, type CreateOptions } from '../../spec/build.js';
import type { VmSpec } from '../../spec/types.js';
import { InputError } from '../../util/errors.js';
import { packageVersion } from '../../util/package-info.js';
import { CreateProgress } from '../create-progress.js';
import { createOnTemplate } from '../create-on-template.js';
import { type Connection, resolveConnectionFor } from '../hypervisor.js';
import {
  DEFAULT_DISK_GB,
  DEFAULT_MEMORY_MB,
  DEFAULT_VCPUS,
  MIN_DISK_GB,
  MIN_MEMORY_MB,
} from '../../spec/defaults.js';
import { formatPlan, tildePath } from '../../spec/plan.js';
import { DEFAULT_FEDORA_RELEASE, FEDORA_RELEASES } from '../../spec/releases.js';
import { syncLaunchersQuietly } from '../../service/launchers.js';
import { FileConfigStore } from '../../spec/store.js';
import { sealTemplate } from '../../service/templates.js';
import { DEFAULT_DISPLAY, DEFAULT_LABEL, LABELS } from '../../spec/validate.js';
import { LibvirtVolumeStore } from '../../storage/volumes.js';
import {
  loadAgentBundle,
  renderDryRun,
  renderImportDryRun,
  writeDryRunFiles,
} from '../../service/artifacts.js';

/**
 * `create`: parse and validate every flag into a VmSpec and CreateOptions
 * (src/spec/build.ts). Numbers are typed as numbers for --help, but reach the
 * validators as typed (src/cli/raw-numbers.ts), so "4g" or "-1" is refused
 * with a precise message instead of becoming NaN.
 */
export const createCommand: CommandModule<object, CreateFlags> = {
  command: 'create',
  describe: 'Create an app VM: Fedora + i3, the given packages and Flatpaks, auto-launched',
  builder: (yargs: Argv<object>) =>
    yargs
      .usage('$0 create [--flatpak ID...] [--system PKG...] [options]')
      .option('name', { type: 'string', describe: 'VM name (default: from the first Flatpak or package)' })
      .option('system', { type: 'string', array: true, describe: 'dnf packages, @groups or @^environments' })
      .option('flatpak', { type: 'string', array: true, describe: 'Flatpak application IDs from Flathub' })
      .option('autostart-app', {
        type: 'string',
        describe: 'command to launch at login, repeatable (default: flatpak run ID for each --flatpak)',
      })
      .option('memory', {
        type: 'number',
        describe: `RAM in MiB (${MIN_MEMORY_MB} to the host's RAM)`,
        defaultDescription: String(DEFAULT_MEMORY_MB),
      })
      .option('vcpus', {
        type: 'number',
        describe: "virtual CPUs (1 to the host's CPUs)",
        defaultDescription: String(DEFAULT_VCPUS),
      })
      .option('disk', {
        type: 'number',
        describe: `disk size in GB (at least ${MIN_DISK_GB})`,
        defaultDescription: String(DEFAULT_DISK_GB),
      })
      .option('fedora-release', {
        type: 'number',
        describe: `Fedora release: ${FEDORA_RELEASES.join(', ')}`,
        defaultDescription: String(DEFAULT_FEDORA_RELEASE),
      })
      .option('arch', { type: 'string', describe: 'x86_64 or aarch64', defaultDescription: 'x86_64' })
      .option('virt-type', { type: 'string', describe: 'kvm or qemu (emulation)', defaultDescription: 'kvm' })
      .option('network', {
        type: 'string',
        describe: 'default (libvirt NAT), user (QEMU user-mode) or none',
        defaultDescription: 'default',
      })
      .option('on-stop', {
        type: 'string',
        describe: 'what stop does by default: save (keep the memory, start resumes) or shutdown',
        defaultDescription: 'shutdown',
      })
      .option('label', {
        type: 'string',
        describe: `trust colour of its windows and launchers: ${LABELS.join(', ')}`,
        defaultDescription: DEFAULT_LABEL,
      })
      .option('display', {
        type: 'string',
        describe:
          'how start shows it: spice (the whole desktop in a viewer) or seamless (each app window on the host)',
        defaultDescription: DEFAULT_DISPLAY,
      })
      .option('graphics', { type: 'string', describe: 'virtio or qxl', defaultDescription: 'virtio' })
      .option('config', { type: 'string', describe: 'TOML spec file; flags override its keys' })
      .option('vm-dir', {
        type: 'string',
        describe: "directory for the VM's disk image",
        defaultDescription: '/var/lib/libvirt/images',
      })
      .option('output', {
        type: 'string',
        describe: 'with --dry-run: write the kickstart, domain XML and plan to this directory',
      })
      .option('import', { type: 'string', describe: 'boot this existing disk image instead of installing' })
      .option('template', {
        type: 'string',
        describe:
          "make the VM on this template: an overlay of its disk, no install (see 'template list'); " +
          '--no-template: install, even if defaults.toml names a template',
      })
      .option('kernel', {
        type: 'string',
        describe: 'with --import: boot this kernel directly (copied into --vm-dir); needs --initrd',
      })
      .option('initrd', { type: 'string', describe: 'with --import and --kernel: the initrd to boot with' })
      .option('kernel-args', {
        type: 'string',
        describe: "with --kernel: the kernel command line, e.g. 'root=/dev/vda rw console=ttyS0'",
      })
      .option('location', { type: 'string', describe: 'install tree URL instead of the release mirror' })
      .option('force', { type: 'boolean', describe: "allow more memory or vCPUs than the host's" })
      .option('yes', { alias: 'y', type: 'boolean', describe: 'do not ask for confirmation' })
      .option('dry-run', { type: 'boolean', describe: 'print the plan and exit; create and write nothing' })
      .option('install-timeout', {
        type: 'number',
        describe: 'give up on the unattended install after this many minutes',
        defaultDescription: String(DEFAULT_INSTALL_TIMEOUT_MINUTES),
      })
      .option('verbose', { type: 'boolean', describe: "also show the installer's console log" })
      .example('$0 create --flatpak org.mozilla.firefox', 'VM "org-mozilla-firefox-vm" running Firefox')
      .example('$0 create --system git gcc --flatpak com.visualstudio.code --memory 8192 --dry-run', '')
      .strictOptions() as unknown as Argv<CreateFlags>,
  handler: async (argv: ArgumentsCamelCase<CreateFlags & { installTimeout?: string | string[] }>) => {
    const store = new FileConfigStore();
    const installTimeoutMinutes = parseInstallTimeout(argv.installTimeout);
    // As virsh: --connect, else LIBVIRT_DEFAULT_URI; then the defaults file's connect, else qemu:///system.
    const connection = await resolveConnectionFor(argv.connect);
    // Validation first, touching nothing: bad input and a missing --yes fail without libvirt.
    // It also says whether this is an app VM on a template (--template, or the defaults file's).
    const checked = await prepareCreate(argv, { store, connection });
    if (checked.spec.template !== undefined) {
      await createOnTemplate(argv, store, onInterrupt, connection);
      return;
    }
    if (argv.import !== undefined && argv.dryRun !== true) {
      await importVm(argv, store, connection);
      return;
    }
    let hypervisor: Hypervisor | undefined;
    const connect = async (): Promise<Hypervisor> =>
      (hypervisor ??= await openHypervisor({ uri: connection.uri, timeouts: CREATE_TIMEOUTS }));
    try {
      if (checked.options.dryRun) {
        const { spec, options } = checked;
        const plan = formatPlan(spec, options, tildePath(store.pathOf(spec.name)));
        process.stdout.write(plan);
        const { files, note } =
          options.importDisk !== undefined
            ? renderImportDryRun(spec, options)
            : await renderDryRun(spec, options);
        process.stdout.write(`${note}\n`);
        if (options.outputDir !== undefined) {
          const written = await writeDryRunFiles(options.outputDir, spec.name, { ...files, plan });
          for (const file of written) process.stdout.write(`wrote ${file}\n`);
        }
        return;
      }
      const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
      if (!checked.options.yes && !interactive) {
        throw new InputError('create needs confirmation: pass --yes when not running on a terminal');
      }
      // Again, so that a generated name also steps around domains libvirt already has.
      const { spec, options } = await prepareCreate(argv, {
        store,
        connection,
        isTaken: async (name: string) => (await connect()).exists(name),
      });
      const plan = formatPlan(spec, options, tildePath(store.pathOf(spec.name)));
      process.stdout.write(plan);
      await checkNetworkForCreate(options.connectUri, spec.networkMode);
      if (!options.yes && !(await confirmPlan(spec.name))) {
        process.stdout.write('Nothing was created.\n');
        return;
      }
      const hv = await connect();
      const agentBundle = await loadAgentBundle();
      await runCreate(hv, store, spec, options, agentBundle, installTimeoutMinutes);
    } finally {
      await hypervisor?.close();
    }
  },
};

/**
 * Defining and starting a domain has taken libvirtd up to 3 minutes on a busy
 * host (it re-probes QEMU); an abandoned define would leave a domain behind
 * after the rollback, so create waits longer than the other commands.
 */
const CREATE_TIMEOUTS = { call: 300_000, save: 300_000 };

/** Minutes, 1 to 24 hours; a string so that "90m" or "-1" gets our one-line message. */
export function parseInstallTimeout(value: unknown): number {
  if (value === undefined) return DEFAULT_INSTALL_TIMEOUT_MINUTES;
  if (Array.isArray(value)) {
    throw new InputError(`option --install-timeout was given ${value.length} times; give it once`);
  }
  const text = String(value);
  if (!/^\d{1,4}$/.test(text) || Number(text) < 1 || Number(text) > 1440) {
    throw new InputError(
      `invalid install timeout ${JSON.stringify(text)}: must be a whole number of minutes from 1 to 1440`,
    );
  }
  return Number(text);
}

async function confirmPlan(name: string): Promise<boolean> {
  const { proceed } = await (
    await import('inquirer')
  ).default.prompt<{ proceed: boolean }>([
    { type: 'confirm', name: 'proceed', message: `Create VM "${name}"?`, default: true },
  ]);
  return proceed;
}

export async function runCreate(
  hypervisor: Hypervisor,
  store: FileConfigStore,
  spec: VmSpec,
  options: CreateOptions,
  agentBundle: string,
  installTimeoutMinutes: number,
  template = false,
): Promise<void> {
  const progress = new CreateProgress({
    write: (text) => process.stdout.write(text),
    isTTY: Boolean(process.stdout.isTTY),
    columns: process.stdout.columns,
  });
  const interrupt = onInterrupt(() => progress.finish());
  const controller = interrupt.controller;
  const verboseLog = new AbortController();
  let verboseFollow: Promise<void> | undefined;
  try {
    const result = await createVm(
      { hypervisor, configStore: store, credentials: keyringCredentialStores() },
      spec,
      {
        ...(options.location !== undefined ? { location: options.location } : {}),
        installTimeoutMs: installTimeoutMinutes * 60_000,
        version: packageVersion(),
        agentBundle,
        template,
        signal: controller.signal,
        onCommitted: interrupt.commit,
        onEvent: (event) => {
          progress.handle(event);
          if (event.type === 'install-started' && options.verbose) {
            verboseFollow = echoLog(event.logPath, verboseLog.signal, (text) => progress.passthrough(text));
          }
        },
      },
    );
    verboseLog.abort();
    await verboseFollow;
    progress.finish();
    if (controller.signal.aborted) {
      process.stderr.write('the interrupt came as the VM was finished: it is kept\n');
    }
    const seconds = (result.installMs / 1000).toFixed(1);
    if (template) {
      // Sealed before the prompt returns: an unsealed template is refused as a base.
      await sealTemplate(
        { hypervisor, volumes: new LibvirtVolumeStore(hypervisor.uri), configStore: store },
        result.name,
        packageVersion(),
        'install',
      );
    }
    process.stdout.write(
      `Created ${template ? 'template' : 'VM'} "${result.name}": installed in ${seconds} s${template ? ', sealed' : ''}.\n` +
        `  disk:        ${result.diskPath}\n` +
        `  config:      ${tildePath(result.configPath)}\n` +
        `  install log: ${tildePath(result.installLogPath)}\n` +
        `  password:    in the keyring (vm-provisioner passwords ${result.name})\n` +
        (template
          ? `Make app VMs on it with: vm-provisioner create --template ${result.name} --flatpak ID\n`
          : `Start it with: vm-provisioner start ${result.name}\n`),
    );
    // Best effort: a launcher problem never fails the create (the line says what happened).
    process.stdout.write(`${await syncLaunchersQuietly({ hypervisor })}\n`);
    testStopPoint('reported');
  } finally {
    verboseLog.abort();
    await verboseFollow?.catch(() => undefined);
    progress.finish();
    interrupt.release();
  }
}

/**
 * Ctrl+C (or SIGTERM) during create aborts the returned controller; the
 * service then removes what it made. The handler stays installed until
 * `release()`: a second Ctrl+C must not kill a rollback halfway.
 */
function onInterrupt(before: () => void = () => undefined): {
  controller: AbortController;
  commit: () => void;
  release: () => void;
} {
  const controller = new AbortController();
  let interrupts = 0;
  let committed = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (committed) {
      process.stderr.write(
        `\n${signal === 'SIGINT' ? 'interrupted (Ctrl+C)' : `received ${signal}`}: create had already finished; the VM is kept\n`,
      );
      return;
    }
    interrupts += 1;
    before();
    process.stderr.write(
      interrupts === 1
        ? `\n${signal === 'SIGINT' ? 'interrupted (Ctrl+C)' : `received ${signal}`}: removing everything create made; further Ctrl+C are ignored until that is done\n`
        : 'still removing what create made; Ctrl+C is ignored until that is done\n',
    );
    controller.abort();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    controller,
    commit: () => {
      committed = true;
    },
    release: () => {
      // Once committed the handler stays until exit: without it a late Ctrl+C would end a finished
      // create with 130, as if it had been undone.
      if (committed) return;
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/** --verbose: the installer's console as it arrives, without terminal control sequences. */
async function echoLog(file: string, signal: AbortSignal, write: (text: string) => void): Promise<void> {
  for await (const chunk of followFile(file, { signal })) {
    const clean = chunk
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
      .replace(/\r(?!\n)/g, '\n')
      // eslint-disable-next-line no-control-regex
      .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
    if (clean) write(clean.replace(/^/gm, '  | ').replace(/ {2}\| $/, ''));
  }
}

/** `create --import DISK`: a VM from an existing bootable qcow2 (copied into --vm-dir), no install. */
async function importVm(
  argv: ArgumentsCamelCase<CreateFlags>,
  store: FileConfigStore,
  connection: Connection,
): Promise<void> {
  // Bad input fails here, before libvirt or the keyring is touched.
  const { options: early } = await prepareCreate(argv, { store, connection });
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  if (!early.yes && !interactive) {
    throw new InputError('create needs confirmation: pass --yes when not running on a terminal');
  }
  const hypervisor = await openHypervisor({ uri: early.connectUri, timeouts: CREATE_TIMEOUTS });
  try {
    const { spec, options } = await prepareCreate(argv, {
      store,
      connection,
      isTaken: (name) => hypervisor.exists(name),
    });
    process.stdout.write(formatPlan(spec, options, tildePath(store.pathOf(spec.name))));
    await checkNetworkForCreate(options.connectUri, spec.networkMode);
    if (!options.yes && !(await confirmPlan(spec.name))) {
      process.stdout.write('Nothing was created.\n');
      return;
    }
    const interrupt = onInterrupt();
    const result = await createFromDisk(
      { hypervisor, configStore: store, credentials: keyringCredentialStores() },
      spec,
      {
        importDisk: options.importDisk!,
        ...(options.importBoot !== undefined ? { boot: options.importBoot } : {}),
        version: packageVersion(),
        signal: interrupt.controller.signal,
        onCommitted: interrupt.commit,
      },
    ).finally(interrupt.release);
    if (interrupt.controller.signal.aborted) {
      process.stderr.write('the interrupt came as the VM was finished: it is kept\n');
    }
    process.stdout.write(
      `Created VM "${spec.name}" from ${options.importDisk}.\n` +
        `  disk:        ${result.diskPath}\n` +
        `  config disk: ${result.configDiskPath}\n` +
        (result.kernelPath !== undefined
          ? `  kernel:      ${result.kernelPath}\n  initrd:      ${result.initrdPath}\n`
          : '') +
        `  config:      ${tildePath(store.pathOf(spec.name))}\n` +
        `  password:    in the keyring (vm-provisioner passwords ${spec.name})\n` +
        `Start it with: vm-provisioner start ${spec.name}\n`,
    );
    // Best effort: a launcher problem never fails the create (the line says what happened).
    process.stdout.write(`${await syncLaunchersQuietly({ hypervisor })}\n`);
    testStopPoint('reported');
  } finally {
    await hypervisor.close();
  }
}
