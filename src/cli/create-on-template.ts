import type { ArgumentsCamelCase } from 'yargs';
import { openHypervisor } from '../libvirt/index.js';
import { keyringCredentialStores } from '../secrets/credentials.js';
import {
  appVmPaths,
  createFromTemplate,
  inheritedFrom,
  planOnTemplate,
  requireTemplate,
  type TemplatePlan,
} from '../service/templates.js';
import { writeDryRunFiles } from '../service/artifacts.js';
import { checkNetworkForCreate } from '../service/networks.js';
import { prepareCreate, type CreateFlags, type CreateOptions } from '../spec/build.js';
import { connectionRow, tildePath } from '../spec/plan.js';
import type { Connection } from './hypervisor.js';
import { syncLaunchersQuietly } from '../service/launchers.js';
import type { FileConfigStore } from '../spec/store.js';
import type { VmSpec } from '../spec/types.js';
import { LibvirtVolumeStore } from '../storage/volumes.js';
import { InputError, NotFoundError } from '../util/errors.js';
import { packageVersion } from '../util/package-info.js';
import { testStopPoint } from '../service/journal.js';

/** `create --template T`: an app VM as an overlay of T's disk, in about a second. */
export async function createOnTemplate(
  argv: ArgumentsCamelCase<CreateFlags>,
  store: FileConfigStore,
  onInterrupt: () => { controller: AbortController; commit: () => void; release: () => void },
  connection: Connection,
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
  const { spec: earlySpec, options: early } = await prepareCreate(argv, { store, connection });
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  if (!early.yes && !early.dryRun && !interactive) {
    throw new InputError('create needs confirmation: pass --yes when not running on a terminal');
  }
  const hypervisor = await openHypervisor({ uri: connection.uri });
  try {
    // From --template, the --config file or the defaults file (prepareCreate decided).
    const templateName = earlySpec.template!;
    const template = await requireTemplate(hypervisor, templateName).catch((err: unknown) => {
      // A template the user did not type on this command line: say where the name came from.
      if ((err instanceof NotFoundError || err instanceof InputError) && early.templateSource !== undefined) {
        throw new InputError(
          `${err.message} (template = "${templateName}" in ${tildePath(early.templateSource)}; --no-template to install instead)`,
        );
      }
      throw err;
    });
    const templateSpec = await store.read(template.name);
    const { spec } = await prepareCreate(argv, {
      store,
      connection,
      isTaken: (name) => hypervisor.exists(name),
      base: inheritedFrom(templateSpec),
    });
    const volumes = new LibvirtVolumeStore(hypervisor.uri);
    if (early.dryRun) {
      // Reads only: the same checks and rendering as a real create, then the plan.
      const plan = await planOnTemplate({ hypervisor, volumes, configStore: store }, spec, packageVersion());
      const text = formatTemplatePlan(spec, plan, early, tildePath(store.pathOf(spec.name)));
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
    await checkNetworkForCreate(connection.uri, spec.networkMode);
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
  options: Pick<CreateOptions, 'connectUri' | 'connectSource' | 'templateSource'>,
  configPath: string,
): string {
  const list = (items: string[]): string => (items.length === 0 ? '(none)' : items.join(', '));
  const rows: Array<[string, string]> = [
    ['name', spec.name],
    ['connection', connectionRow(spec, options)],
    [
      'template',
      `${plan.template.name} (${plan.template.disk}, sealed, read-only` +
        `${options.templateSource !== undefined ? `; from ${tildePath(options.templateSource)}` : ''})`,
    ],
    ['install', 'none (an overlay of the template)'],
    ['memory', `${spec.memoryMb} MiB`],
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
