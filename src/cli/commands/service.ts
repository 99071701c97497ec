import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { PROXY_UNIT_NAME } from '../../render/proxy-unit.js';
import { installProxyService, proxyUnitText } from '../../service/user-service.js';
import { singleValue, validateConnectUri } from '../../spec/validate.js';
import { xdgConfigHome } from '../../util/paths.js';

interface ServiceInstallArgs {
  dryRun?: boolean;
  connect?: string;
}

const installSub: CommandModule<object, ServiceInstallArgs> = {
  command: 'install',
  describe: `Write and enable the window proxy's systemd user unit (${PROXY_UNIT_NAME}) for this install`,
  builder: (yargs: Argv<object>) =>
    yargs
      .usage('$0 service install [--dry-run] [--connect URI]')
      .option('dry-run', { type: 'boolean', describe: 'print the unit and exit; write nothing' })
      .example('$0 service install', 'run the proxy in your session from now on')
      .example('$0 service install --dry-run', 'the unit it would write')
      .strictOptions() as unknown as Argv<ServiceInstallArgs>,
  handler: async (argv: ArgumentsCamelCase<ServiceInstallArgs>) => {
    // Given here, the URI is baked into the unit; else the proxy resolves it when it starts.
    const connect =
      argv.connect === undefined ? undefined : validateConnectUri(singleValue('connect', argv.connect));
    const text = await proxyUnitText(connect);
    if (argv.dryRun) {
      process.stdout.write(text);
      return;
    }
    const result = await installProxyService({ configHome: xdgConfigHome(), text });
    const did = { new: 'wrote', replaced: 'replaced', same: 'unchanged:' }[result.written];
    process.stdout.write(`${did} ${result.unitFile}\n`);
    if (result.enabled) {
      process.stdout.write(
        `enabled and started ${PROXY_UNIT_NAME} (systemctl --user status ${PROXY_UNIT_NAME})\n`,
      );
    } else {
      process.stdout.write(
        `no user systemd reachable (${result.why}); in your desktop session run: ${result.howTo}\n`,
      );
    }
  },
};

/** `service`: the host-side services of vm-provisioner (today: the window proxy). */
export const serviceCommand: CommandModule<object, object> = {
  command: 'service <command>',
  describe: 'Install the window proxy as a systemd user service of this install',
  builder: (yargs: Argv<object>) =>
    yargs
      .command(installSub as CommandModule<object, never>)
      .demandCommand(1, 'Name a service command: install'),
  handler: () => undefined,
};
