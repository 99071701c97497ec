import { execArgvProblem } from '../protocol/index.js';
import { controlRequest } from '../proxy/control-client.js';
import { describeValue } from '../spec/validate.js';
import type { VolumeStore } from '../storage/volumes.js';
import { InputError } from '../util/errors.js';
import { requireOurVm, startVm } from './lifecycle.js';
import type { Hypervisor } from './ports.js';
import { resumeVm } from './state.js';

/**
 * `run NAME -- CMD [ARG...]`: make sure the VM runs (start it, resume its saved
 * state, or unpause it), then have its guest agent start the argv through the
 * host proxy (control op `run`, protocol message EXEC; docs/protocol.md).
 */

/** Default wait for the VM's agent to connect: a cold boot under software emulation fits. */
export const DEFAULT_RUN_WAIT_MS = 120_000;

/** The command, checked against the protocol's argv rule (docs/protocol.md, EXEC) before anything is started. */
export function validateRunArgv(argv: unknown): string[] {
  const problem = execArgvProblem(argv);
  if (problem) {
    const shown = Array.isArray(argv) ? describeValue(argv.map(String).join(' ')) : describeValue(argv);
    throw new InputError(`invalid command ${shown}: ${problem}`);
  }
  return argv as string[];
}

/** How the VM came to run: it already was, or `run` started, resumed or unpaused it. */
export type Readiness = 'running' | 'started' | 'resumed' | 'unpaused';

export interface ReadyVm {
  readiness: Readiness;
  /** The SPICE endpoint when `run` started or resumed it (for the viewer). */
  spiceUri?: string;
}

/** Brings the VM to running; NotFoundError for a name that is not ours, InputError for a template. */
export async function ensureRunning(
  hypervisor: Hypervisor,
  name: string,
  volumes?: VolumeStore,
): Promise<ReadyVm> {
  await requireOurVm(hypervisor, name);
  const { state } = await hypervisor.info(name);
  switch (state) {
    case 'running':
    case 'idle':
      return { readiness: 'running' };
    case 'paused':
      await resumeVm(hypervisor, name);
      return { readiness: 'unpaused' };
    case 'shut off':
    case 'crashed': {
      const started = await startVm(hypervisor, name, volumes);
      return {
        readiness: started.alreadyRunning ? 'running' : started.resumed ? 'resumed' : 'started',
        ...(started.spiceUri ? { spiceUri: started.spiceUri } : {}),
      };
    }
    default:
      throw new InputError(`VM '${name}' is ${state}: wait until it has stopped, then run again`);
  }
}

export interface RunOptions {
  /** The proxy's control socket (default: the user's). */
  socketPath?: string;
  /** How long to wait for the VM's agent to connect. */
  waitMs?: number;
  /**
   * Only a connection the agent made at or after this time (ms since the
   * epoch) will do: set when `run` started, resumed or unpaused the VM, whose
   * connection from before may still look alive at the proxy.
   */
  connectedSince?: number;
  /** Abandons the request (the wait for the agent included) when aborted. */
  signal?: AbortSignal;
}

/** Fails fast (ServiceUnavailableError, naming how to start it) when no proxy answers: before a VM is started for nothing. */
export async function requireProxy(options: RunOptions = {}): Promise<void> {
  await controlRequest(
    'status',
    {},
    { ...(options.socketPath ? { socketPath: options.socketPath } : {}), timeoutMs: 10_000 },
  );
}

/** Asks the proxy to have the VM's agent start argv; resolves with the guest pid. */
export async function runInVm(name: string, argv: string[], options: RunOptions = {}): Promise<number> {
  return (await startInVm(name, argv, options)).pid;
}

/**
 * As runInVm, and also the exec id: the proxy's `exec-exited` event with that
 * id (protocol version 3's EXEC_EXITED) says when the command has ended.
 */
export async function startInVm(
  name: string,
  argv: string[],
  options: RunOptions = {},
): Promise<{ pid: number; execId: number }> {
  const waitMs = options.waitMs ?? DEFAULT_RUN_WAIT_MS;
  return controlRequest<{ pid: number; execId: number }>(
    'run',
    { vm: name, argv, waitMs, ...(options.connectedSince ? { connectedSince: options.connectedSince } : {}) },
    // The proxy answers within the wait plus its own EXEC deadline (10 s).
    {
      ...(options.socketPath ? { socketPath: options.socketPath } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      timeoutMs: waitMs + 15_000,
    },
  );
}
