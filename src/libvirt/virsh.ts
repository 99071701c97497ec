import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import type {
  DomainDetails,
  DomainEvent,
  DomainEventStream,
  DomainInfo,
  DomainState,
  Hypervisor,
} from '../service/ports.js';
import { InputError, NotFoundError, ServiceUnavailableError, TimeoutError } from '../util/errors.js';
import { mapPooled } from '../util/pool.js';
import type { EarlyProbe } from './early-open.js';
import { libvirtError, virshMessage } from './errors.js';
import { virshArgv } from './virsh-argv.js';

/** Deadlines per kind of call; saving memory to disk is the slow one. */
export interface Timeouts {
  call: number;
  save: number;
  /**
   * Opening the connection (the probe, and the binding's connectOpen). Short
   * on its own, so that a dead or hung libvirtd is reported in seconds even
   * where calls may take minutes (create's define). Default: from
   * $VMP_LIBVIRT_CONNECT_TIMEOUT_MS, else DEFAULT_CONNECT_TIMEOUT_MS.
   */
  connect?: number;
}
export const DEFAULT_TIMEOUTS: Timeouts = { call: 30_000, save: 300_000 };

/**
 * node:child_process and node:readline, loaded at the first event stream (synchronously, as
 * `events` is): `list` and `start` through the binding never use them, and loading them cost
 * every command a few milliseconds of start-up (docs/architecture.md, "Start-up").
 */
const loadBuiltin = createRequire(import.meta.url);

/** Per-domain calls in flight at once when listing (see mapPooled): each is a virsh process here. */
const DOMAIN_CALLS_IN_FLIGHT = 4;

/** A healthy libvirtd answers `virsh uri` in well under a second, even on a loaded host. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
export const CONNECT_TIMEOUT_ENV = 'VMP_LIBVIRT_CONNECT_TIMEOUT_MS';

/** The connect deadline from $VMP_LIBVIRT_CONNECT_TIMEOUT_MS, or the default. InputError for a bad value. */
export function connectTimeoutFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[CONNECT_TIMEOUT_ENV];
  if (raw === undefined || raw === '') return DEFAULT_CONNECT_TIMEOUT_MS;
  if (!/^[0-9]{1,7}$/.test(raw) || Number(raw) < 1) {
    throw new InputError(
      `${CONNECT_TIMEOUT_ENV}=${JSON.stringify(raw).slice(0, 60)} is invalid: it must be a whole number of milliseconds from 1 to 9999999`,
    );
  }
  return Number(raw);
}

export function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

const STATES: readonly DomainState[] = [
  'running',
  'idle',
  'paused',
  'in shutdown',
  'shut off',
  'crashed',
  'pmsuspended',
  'no state',
];

/** `virsh dominfo` output to DomainInfo. */
export function parseDominfo(name: string, out: string): DomainInfo {
  const fields = new Map<string, string>();
  for (const line of out.split('\n')) {
    const at = line.indexOf(':');
    if (at > 0) fields.set(line.slice(0, at).trim(), line.slice(at + 1).trim());
  }
  const state = fields.get('State') as DomainState | undefined;
  const kib = (key: string): number => Number.parseInt((fields.get(key) ?? '').replace(/\s*KiB$/, ''), 10);
  return {
    name,
    state: state && STATES.includes(state) ? state : 'no state',
    maxMemoryKiB: kib('Max memory'),
    memoryKiB: kib('Used memory'),
    vcpus: Number.parseInt(fields.get('CPU(s)') ?? '0', 10),
    ...cpuTime(fields.get('CPU time')),
  };
}

/** dominfo's `CPU time: 12.3s` in ns (absent for a shut-off domain). */
function cpuTime(text: string | undefined): { cpuTimeNs?: number } {
  const m = /^(\d+(?:\.\d+)?)s$/.exec(text ?? '');
  return m ? { cpuTimeNs: Math.round(Number(m[1]) * 1e9) } : {};
}

const EVENT_LINE = /event '([^']+)' for domain '([^']+)': (\S+)\s*(.*)$/;

export function parseEventLine(line: string): DomainEvent | undefined {
  const match = EVENT_LINE.exec(line);
  if (!match || match[1] !== 'lifecycle') return undefined;
  return { domain: match[2]!, event: match[3]!, detail: match[4]!.trim() };
}

/**
 * A virsh run that failed, as the typed error its caller sees: it timed out, virsh is not installed
 * (spawn ENOENT), or libvirt's message from its stderr.
 */
function virshFailure(
  operation: string,
  failure: { timeoutMessage: string } | { code?: string; stderr: string },
  cause?: unknown,
): Error {
  const options = cause === undefined ? undefined : { cause };
  if ('timeoutMessage' in failure)
    return new TimeoutError(`${operation}: ${failure.timeoutMessage}`, options);
  if (failure.code === 'ENOENT') {
    return new ServiceUnavailableError(
      `${operation}: virsh is not installed (package libvirt-clients)`,
      options,
    );
  }
  return libvirtError(operation, virshMessage(failure.stderr), cause);
}

/** One line for a connection that was not answered in time: what it likely is, what to do. */
export function connectTimeoutMessage(timeout: number): string {
  return (
    `libvirtd did not answer within ${formatMs(timeout)}; it is hung or overloaded: ` +
    `restart it (systemctl restart libvirtd or virtqemud), or raise ${CONNECT_TIMEOUT_ENV}`
  );
}

/**
 * The whole Hypervisor port through `virsh` (execa, no shell). Used alone when
 * the native binding is not installed, and by the binding backend for the
 * calls the binding lacks.
 */
export class VirshHypervisor implements Hypervisor {
  readonly backend: 'binding' | 'virsh' = 'virsh';

  constructor(
    readonly uri: string,
    protected readonly timeouts: Timeouts = DEFAULT_TIMEOUTS,
  ) {}

  /** Runs one virsh command; failures become typed errors carrying libvirt's message. */
  async virsh(
    operation: string,
    args: string[],
    options: { input?: string; timeout?: number; timeoutMessage?: string } = {},
  ): Promise<string> {
    const timeout = options.timeout ?? this.timeouts.call;
    // Loaded at the first call: with the binding, `list` and `start` need no virsh at all.
    const { execa } = await import('execa');
    try {
      const result = await execa('virsh', virshArgv(this.uri, args), {
        timeout,
        // virsh blocked on a silent socket dies of SIGTERM; SIGKILL soon after if not.
        forceKillAfterDelay: 1000,
        input: options.input,
        // LC_ALL=C: the messages we classify and the dominfo fields we parse are the untranslated ones.
        env: { LC_ALL: 'C' },
        stripFinalNewline: false,
      });
      return result.stdout;
    } catch (err) {
      const e = err as { timedOut?: boolean; code?: string; stderr?: string; shortMessage?: string };
      throw virshFailure(
        operation,
        e.timedOut
          ? { timeoutMessage: options.timeoutMessage ?? `virsh did not answer within ${formatMs(timeout)}` }
          : { code: e.code, stderr: e.stderr ?? e.shortMessage ?? String(err) },
        err,
      );
    }
  }

  /** The deadline for opening a connection (see Timeouts.connect). */
  get connectTimeout(): number {
    return this.timeouts.connect ?? connectTimeoutFromEnv();
  }

  /**
   * Cheap round trip that fails fast (typed) when libvirtd is unreachable: a
   * dead socket fails at once, a daemon that accepts and never answers at the
   * connect deadline, whatever the call deadline is.
   */
  async probe(early?: EarlyProbe): Promise<void> {
    const timeout = this.connectTimeout;
    if (!early) {
      await this.virsh(`connect to ${this.uri}`, ['uri'], {
        timeout,
        timeoutMessage: connectTimeoutMessage(timeout),
      });
      return;
    }
    // Started before the command's modules loaded (src/libvirt/early-open.ts): judged as virsh() would.
    const operation = `connect to ${this.uri}`;
    let timer: NodeJS.Timeout | undefined;
    const end = await Promise.race([
      early.done,
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeout))),
    ]);
    clearTimeout(timer);
    if (end === undefined) {
      early.kill();
      throw virshFailure(operation, { timeoutMessage: connectTimeoutMessage(timeout) });
    }
    if (end.error) {
      throw virshFailure(operation, { code: end.error.code, stderr: end.error.message }, end.error);
    }
    if (end.code !== 0) {
      throw virshFailure(operation, { stderr: end.stderr || `virsh exited with status ${end.code}` });
    }
  }

  async listDomains(): Promise<string[]> {
    const out = await this.virsh('list domains', ['list', '--all', '--name']);
    return out
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.length > 0);
  }

  async listDomainDetails(): Promise<DomainDetails[]> {
    const details = await mapPooled(await this.listDomains(), DOMAIN_CALLS_IN_FLIGHT, async (name) => {
      try {
        const inactiveXml = await this.xml(name, { inactive: true });
        const { name: _, ...info } = await this.info(name);
        return { inactiveXml, info };
      } catch (err) {
        // Undefined by someone else while we were listing.
        if (err instanceof NotFoundError) return undefined;
        throw err;
      }
    });
    return details.filter((d): d is DomainDetails => d !== undefined);
  }

  async exists(name: string): Promise<boolean> {
    try {
      await this.virsh(`look up domain '${name}'`, ['domuuid', '--domain', name]);
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  async define(xml: string): Promise<void> {
    // A private temp file: virsh cannot open /dev/stdin when execa feeds input through a socket.
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'vmp-define-'));
    try {
      const file = path.join(dir, 'domain.xml');
      await fs.writeFile(file, xml, { mode: 0o600 });
      await this.virsh('define domain', ['define', '--file', file]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  async xml(name: string, options: { inactive?: boolean } = {}): Promise<string> {
    return this.virsh(`read XML of '${name}'`, [
      'dumpxml',
      '--domain',
      name,
      ...(options.inactive ? ['--inactive'] : []),
    ]);
  }

  async info(name: string): Promise<DomainInfo> {
    return parseDominfo(name, await this.virsh(`read info of '${name}'`, ['dominfo', '--domain', name]));
  }

  async start(name: string): Promise<void> {
    await this.virsh(`start '${name}'`, ['start', '--domain', name]);
  }

  async shutdown(name: string): Promise<void> {
    await this.virsh(`shut down '${name}'`, ['shutdown', '--domain', name, '--mode', 'acpi']);
  }

  async destroy(name: string): Promise<void> {
    await this.virsh(`stop '${name}'`, ['destroy', '--domain', name]);
  }

  async undefine(name: string): Promise<void> {
    await this.virsh(`undefine '${name}'`, [
      'undefine',
      '--domain',
      name,
      '--nvram',
      '--managed-save',
      '--snapshots-metadata',
    ]);
  }

  async managedSave(name: string): Promise<void> {
    await this.virsh(`save '${name}'`, ['managedsave', '--domain', name], { timeout: this.timeouts.save });
  }

  async hasManagedSave(name: string): Promise<boolean> {
    const out = await this.virsh(`read info of '${name}'`, ['dominfo', '--domain', name]);
    return /^Managed save:\s+yes/m.test(out);
  }

  async listManagedSaved(): Promise<string[]> {
    const out = await this.virsh('list domains with saved state', [
      'list',
      '--all',
      '--with-managed-save',
      '--name',
    ]);
    return out
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.length > 0);
  }

  async managedSaveRemove(name: string): Promise<void> {
    await this.virsh(`discard the saved state of '${name}'`, ['managedsave-remove', '--domain', name]);
  }

  async suspend(name: string): Promise<void> {
    await this.virsh(`pause '${name}'`, ['suspend', '--domain', name]);
  }

  async resume(name: string): Promise<void> {
    await this.virsh(`resume '${name}'`, ['resume', '--domain', name]);
  }

  async snapshotXml(name: string, snapshot: string): Promise<string> {
    return this.virsh(`read snapshot '${snapshot}' of '${name}'`, [
      'snapshot-dumpxml',
      '--domain',
      name,
      '--snapshotname',
      snapshot,
    ]);
  }

  async snapshotCreate(name: string, snapshot: string, description?: string): Promise<void> {
    const args = ['snapshot-create-as', '--domain', name, '--name', snapshot];
    if (description !== undefined) args.push('--description', description);
    await this.virsh(`snapshot '${name}'`, args, { timeout: this.timeouts.save });
  }

  async snapshotList(name: string): Promise<string[]> {
    const out = await this.virsh(`list snapshots of '${name}'`, [
      'snapshot-list',
      '--domain',
      name,
      '--name',
    ]);
    return out
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.length > 0);
  }

  async snapshotRevert(name: string, snapshot: string, options: { force?: boolean } = {}): Promise<void> {
    await this.virsh(
      `revert '${name}' to '${snapshot}'`,
      [
        'snapshot-revert',
        '--domain',
        name,
        '--snapshotname',
        snapshot,
        ...(options.force ? ['--force'] : []),
      ],
      {
        timeout: this.timeouts.save,
      },
    );
  }

  async snapshotDelete(name: string, snapshot: string): Promise<void> {
    await this.virsh(`delete snapshot '${snapshot}' of '${name}'`, [
      'snapshot-delete',
      '--domain',
      name,
      '--snapshotname',
      snapshot,
    ]);
  }

  events(domain?: string): DomainEventStream {
    // `--event lifecycle`: with `--all` this virsh subscribes but never prints.
    const args = ['--connect', this.uri, 'event', '--event', 'lifecycle', '--loop'];
    if (domain !== undefined) args.push('--domain', domain);
    // node's spawn, not execa: this is synchronous, and execa is loaded only when a call needs it.
    const { spawn } = loadBuiltin('node:child_process') as typeof import('node:child_process');
    const readline = loadBuiltin('node:readline') as typeof import('node:readline');
    const child = spawn('virsh', args, {
      env: { ...process.env, LC_ALL: 'C' },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    // No virsh: the stream just ends, as execa's `reject: false` had it.
    child.on('error', () => undefined);
    const lines = readline.createInterface({ input: child.stdout });
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      lines.close();
      child.kill();
    };
    return {
      close,
      async *[Symbol.asyncIterator](): AsyncIterator<DomainEvent> {
        try {
          for await (const line of lines) {
            const event = parseEventLine(line);
            if (event) yield event;
          }
        } finally {
          close();
        }
      },
    };
  }

  async console(name: string): Promise<number> {
    const { execa } = await import('execa');
    const result = await execa('virsh', ['--connect', this.uri, 'console', '--domain', name], {
      stdio: 'inherit',
      reject: false,
    });
    return result.exitCode ?? 1;
  }

  async close(): Promise<void> {
    // Each virsh call opens and closes its own connection.
  }
}
