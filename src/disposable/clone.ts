import { randomBytes, randomUUID } from 'node:crypto';
import { execa } from 'execa';
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { encodeIdentity, identityProblem } from '../protocol/identity.js';
import {
  DEFAULT_MODE_NETWORK,
  displaySocketPath,
  wakePipeBase,
  type DisposableOwner,
} from '../render/domain-xml.js';
import { generateAgentSecret } from '../secrets/password.js';
import { appVmPaths, requireTemplate } from '../service/templates.js';
import { encodeSaveHead, readSaveHead, SaveFormatError, streamRewritten } from '../storage/save-file.js';
import { AlreadyExistsError, NotFoundError, VmpError } from '../util/errors.js';
import { trace } from '../util/trace.js';
import { cloneDomainXml } from './clone-xml.js';
import { readReadyState, readyStateProblem, type CloneDeps, type ReadyState } from './ready-state.js';

/**
 * The fast start of a disposable (docs/disposables-clones.md): a clone of
 * the template's ready state, restored onto fresh overlays under its own
 * name, UUID, MAC and agent secret. Anything that stops a clone from being
 * made is CloneUnavailable, after removing what was made, and the caller
 * boots the disposable instead.
 */

export class CloneUnavailable extends VmpError {
  override readonly name = 'CloneUnavailable';
}

export interface CloneResult {
  name: string;
  /** The domain XML the clone was restored with (its persistent definition, for a disposable). */
  xml: string;
  /**
   * Milliseconds: the checks before anything is made, the restore alone (from the start of libvirt's
   * restore to its return), the NIC's hot-plug, and the whole start.
   */
  timings: { checkMs: number; restoreMs: number; nicMs: number; totalMs: number };
}

/** Every file of clone `name` of a template whose VM directory is `vmDir`. */
export function clonePaths(
  vmDir: string,
  name: string,
): {
  root: string;
  private: string;
  wakeBase: string;
  displaySocket: string;
  restoreFifo: string;
  nicFile: string;
} {
  const own = appVmPaths({ name, vmDir });
  return {
    root: own.root,
    private: own.private,
    wakeBase: wakePipeBase(own.root, name),
    displaySocket: displaySocketPath(own.root, name),
    restoreFifo: path.join(vmDir, `${name}-restore.fifo`),
    nicFile: path.join(vmDir, `${name}-nic.xml`),
  };
}

/** The NIC a clone gets after its restore, per the template's network mode, with a MAC of its own. */
export function cloneNicXml(mode: ReadyState['networkMode'], mac: string): string | undefined {
  if (!/^52:54:00(:[0-9a-f]{2}){3}$/.test(mac)) throw new VmpError(`MAC '${mac}' is not a 52:54:00 address`);
  const common = `<mac address='${mac}'/><model type='virtio'/>`;
  switch (mode) {
    case 'user':
      return `<interface type='user'>${common}</interface>`;
    case 'default':
      return `<interface type='network'><source network='${DEFAULT_MODE_NETWORK}'/>${common}</interface>`;
    case 'none':
      return undefined;
  }
}

/**
 * Restores a clone of `templateName`'s ready state as `name` and gives it its
 * identity. Resolves once the guest has its identity (its agent then
 * connects to the proxy as `name`); CloneUnavailable when there is no ready
 * state, it is stale, or the save image is not in a format we know. With
 * `disposable`, its domain carries the disposable mark and that owner from
 * the moment it exists (docs/disposables.md).
 */
export async function startClone(
  deps: CloneDeps,
  templateName: string,
  name: string,
  options: { disposable?: DisposableOwner } = {},
): Promise<CloneResult> {
  const started = Date.now();
  const template = await requireTemplate(deps.hypervisor, templateName);
  const templateSpec = await deps.configStore.read(template.name);
  const state = await readReadyState(templateSpec);
  if (!state) throw new CloneUnavailable(`template '${templateName}' has no ready state to clone`);
  const stale = readyStateProblem(state, {
    name: template.name,
    disk: template.disk,
    ...(template.description.seal ? { seal: template.description.seal } : {}),
  });
  if (stale) throw new CloneUnavailable(stale);
  const secret = generateAgentSecret();
  const identity = {
    name,
    secret,
    seed: randomBytes(32).toString('hex'),
    machineId: randomBytes(16).toString('hex'),
  };
  const problem = identityProblem(identity);
  if (problem) throw new CloneUnavailable(`clone name '${name}' cannot be one: ${problem}`);
  let head;
  try {
    head = await readSaveHead(state.saveImage);
  } catch (err) {
    if (err instanceof SaveFormatError || (err as NodeJS.ErrnoException).code !== undefined) {
      throw new CloneUnavailable(
        `the ready state of '${templateName}' cannot be read: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    throw err;
  }
  const paths = clonePaths(state.vmDir, name);
  // Before anything is made: the cleanup of a failed start must never hit another VM's files.
  if (await deps.hypervisor.exists(name))
    throw new AlreadyExistsError(`a domain named '${name}' already exists`);
  let xml: string;
  try {
    xml = cloneDomainXml(head.xml, {
      name,
      uuid: randomUUID(),
      root: { file: paths.root, backing: state.root.file },
      private: { file: paths.private, backing: state.private.file },
      templateDisk: state.templateDisk,
      wakeBase: paths.wakeBase,
      displaySocket: paths.displaySocket,
      ...(options.disposable
        ? { disposable: { owner: options.disposable, files: [paths.restoreFifo, paths.nicFile] } }
        : {}),
    });
  } catch (err) {
    if (err instanceof SaveFormatError) throw new CloneUnavailable(err.message, { cause: err });
    throw err;
  }

  trace('clone checked');
  let restoreMs: number;
  let nicMs: number;
  const prepareMs = Date.now() - started;
  try {
    // The secret is stored (as every VM's is) before the agent can present it: it gets it only below.
    await Promise.all([
      deps.credentials.agentSecrets.set(name, secret),
      deps.volumes.createOverlay(paths.root, state.root.file, state.root.capacityBytes),
      deps.volumes.createOverlay(paths.private, state.private.file, state.private.capacityBytes),
      mkfifos([`${paths.wakeBase}.in`, `${paths.wakeBase}.out`, paths.restoreFifo]),
    ]);
    trace('clone overlays, keyring, fifos');
    const restoreStarted = Date.now();
    const feeder = new AbortController();
    const feeding = streamRewritten(
      state.saveImage,
      head.streamOffset,
      encodeSaveHead(head, xml),
      paths.restoreFifo,
      feeder.signal,
    );
    try {
      await deps.virsh(`restore clone ${name}`, ['restore', paths.restoreFifo], { timeout: 120_000 });
    } catch (err) {
      feeder.abort();
      await feeding.catch(() => undefined);
      throw err;
    }
    await feeding;
    restoreMs = Date.now() - restoreStarted;
    trace('clone restored');
    await fs.rm(paths.restoreFifo, { force: true });
    const nicStarted = Date.now();
    const nic = cloneNicXml(state.networkMode, randomMac());
    if (nic) {
      await fs.writeFile(paths.nicFile, nic, { mode: 0o600 });
      try {
        await deps.virsh(`hot-plug the NIC of clone ${name}`, [
          'attach-device',
          name,
          paths.nicFile,
          '--live',
        ]);
      } finally {
        await fs.rm(paths.nicFile, { force: true });
      }
    }
    nicMs = Date.now() - nicStarted;
    trace('clone nic');
    await writeIdentity(`${paths.wakeBase}.in`, encodeIdentity(identity));
    trace('clone identity');
  } catch (err) {
    await removeClone(deps, state.vmDir, name).catch(() => undefined);
    throw new CloneUnavailable(
      `could not start clone '${name}' of '${templateName}': ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  return { name, xml, timings: { checkMs: prepareMs, restoreMs, nicMs, totalMs: Date.now() - started } };
}

/**
 * Removes clone `name`: its domain (transient, so stopping it is removing
 * it), its overlays, FIFOs and socket, and its agent secret. Safe to call on
 * a half-made or already removed clone. The frozen clone-source volumes are
 * never touched.
 */
export async function removeClone(
  deps: Pick<CloneDeps, 'virsh' | 'volumes' | 'credentials'>,
  vmDir: string,
  name: string,
): Promise<void> {
  const paths = clonePaths(vmDir, name);
  try {
    await deps.virsh(`stop clone ${name}`, ['destroy', name]);
  } catch (err) {
    if (!(err instanceof NotFoundError) && !/not found|no domain/i.test((err as Error).message)) throw err;
  }
  await Promise.all([deps.volumes.remove(paths.root), deps.volumes.remove(paths.private)]);
  await Promise.all(
    [
      `${paths.wakeBase}.in`,
      `${paths.wakeBase}.out`,
      paths.restoreFifo,
      paths.displaySocket,
      paths.nicFile,
    ].map((file) => fs.rm(file, { force: true })),
  );
  await deps.credentials.agentSecrets.delete(name);
}

function randomMac(): string {
  return `52:54:00:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
}

async function mkfifos(files: string[]): Promise<void> {
  // Node has no mkfifo(3); coreutils' does it without a shell.
  await execa('mkfifo', ['-m', '0600', ...files], { timeout: 10_000 });
}

/** The identity line into the FIFO QEMU reads for the guest's wake port (docs/protocol.md). */
async function writeIdentity(fifo: string, line: Buffer): Promise<void> {
  // O_NONBLOCK: QEMU holds the read end; without it (QEMU gone) this fails at once instead of waiting.
  const handle = await fs.open(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
  try {
    const { bytesWritten } = await handle.write(line);
    if (bytesWritten !== line.length)
      throw new VmpError(`only ${bytesWritten} bytes of the identity reached ${fifo}`);
  } finally {
    await handle.close();
  }
}
