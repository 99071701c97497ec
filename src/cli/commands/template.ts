import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { openHypervisor } from '../../libvirt/index.js';
import { keyringCredentialStores } from '../../secrets/credentials.js';
import { destroyVm } from '../../service/lifecycle.js';
import { loadAgentBundle } from '../../service/artifacts.js';
import {
  ensureTemplateUnused,
  importTemplate,
  listTemplates,
  requireTemplate,
  updateTemplate,
  type TemplateSummary,
} from '../../service/templates.js';
import { prepareCreate, type CreateFlags } from '../../spec/build.js';
import { checkNetworkForCreate } from '../../service/networks.js';
import { FileConfigStore } from '../../spec/store.js';
import { LibvirtVolumeStore } from '../../storage/volumes.js';
import { InputError } from '../../util/errors.js';
import { packageVersion } from '../../util/package-info.js';
import { resolveConnectionFor, vmName, withConnectOption, withHypervisor } from '../hypervisor.js';
import { parseInstallTimeout, runCreate } from './create.js';
import { formatColumns } from '../../util/table.js';

/**
 * `template create|import|list|update|destroy`: the bases app VMs are made
 * from (docs/templates.md), as Qubes' qvm-template and TemplateVMs.
 */

type TemplateFlags = CreateFlags & { name?: string; installTimeout?: string };

/** The create flags a template takes; the rest (apps, names) belong to the app VMs made on it. */
function withTemplateSpecOptions<T>(yargs: Argv<T>): Argv<T> {
  return withConnectOption(yargs)
    .option('memory', { type: 'number', describe: 'RAM in MiB while the template runs (updates)' })
    .option('vcpus', { type: 'number', describe: 'virtual CPUs' })
    .option('virt-type', { type: 'string', describe: 'kvm or qemu (emulation)', defaultDescription: 'kvm' })
    .option('network', {
      type: 'string',
      describe: 'default (libvirt NAT), user (QEMU user-mode) or none; app VMs inherit it',
      defaultDescription: 'default',
    })
    .option('vm-dir', {
      type: 'string',
      describe: "directory for the template's disk (and, by default, its app VMs')",
      defaultDescription: '/var/lib/libvirt/images',
    })
    .option('config', { type: 'string', describe: 'TOML spec file; flags override its keys' }) as Argv<T>;
}

function say(text: string): void {
  process.stdout.write(text);
}

const createSub: CommandModule<object, TemplateFlags> = {
  command: 'create <name>',
  describe: 'Install a template with the Fedora kickstart pipeline, then seal it',
  builder: (yargs) =>
    withTemplateSpecOptions(yargs)
      .positional('name', { type: 'string', demandOption: true, describe: 'template name' })
      .option('system', { type: 'string', array: true, describe: 'dnf packages, @groups or @^environments' })
      .option('flatpak', { type: 'string', array: true, describe: 'Flatpak application IDs from Flathub' })
      .option('fedora-release', { type: 'number', describe: 'Fedora release' })
      .option('arch', { type: 'string', describe: 'x86_64 or aarch64' })
      .option('disk', { type: 'number', describe: 'disk size in GB' })
      .option('location', { type: 'string', describe: 'install tree URL instead of the release mirror' })
      .option('install-timeout', {
        type: 'number',
        describe: 'give up on the install after this many minutes',
      })
      .option('yes', { alias: 'y', type: 'boolean', describe: 'do not ask for confirmation' })
      .option('verbose', { type: 'boolean', describe: "also show the installer's console log" })
      .example('$0 template create fedora-apps --flatpak org.mozilla.firefox', '')
      .strictOptions() as unknown as Argv<TemplateFlags>,
  handler: async (argv: ArgumentsCamelCase<TemplateFlags>) => {
    const store = new FileConfigStore();
    const installTimeoutMinutes = parseInstallTimeout(argv.installTimeout);
    // A template launches nothing itself: its Flatpaks are installed for the app VMs made on it.
    const flags: CreateFlags = { ...argv, name: vmName(argv.name), autostartApp: [], yes: true };
    const connection = await resolveConnectionFor(argv.connect);
    const prepDeps = { store, connection, templateFromDefaults: false };
    const { options: early } = await prepareCreate(flags, prepDeps);
    const hypervisor = await openHypervisor({
      uri: early.connectUri,
      timeouts: { call: 300_000, save: 300_000 },
    });
    try {
      const { spec, options } = await prepareCreate(flags, {
        ...prepDeps,
        isTaken: (n) => hypervisor.exists(n),
      });
      if (spec.name !== flags.name) throw new InputError(`the name '${flags.name}' is taken`);
      await checkNetworkForCreate(options.connectUri, spec.networkMode);
      await runCreate(hypervisor, store, spec, options, await loadAgentBundle(), installTimeoutMinutes, true);
    } finally {
      await hypervisor.close();
    }
  },
};

const importSub: CommandModule<object, TemplateFlags> = {
  command: 'import <name> <disk>',
  describe: 'Make a template from an installed qcow2 image (with the config-disk loader in it)',
  builder: (yargs) =>
    withTemplateSpecOptions(yargs)
      .positional('name', { type: 'string', demandOption: true, describe: 'template name' })
      .positional('disk', {
        type: 'string',
        demandOption: true,
        describe: 'the disk image (qcow2); it is copied, never changed',
      })
      .option('kernel', { type: 'string', describe: 'boot this kernel directly (copied); needs --initrd' })
      .option('initrd', { type: 'string', describe: 'with --kernel: the initrd' })
      .option('kernel-args', { type: 'string', describe: 'with --kernel: the kernel command line' })
      .example(
        "$0 template import debian-base guest.qcow2 --kernel vmlinuz --initrd initrd.img --kernel-args 'root=/dev/vda rw'",
        '',
      )
      .strictOptions() as unknown as Argv<TemplateFlags>,
  handler: async (argv: ArgumentsCamelCase<TemplateFlags>) => {
    const store = new FileConfigStore();
    const name = vmName(argv.name);
    const flags: CreateFlags = {
      ...argv,
      name,
      // The DISK positional is the image to import; `disk` is create's size flag, which a template import has not.
      import: argv.disk === undefined ? undefined : String(argv.disk),
      disk: undefined,
      autostartApp: [],
      yes: true,
    };
    const connection = await resolveConnectionFor(argv.connect);
    const prepDeps = { store, connection, templateFromDefaults: false };
    const { options: early } = await prepareCreate(flags, prepDeps);
    const hypervisor = await openHypervisor({
      uri: early.connectUri,
      timeouts: { call: 300_000, save: 300_000 },
    });
    try {
      const { spec, options } = await prepareCreate(flags, {
        ...prepDeps,
        isTaken: (n) => hypervisor.exists(n),
      });
      if (spec.name !== name) throw new InputError(`the name '${name}' is taken`);
      await checkNetworkForCreate(options.connectUri, spec.networkMode);
      const controller = new AbortController();
      const abort = (): void => controller.abort();
      process.once('SIGINT', abort);
      process.once('SIGTERM', abort);
      const deps = { hypervisor, configStore: store, credentials: keyringCredentialStores() };
      try {
        const volumes = new LibvirtVolumeStore(hypervisor.uri);
        const result = await importTemplate({ ...deps, volumes }, spec, {
          importDisk: options.importDisk!,
          ...(options.importBoot !== undefined ? { boot: options.importBoot } : {}),
          version: packageVersion(),
          signal: controller.signal,
        });
        say(
          `Imported template "${name}" from ${options.importDisk}, sealed (read-only).\n` +
            `  disk:        ${result.diskPath}\n` +
            `Make app VMs on it with: vm-provisioner create --template ${name} --autostart-app CMD\n`,
        );
      } finally {
        process.off('SIGINT', abort);
        process.off('SIGTERM', abort);
      }
    } finally {
      await hypervisor.close();
    }
  },
};

export function formatTemplateTable(templates: TemplateSummary[]): string {
  const mib = (bytes?: number): string =>
    bytes === undefined ? 'missing' : `${(bytes / 1024 ** 2).toFixed(0)} MiB`;
  const rows = [
    ['NAME', 'STATE', 'DISK', 'APP VMS'],
    ...templates.map((t) => [t.name, t.state, mib(t.diskBytes), t.appVms.join(', ') || '-']),
  ];
  return formatColumns(rows);
}

const listSub: CommandModule<object, { json: boolean; connect: string | undefined }> = {
  command: 'list',
  describe: 'List templates: state, disk size and the app VMs built on each',
  builder: (yargs) =>
    withConnectOption(yargs).option('json', {
      type: 'boolean',
      default: false,
      describe: 'print a JSON array',
    }) as never,
  handler: async (argv) => {
    const templates = await withHypervisor(argv.connect, (hypervisor) =>
      listTemplates({ hypervisor, volumes: new LibvirtVolumeStore(hypervisor.uri) }),
    );
    if (argv.json) say(`${JSON.stringify(templates, null, 2)}\n`);
    else say(templates.length === 0 ? 'no templates\n' : `${formatTemplateTable(templates)}\n`);
  },
};

const destroySub: CommandModule<object, { name: string; connect: string | undefined }> = {
  command: 'destroy <name>',
  describe: 'Delete a template that no app VM uses: its domain, disk, config and keyring entries',
  builder: (yargs) =>
    withConnectOption(yargs).positional('name', {
      type: 'string',
      demandOption: true,
      describe: 'template name',
    }) as never,
  handler: async (argv) => {
    const name = vmName(argv.name);
    await withHypervisor(argv.connect, async (hypervisor) => {
      await requireTemplate(hypervisor, name);
      const credentials = keyringCredentialStores();
      const configStore = new FileConfigStore();
      // Preloaded disposables (docs/disposables-clones.md) are no user's VMs: they go with the template.
      const { removePreloadedOf } = await import('../../service/disposable.js');
      const { disposableRemoval } = await import('../disposable-removal.js');
      for (const gone of await removePreloadedOf(
        disposableRemoval(hypervisor, configStore, credentials),
        name,
      )) {
        say(`${gone}: preloaded disposable removed\n`);
      }
      await ensureTemplateUnused(hypervisor, name);
      // Its ready state first (docs/disposables-clones.md): its frozen volumes are backed by the disk.
      const spec = await configStore.read(name).catch(() => undefined);
      if (spec) {
        const { removeReadyStateIfAny } = await import('../../disposable/ready-state.js');
        const { virshRunnerFor } = await import('../../disposable/starter.js');
        await removeReadyStateIfAny(
          {
            volumes: new LibvirtVolumeStore(hypervisor.uri),
            credentials,
            virsh: virshRunnerFor(hypervisor.uri),
          },
          spec,
        );
      }
      const report = await destroyVm(
        {
          hypervisor,
          configStore,
          secretStores: [credentials.passwords, credentials.agentSecrets],
        },
        name,
      );
      say(`${name}: template destroyed (${report.removedFiles.length} file(s))\n`);
    });
  },
};

interface UpdateArgs {
  name: string;
  connect: string | undefined;
  timeout: string | undefined;
  '--'?: Array<string | number>;
}

const updateSub: CommandModule<object, UpdateArgs> = {
  command: 'update <name>',
  describe: 'Boot the template, run dnf/flatpak updates (or -- CMD...), shut it down and seal it again',
  builder: (yargs) =>
    withConnectOption(yargs)
      .parserConfiguration({ 'populate--': true })
      .positional('name', { type: 'string', demandOption: true, describe: 'template name' })
      .option('timeout', { type: 'number', describe: 'minutes the command may run (default 60)' })
      .example('$0 template update fedora-apps', 'dnf -y upgrade and flatpak update -y inside it')
      .example(
        '$0 template update debian-base -- /usr/bin/apt-get -y upgrade',
        'an argv, run as root',
      ) as never,
  handler: async (argv) => {
    const name = vmName(argv.name);
    const command = argv['--']?.map(String);
    // As typed (raw-numbers.ts): plain digits only, so "0x5" or "1e3" is refused, not read as 5 or 1000.
    const minutes =
      argv.timeout === undefined ? 60 : /^\d{1,4}$/.test(String(argv.timeout)) ? Number(argv.timeout) : NaN;
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440) {
      throw new InputError(
        `invalid --timeout ${JSON.stringify(argv.timeout)}: a whole number of minutes from 1 to 1440`,
      );
    }
    const hypervisor = await openHypervisor({ uri: (await resolveConnectionFor(argv.connect)).uri });
    try {
      const result = await updateTemplate(
        {
          hypervisor,
          volumes: new LibvirtVolumeStore(hypervisor.uri),
          configStore: new FileConfigStore(),
          credentials: keyringCredentialStores(),
        },
        name,
        {
          ...(command && command.length > 0 ? { command } : {}),
          version: packageVersion(),
          commandTimeoutMs: minutes * 60_000,
          bootTimeoutMs: 600_000,
          onProgress: (line) => process.stderr.write(`${name}: ${line}\n`),
        },
      );
      if (result.stdout) say(result.stdout.endsWith('\n') ? result.stdout : `${result.stdout}\n`);
      if (result.stderr)
        process.stderr.write(result.stderr.endsWith('\n') ? result.stderr : `${result.stderr}\n`);
      if (result.exitCode !== 0) {
        process.stderr.write(
          `${name}: the command exited with ${result.exitCode}; the template is sealed as it is now\n`,
        );
        process.exitCode = 1;
        return;
      }
      say(`${name}: updated and sealed; app VMs on it see the change at their next cold start\n`);
    } finally {
      await hypervisor.close();
    }
  },
};

export const templateCommand: CommandModule<object, object> = {
  command: 'template <command>',
  describe:
    'Templates: one installed base, app VMs on it in about a second (create, import, list, update, destroy)',
  builder: (yargs: Argv<object>) =>
    yargs
      .command(createSub as CommandModule<object, never>)
      .command(importSub as CommandModule<object, never>)
      .command(listSub as CommandModule<object, never>)
      .command(updateSub as CommandModule<object, never>)
      .command(destroySub as CommandModule<object, never>)
      .demandCommand(1, 'Name a template command: create, import, list, update or destroy'),
  handler: () => undefined,
};
