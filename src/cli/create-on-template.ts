import type { ArgumentsCamelCase } from 'yargs';
import { openHypervisor, resolveUri } from '../libvirt/index.js';
import { keyringCredentialStores } from '../secrets/credentials.js';
import { appVmPaths, createFromTemplate, requireTemplate } from '../service/templates.js';
import { prepareCreate, type CreateFlags } from '../spec/build.js';
import { tildePath } from '../spec/plan.js';
import type { FileConfigStore } from '../spec/store.js';
import type { VmSpec } from '../spec/types.js';
import { LibvirtVolumeStore } from '../storage/volumes.js';
import { InputError } from '../util/errors.js';
import { packageVersion } from '../util/package-info.js';
import { testStopPoint } from '../service/journal.js';

/** What an app VM takes from its template unless a flag or its --config file says otherwise. */
function inheritedFrom(template: VmSpec): Partial<VmSpec> {
  return {
    memoryMb: template.memoryMb,
    vcpus: template.vcpus,
    vmDir: template.vmDir,
    networkMode: template.networkMode,
    virtType: template.virtType,
    arch: template.arch,
    graphicsBackend: template.graphicsBackend,
    fedoraRelease: template.fedoraRelease,
    enableAudio: template.enableAudio,
    enableClipboard: template.enableClipboard,
    enableUsbPassthrough: template.enableUsbPassthrough,
    enableAutoLogin: template.enableAutoLogin,
    firewallRules: template.firewallRules,
  };
}

/** `create --template T`: an app VM as an overlay of T's disk, in about a second. */
export async function createOnTemplate(
  argv: ArgumentsCamelCase<CreateFlags>,
  store: FileConfigStore,
  onInterrupt: () => { controller: AbortController; commit: () => void; release: () => void },
): Promise<void> {
  for (const [flag, value] of Object.entries({
    '--import': argv.import,
    '--location': argv.location,
    '--kernel': argv.kernel,
    '--initrd': argv.initrd,
    '--kernel-args': argv.kernelArgs,
  })) {
    if (value !== undefined) {
      throw new InputError(
        `${flag} does not go with --template: an app VM boots its template's disk and kernel`,
      );
    }
  }
  // Bad input fails here, before libvirt or the keyring is touched.
  const { options: early } = await prepareCreate(argv, { store });
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  if (!early.yes && !interactive) {
    throw new InputError('create needs confirmation: pass --yes when not running on a terminal');
  }
  const uri = argv.connect !== undefined ? resolveUri(early.connectUri) : resolveUri();
  const hypervisor = await openHypervisor({ uri });
  try {
    const templateName = (Array.isArray(argv.template) ? argv.template[0] : argv.template) as string;
    const template = await requireTemplate(hypervisor, templateName);
    const templateSpec = await store.read(template.name);
    const { spec } = await prepareCreate(argv, {
      store,
      isTaken: (name) => hypervisor.exists(name),
      base: inheritedFrom(templateSpec),
    });
    if (!early.yes) {
      const { default: inquirer } = await import('inquirer');
      const { proceed } = await inquirer.prompt<{ proceed: boolean }>([
        {
          type: 'confirm',
          name: 'proceed',
          message: `Create VM "${spec.name}" on template "${template.name}"?`,
          default: true,
        },
      ]);
      if (!proceed) {
        process.stdout.write('Nothing was created.\n');
        return;
      }
    }
    const interrupt = onInterrupt();
    const result = await createFromTemplate(
      {
        hypervisor,
        volumes: new LibvirtVolumeStore(hypervisor.uri),
        configStore: store,
        credentials: keyringCredentialStores(),
      },
      spec,
      {
        version: packageVersion(),
        signal: interrupt.controller.signal,
        onCommitted: interrupt.commit,
      },
    ).finally(interrupt.release);
    if (interrupt.controller.signal.aborted) {
      process.stderr.write('the interrupt came as the VM was finished: it is kept\n');
    }
    const paths = appVmPaths(spec);
    process.stdout.write(
      `Created VM "${spec.name}" on template "${template.name}".\n` +
        `  root:        ${result.root} (overlay of ${template.disk}, made afresh at each cold start)\n` +
        `  private:     ${paths.private} (/home, kept)\n` +
        `  config disk: ${paths.configDisk}\n` +
        (result.pendingFlatpaks.length > 0
          ? `  pending:     ${result.pendingFlatpaks.join(', ')} (installed at its first boot; the template lacks them)\n`
          : '') +
        `  config:      ${tildePath(store.pathOf(spec.name))}\n` +
        `  password:    in the keyring (vm-provisioner passwords ${spec.name})\n` +
        `Start it with: vm-provisioner start ${spec.name}\n`,
    );
    testStopPoint('reported');
  } finally {
    await hypervisor.close();
  }
}
