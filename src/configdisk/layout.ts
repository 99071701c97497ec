import { AGENT_SECRET_PATH, renderAgentConf } from '../render/agent-config.js';
import { checkAgentSecret, checkPasswordHash, checkVmName } from '../render/grammar.js';
import { renderI3Config } from '../render/i3config.js';
import { renderLightdmConf } from '../render/lightdm.js';
import { renderAppUnits } from '../render/units.js';
import type { VmSpec } from '../spec/types.js';
import { InputError } from '../util/errors.js';

/**
 * What goes on a VM's config disk (docs/config-disk.md): the per-VM files a
 * shared base image needs, each produced by the same renderer the kickstart
 * uses. Pure: the adapter in ./image.ts writes the list into an ext4 image.
 */

/** First line of `format` on the disk; the guest loader refuses any other. Bump on incompatible changes. */
export const CONFIG_DISK_FORMAT = 'vmp-config 1';
/** ext4 volume label; the guest finds the disk by its virtio serial, the label is for humans and blkid. */
export const CONFIG_DISK_LABEL = 'VMPCONFIG';
/** The guest loader's names for the app units must match this; keep the two in step. */
export const CONFIG_DISK_UNIT_NAME = /^vm-app-[A-Za-z0-9][A-Za-z0-9_.-]{0,200}\.service$/;

export interface ConfigDiskFile {
  /** Relative to the disk's root, `/`-separated, no `..`. */
  path: string;
  mode: number;
  content: string;
}

export interface ConfigDiskInput {
  spec: VmSpec;
  credentials: { passwordHash: string; agentSecret: string };
  proxyHost: string;
  proxyPort: number;
  /** Flatpaks the guest installs per user at its first boot (an app VM on a template that lacks them). */
  pendingFlatpaks?: string[];
}

/** The disk's files, in a stable order (the golden file's). */
export function configDiskFiles(input: ConfigDiskInput): ConfigDiskFile[] {
  const { spec, credentials } = input;
  const name = checkVmName(spec.name);
  const files: ConfigDiskFile[] = [
    { path: 'format', mode: 0o644, content: `${CONFIG_DISK_FORMAT}\n` },
    { path: 'hostname', mode: 0o644, content: `${name}\n` },
    {
      path: 'agent.conf',
      mode: 0o644,
      content: renderAgentConf({
        vmName: name,
        proxyHost: input.proxyHost,
        proxyPort: input.proxyPort,
        secretFile: AGENT_SECRET_PATH,
      }),
    },
    // Exactly the secret, no newline: the same bytes the kickstart writes (docs/guest-interface.md).
    { path: 'agent.secret', mode: 0o600, content: checkAgentSecret(credentials.agentSecret) },
    { path: 'password.sha512', mode: 0o600, content: `${checkPasswordHash(credentials.passwordHash)}\n` },
    { path: 'i3/config', mode: 0o644, content: renderI3Config(spec) },
    { path: 'lightdm/50-vm-provisioner.conf', mode: 0o644, content: renderLightdmConf(spec) },
  ];
  for (const unit of renderAppUnits(spec)) {
    // The unit renderer's names are already safe; this is the loader's rule, checked on this side too.
    if (!CONFIG_DISK_UNIT_NAME.test(unit.fileName)) {
      throw new InputError(
        `app unit name '${unit.fileName}' is invalid for the config disk: must match ${CONFIG_DISK_UNIT_NAME.source}`,
      );
    }
    files.push({ path: `units/${unit.fileName}`, mode: 0o644, content: unit.content });
  }
  const pending = input.pendingFlatpaks ?? [];
  if (pending.length > 0) {
    for (const id of pending) {
      if (!FLATPAK_ID.test(id)) throw new InputError(`Flatpak ID '${id}' is invalid for the config disk`);
    }
    // An older loader ignores this file (no format bump): the VM then simply lacks the app.
    files.push({ path: 'flatpaks', mode: 0o644, content: `${pending.join('\n')}\n` });
  }
  return files;
}

/** The loader's rule for the IDs in `flatpaks`; Flatpak's own (three or more dot-separated elements). */
export const FLATPAK_ID = /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*){2,}$/;
