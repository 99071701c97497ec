import type { Options } from 'yargs';

/**
 * `--connect URI` / `-c URI`, as virsh: a global option that every command
 * accepts (commands that do not talk to libvirt ignore it), so a shell alias
 * or a script may pass it to any of them. Apart from hypervisor.ts so that
 * run.ts declares it without loading the libvirt adapters for every command.
 */
export const CONNECT_OPTION: Options = {
  alias: 'c',
  type: 'string',
  global: true,
  describe: 'libvirt URI, as virsh -c (every command accepts it)',
  // The same URI as src/libvirt/index.ts's DEFAULT_URI (a test keeps them equal).
  defaultDescription: '$LIBVIRT_DEFAULT_URI, else connect in defaults.toml, else qemu:///system',
};
