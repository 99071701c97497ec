import fs from 'node:fs/promises';
import path from 'node:path';
import { describeDomain } from '../libvirt/inspect.js';
import { networksOfDomainXml } from '../libvirt/networks.js';
import { ensureLogDir, installLogDir } from '../install/logs.js';
import type { VolumeStore } from '../storage/volumes.js';
import { InputError, VmpError } from '../util/errors.js';
import { trace } from '../util/trace.js';
import { requireOurVm } from './inventory.js';
import { checkNetworksForStart, type NetworkProbe } from './networks.js';
import type { Hypervisor } from './ports.js';
import { ensureWakePipe, primeWake, wakeAgent } from './state.js';

/**
 * `start`: a cold boot, or a resume from saved state. Its own module, apart
 * from the rest of the lifecycle, so that a start loads only what it runs
 * before libvirt's call: every module on the way is start-up time before the
 * VM is back (docs/architecture.md, "Start-up").
 */

export interface StartResult {
  /** `spice://127.0.0.1:PORT`; undefined only if libvirt assigned no SPICE port. */
  spiceUri: string | undefined;
  alreadyRunning: boolean;
  /** It came back from saved memory (and its agent was woken), not from a cold boot. */
  resumed: boolean;
  /** An app VM on a template whose root was kept at this cold start because it has snapshots. */
  keptRootForSnapshots?: boolean;
}

export async function startVm(
  hypervisor: Hypervisor,
  name: string,
  volumes?: VolumeStore,
  networkProbe?: NetworkProbe,
): Promise<StartResult> {
  trace('start: libvirt open');
  const description = await requireOurVm(hypervisor, name);
  if (description.role === 'template') {
    throw new InputError(
      `'${name}' is a template: make app VMs from it (create --template ${name}), change it with template update ${name}`,
    );
  }
  const { state } = await hypervisor.info(name);
  const alreadyRunning = state !== 'shut off' && state !== 'crashed';
  if (!alreadyRunning) {
    const xml = await hypervisor.xml(name);
    // Before anything is reset or started: libvirt would fail the start with its raw message.
    await checkNetworksForStart(hypervisor.uri, name, networksOfDomainXml(xml), networkProbe);
    await ensureConsoleLog(xml);
  }
  const resumed = !alreadyRunning && (await hypervisor.hasManagedSave(name));
  let keptRootForSnapshots = false;
  // A cold start of an app VM on a template begins from the template's disk again; a saved one resumes as it was.
  // Its snapshots live inside the root overlay, so while it has any the root is kept (docs/snapshots.md).
  if (!alreadyRunning && description.template && !resumed) {
    keptRootForSnapshots = (await hypervisor.snapshotList(name)).length > 0;
    if (!keptRootForSnapshots) {
      if (!volumes)
        throw new VmpError(`VM '${name}' is on a template: starting it needs the storage adapter`);
      // Loaded only here: the template code (its domain XML, config disk) is no part of a resume.
      const { resetAppVmRoot } = await import('./templates.js');
      await resetAppVmRoot({ hypervisor, volumes }, description);
    }
  }
  trace('start: checked');
  if (!alreadyRunning) {
    await ensureWakePipe(description);
    // The agent's connection died with the QEMU process that was saved; tell it as it resumes, not at its
    // next heartbeat: the byte waits in the FIFO for the restored guest (docs/protocol.md, "Resume").
    const primed = resumed ? await primeWake(description) : undefined;
    try {
      trace('start: libvirt start called');
      await hypervisor.start(name);
      trace('start: libvirt start returned');
    } finally {
      await primed?.close().catch(() => undefined);
    }
    if (resumed && !primed) await wakeAgent(description);
  }
  return {
    spiceUri: describeDomain(await hypervisor.xml(name)).spiceUri,
    alreadyRunning,
    resumed,
    ...(keptRootForSnapshots ? { keptRootForSnapshots } : {}),
  };
}

/**
 * The console log file (the domain's serial `<log file>`, under our state
 * directory) exists before virtlogd opens it: made by us, it is the user's
 * (mode 0600) and `logs --console` can read it even when a system virtlogd
 * appends to it; a missing directory would fail the start.
 */
async function ensureConsoleLog(xml: string): Promise<void> {
  const file = /<serial\b[\s\S]*?<log\b[^>]*\bfile=(['"])([^'"]+)\1[\s\S]*?<\/serial>/.exec(xml)?.[2];
  if (file === undefined || path.resolve(path.dirname(file)) !== installLogDir()) return;
  await ensureLogDir();
  await (await fs.open(file, 'a', 0o600)).close();
}
