import type { ArgumentsCamelCase } from 'yargs';
import { openHypervisor, resolveUri } from '../libvirt/index.js';
import { keyringCredentialStores } from '../secrets/credentials.js';
import {
  appVmPaths,
  createFromTemplate,
  planOnTemplate,
  requireTemplate,
  type TemplatePlan,
} from '../service/templates.js';
import { writeDryRunFiles } from '../service/artifacts.js';
import { prepareCreate, type CreateFlags } from '../spec/build.js';
import { tildePath } from '../spec/plan.js';
import { syncLaunchersQuietly } from '../service/launchers.js';
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
  if (!early.yes && !early.dryRun && !interactive) {
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
    const volumes = new LibvirtVolumeStore(hypervisor.uri);
    if (early.dryRun) {
      // Reads only: the same checks and rendering as a real create, then the plan.
      const plan = await planOnTemplate({ hypervisor, volumes, configStore: store }, spec, packageVersion());
      const text = formatTemplatePlan(spec, plan, early.connectUri, tildePath(store.pathOf(spec.name)));
      process.stdout.write(text);
      if (early.outputDir !== undefined) {
        const written = await writeDryRunFiles(early.outputDir, spec.name, {
          domainXml: plan.xml,
          plan: text,
        });
        for (const file of written) process.stdout.write(`wrote ${file}\n`);
      }
      return;
    }
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
        volumes,
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
    // Best effort: a launcher problem never fails the create (the line says what happened).
    process.stdout.write(`${await syncLaunchersQuietly({ hypervisor })}\n`);
    testStopPoint('reported');
  } finally {
    await hypervisor.close();
  }
}

/** `create --template --dry-run`'s plan: what would be made, and from what. */
export function formatTemplatePlan(
  spec: VmSpec,
  plan: TemplatePlan,
  connectUri: string,
  configPath: string,
): string {
  const list = (items: string[]): string => (items.length === 0 ? '(none)' : items.join(', '));
  const rows: Array<[string, string]> = [
    ['name', spec.name],
    ['connection', `${connectUri} (domain type ${spec.virtType})`],
    ['template', `${plan.template.name} (${plan.template.disk}, sealed, read-only)`],
    ['install', 'none (an overlay of the template)'],
    ['memory', `${spec.memoryMb} MB`],
    ['vCPUs', String(spec.vcpus)],
    ['root', `${plan.paths.root} (qcow2 overlay, made afresh at every cold start)`],
    ['private', `${plan.paths.private} (${spec.diskSizeGb} GB sparse qcow2, mounted at /home, kept)`],
    ['config disk', `${plan.paths.configDisk} (read-only, made per VM)`],
    ['flatpak apps', list(spec.flatpakPackages)],
    ['first-boot install', list(plan.pendingFlatpaks)],
    ['autostart apps', list(spec.autoLaunchApps)],
    ['network', spec.networkMode],
    ['config file', configPath],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 1;
  const body = rows.map(([k, v]) => `  ${`${k}:`.padEnd(width)} ${v}`).join('\n');
  return `Plan for VM "${spec.name}" on template "${plan.template.name}" (dry run: no VM, disk, keyring entry or config is made)\n${body}\n`;
}
