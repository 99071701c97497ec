import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { VmpError } from '../../util/errors.js';
import { buildCreateOptions, prepareCreate, type CreateFlags } from '../../spec/build.js';
import { resolveUri } from '../../libvirt/index.js';
import { createFromDisk } from '../../service/lifecycle.js';
import { packageVersion } from '../../util/version.js';
import { withHypervisor } from '../hypervisor.js';
import {
  DEFAULT_CONNECT_URI,
  DEFAULT_DISK_GB,
  DEFAULT_MEMORY_MB,
  DEFAULT_VCPUS,
  MIN_DISK_GB,
  MIN_MEMORY_MB,
} from '../../spec/defaults.js';
import { formatPlan, tildePath } from '../../spec/plan.js';
import { DEFAULT_FEDORA_RELEASE, FEDORA_RELEASES } from '../../spec/releases.js';
import { FileConfigStore } from '../../spec/store.js';

/**
 * `create`: parse and validate every flag into a VmSpec and CreateOptions
 * (src/spec/build.ts). Numbers are taken as strings so that "4g" or "-1" is
 * refused by our validators with a precise message instead of becoming NaN.
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
        type: 'string',
        describe: `RAM in MB (${MIN_MEMORY_MB} to the host's RAM)`,
        defaultDescription: String(DEFAULT_MEMORY_MB),
      })
      .option('vcpus', {
        type: 'string',
        describe: "virtual CPUs (1 to the host's CPUs)",
        defaultDescription: String(DEFAULT_VCPUS),
      })
      .option('disk', {
        type: 'string',
        describe: `disk size in GB (at least ${MIN_DISK_GB})`,
        defaultDescription: String(DEFAULT_DISK_GB),
      })
      .option('fedora-release', {
        type: 'string',
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
      .option('connect', { type: 'string', describe: 'libvirt URI', defaultDescription: DEFAULT_CONNECT_URI })
      .option('import', { type: 'string', describe: 'boot this existing disk image instead of installing' })
      .option('location', { type: 'string', describe: 'install tree URL instead of the release mirror' })
      .option('force', { type: 'boolean', describe: "allow more memory or vCPUs than the host's" })
      .option('yes', { alias: 'y', type: 'boolean', describe: 'do not ask for confirmation' })
      .option('dry-run', { type: 'boolean', describe: 'print the plan and exit; create and write nothing' })
      .option('verbose', { type: 'boolean', describe: 'show each step' })
      .example('$0 create --flatpak org.mozilla.firefox', 'VM "org-mozilla-firefox-vm" running Firefox')
      .example('$0 create --system git gcc --flatpak com.visualstudio.code --memory 8192 --dry-run', '')
      .strictOptions() as unknown as Argv<CreateFlags>,
  handler: async (argv: ArgumentsCamelCase<CreateFlags>) => {
    const store = new FileConfigStore();
    if (argv.import !== undefined && argv.dryRun !== true) {
      await importVm(argv, store);
      return;
    }
    const { spec, options } = await prepareCreate(argv, { store });
    if (options.dryRun) {
      process.stdout.write(formatPlan(spec, options, tildePath(store.pathOf(spec.name))));
      return;
    }
    // Honest refusal until the lead wires in the kickstart, domain XML and install pipeline.
    throw new VmpError(
      `cannot create VM "${spec.name}": the install pipeline is not available yet; ` +
        'run with --dry-run to see the plan',
    );
  },
};

/** `create --import DISK`: a VM from an existing bootable qcow2 (copied into --vm-dir), no install. */
async function importVm(argv: ArgumentsCamelCase<CreateFlags>, store: FileConfigStore): Promise<void> {
  const early = buildCreateOptions(argv);
  // As virsh: an explicit --connect wins, else LIBVIRT_DEFAULT_URI, else qemu:///system.
  const uri = argv.connect !== undefined ? early.connectUri : resolveUri();
  await withHypervisor(uri, async (hypervisor) => {
    const { spec, options } = await prepareCreate(argv, {
      store,
      isTaken: (name) => hypervisor.exists(name),
    });
    const { diskPath } = await createFromDisk({ hypervisor, configStore: store }, spec, {
      importDisk: options.importDisk!,
      version: packageVersion(),
    });
    process.stdout.write(
      `${spec.name}: defined from ${options.importDisk} (disk ${diskPath}); start it with: vm-provisioner start ${spec.name}\n`,
    );
  });
}
