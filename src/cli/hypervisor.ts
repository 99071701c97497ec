import type { Argv } from 'yargs';
import { openHypervisor, resolveUri } from '../libvirt/index.js';
import type { Hypervisor } from '../service/ports.js';
import { validateVmName } from '../spec/validate.js';
import { DEFAULT_URI } from '../libvirt/index.js';

/** `--connect URI`, as virsh: the flag, else LIBVIRT_DEFAULT_URI, else qemu:///system. */
export function withConnectOption<T>(yargs: Argv<T>): Argv<T & { connect: string | undefined }> {
  return yargs.option('connect', {
    type: 'string',
    describe: 'libvirt URI (default: $LIBVIRT_DEFAULT_URI, else qemu:///system)',
    defaultDescription: DEFAULT_URI,
  });
}

/** Opens the libvirt adapter for one command and always closes it. */
export async function withHypervisor<T>(
  connect: string | undefined,
  work: (hypervisor: Hypervisor) => Promise<T>,
): Promise<T> {
  const hypervisor = await openHypervisor({ uri: resolveUri(connect) });
  try {
    return await work(hypervisor);
  } finally {
    await hypervisor.close();
  }
}

/** A VM name argument, checked against the one name grammar before it reaches libvirt. */
export function vmName(value: unknown): string {
  return validateVmName(value);
}
