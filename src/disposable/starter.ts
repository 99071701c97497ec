import { describeDomain } from '../libvirt/inspect.js';
import { VirshHypervisor } from '../libvirt/virsh.js';
import { AGENT_SECRET_SERVICE, PASSWORD_SERVICE } from '../service/ports.js';
import type { DisposableStarter, StartedDisposable, StartRequest } from '../service/disposable.js';
import {
  cleanUpUnfinished,
  isAlive,
  Journal,
  readJournal,
  type CleanupDeps,
  type JournalEntry,
} from '../service/journal.js';
import { requireTemplate } from '../service/templates.js';
import { trace } from '../util/trace.js';
import { AlreadyExistsError, CancelledError, NotFoundError } from '../util/errors.js';
import { clonePaths, CloneUnavailable, removeClone, startClone } from './clone.js';
import {
  prepareReadyState,
  readReadyState,
  readyPaths,
  readyStateFiles,
  readyStateProblem,
  removeReadyState,
  type CloneDeps,
  type ReadyState,
} from './ready-state.js';
import type { VmSpec } from '../spec/types.js';

/**
 * The fast starter of disposables (docs/disposables-clones.md): a clone of
 * the template's ready state, prepared first when there is none or it is
 * stale, and the cold boot whenever a clone cannot be had.
 */

/** The journaled name of a template's ready-state preparation: `TEMPLATE-ready`, the clone source's. */
export const PREPARE_OPERATION = 'prepare ready state';

export interface CloneStarterDeps extends CloneDeps {
  version: string;
  /** Removes what a killed preparation journaled before this one starts. */
  cleanup: CleanupDeps;
  /** Where create journals live (default: the state directory's). */
  journalDir?: string;
  /** Progress lines: preparing the ready state, why a disposable is booted instead. */
  log?: (line: string) => void;
}

/**
 * One disposable's start: `ready` says why a clone cannot be had (undefined:
 * it can), `clone` starts it (CloneUnavailable after removing what it made,
 * when it cannot), `boot` is the cold boot. Any other error, an abort
 * included, is the start's.
 */
export async function startWithFallback(
  name: string,
  steps: {
    ready: () => Promise<string | undefined>;
    clone: () => Promise<StartedDisposable>;
    boot: () => Promise<StartedDisposable>;
  },
  log: (line: string) => void,
): Promise<StartedDisposable> {
  const unready = await steps.ready();
  if (unready !== undefined) {
    log(`${name}: no clone (${unready}); booting it`);
    return steps.boot();
  }
  try {
    return await steps.clone();
  } catch (err) {
    if (!(err instanceof CloneUnavailable)) throw err;
    log(`${name}: no clone (${err.message}); booting it`);
    return steps.boot();
  }
}

/**
 * A DisposableStarter (src/service/disposable.ts) that restores a clone of the
 * template's ready state: journaled from its first step, its domain marked
 * `role="disposable"` with the owner from the moment it exists and then
 * defined persistently, so that removeDisposable and `gc` treat it as any
 * disposable. `fallback` (the cold boot) starts it whenever a clone cannot be
 * had.
 */
export class CloneStarter implements DisposableStarter {
  private readonly log: (line: string) => void;

  constructor(
    private readonly deps: CloneStarterDeps,
    private readonly fallback: DisposableStarter,
  ) {
    this.log = deps.log ?? (() => undefined);
  }

  start(request: StartRequest): Promise<StartedDisposable> {
    return startWithFallback(
      request.name,
      {
        ready: () => this.ensureReady(request),
        clone: () => this.startCloned(request),
        boot: () => this.fallback.start(request),
      },
      this.log,
    );
  }

  /** The savedAt of the template's ready state when it is fresh and the template is not running. */
  async readyStamp(template: string): Promise<string | undefined> {
    const { state, problem, busy } = await this.readiness(template);
    return problem === undefined && busy === undefined ? state?.savedAt : undefined;
  }

  /** A clone of the template's fresh ready state, or undefined: never a preparation or a cold boot. */
  async startPreloadable(
    request: StartRequest,
  ): Promise<(StartedDisposable & { readyStamp: string }) | undefined> {
    const stamp = await this.readyStamp(request.template);
    if (stamp === undefined) return undefined;
    try {
      return { ...(await this.startCloned(request)), readyStamp: stamp };
    } catch (err) {
      if (err instanceof CloneUnavailable) return undefined;
      throw err;
    }
  }

  /**
   * The template's ready state; `problem`: why it is missing or stale (it
   * must be prepared); `busy`: why it cannot be used or prepared just now.
   */
  private async readiness(templateName: string): Promise<{
    state: ReadyState | undefined;
    problem: string | undefined;
    busy: string | undefined;
    templateSpec: VmSpec;
  }> {
    const { hypervisor, configStore } = this.deps;
    const template = await requireTemplate(hypervisor, templateName);
    const templateSpec = await configStore.read(template.name);
    const state = await readReadyState(templateSpec).catch(() => undefined);
    const problem = state
      ? readyStateProblem(state, {
          name: template.name,
          disk: template.disk,
          ...(template.description.seal ? { seal: template.description.seal } : {}),
        })
      : `template '${template.name}' has no ready state`;
    // A template being updated changes the disk under its seal: neither clone nor prepare then.
    const busy =
      problem === undefined && (await hypervisor.info(template.name)).state !== 'shut off'
        ? `template '${template.name}' is running (being updated?)`
        : undefined;
    return { state, problem, busy, templateSpec };
  }

  /**
   * Undefined once the template has a fresh ready state, prepared here if it
   * had none or a stale one; else why not. Only one CLI prepares a template's
   * state at a time (its journal is the lock): the others boot meanwhile.
   */
  private async ensureReady(request: StartRequest): Promise<string | undefined> {
    const { hypervisor } = this.deps;
    const { problem, busy, templateSpec } = await this.readiness(request.template);
    if (problem === undefined) return busy;

    const source = readyPaths(templateSpec).source;
    const earlier = await readJournal(source, this.deps.journalDir).catch(() => 'damaged' as const);
    if (earlier === 'damaged') return `the journal of ${source} is damaged; run vm-provisioner gc`;
    if (earlier && isAlive(earlier.owner)) {
      return `the ready state of '${templateSpec.name}' is being prepared by pid ${earlier.owner.pid}`;
    }
    if (earlier) {
      try {
        await cleanUpUnfinished({ ...this.deps.cleanup, ...this.dirOption() }, source);
      } catch (err) {
        return `an earlier preparation of its ready state left what could not be removed: ${(err as Error).message}`;
      }
    }
    let journal: Journal;
    try {
      journal = await Journal.begin({
        vm: source,
        operation: PREPARE_OPERATION,
        connectUri: hypervisor.uri,
        ...this.dirOption(),
      });
    } catch (err) {
      if (err instanceof AlreadyExistsError) {
        return `the ready state of '${templateSpec.name}' is being prepared by another run`;
      }
      throw err;
    }
    try {
      await journal.step('ready-state', readyStateEntries(templateSpec));
      this.log(
        `preparing template ${templateSpec.name}'s ready state for fast disposables (once per template and update, about as long as booting it)`,
      );
      await prepareReadyState(this.deps, templateSpec.name, {
        version: this.deps.version,
        ...(request.signal ? { signal: request.signal } : {}),
      });
    } catch (err) {
      // prepareReadyState undoes its own steps as best it can; this makes sure, or leaves the journal for gc.
      const removed = await removeReadyState(this.deps, templateSpec).then(
        () => true,
        () => false,
      );
      if (removed) await journal.finish();
      if (err instanceof CancelledError) throw err;
      return `could not prepare the ready state of '${templateSpec.name}': ${(err as Error).message}`;
    }
    await journal.finish();
    this.log(`template ${templateSpec.name}'s ready state is prepared`);
    return undefined;
  }

  private dirOption(): { dir?: string } {
    return this.deps.journalDir ? { dir: this.deps.journalDir } : {};
  }

  /** The clone itself, journaled until its domain is defined with every file it has. */
  private async startCloned(request: StartRequest): Promise<StartedDisposable> {
    const { hypervisor, configStore } = this.deps;
    const { name } = request;
    trace('ready state checked');
    const state = await readReadyState(await configStore.read(request.template));
    if (!state) throw new CloneUnavailable(`template '${request.template}' has no ready state`);
    const paths = clonePaths(state.vmDir, name);
    const journal = await Journal.begin({
      vm: name,
      operation: 'run --disposable',
      connectUri: hypervisor.uri,
      ...this.dirOption(),
    });
    try {
      // Newest last: a cleanup removes the domain first, then its files.
      await journal.step('clone', [
        { kind: 'keyring', service: AGENT_SECRET_SERVICE, account: name },
        { kind: 'volume', path: paths.root },
        { kind: 'volume', path: paths.private },
        ...[
          `${paths.wakeBase}.in`,
          `${paths.wakeBase}.out`,
          paths.restoreFifo,
          paths.nicFile,
          paths.displaySocket,
        ].map((file): JournalEntry => ({ kind: 'file', path: file })),
        { kind: 'domain', name },
      ]);
      if (request.signal?.aborted) throw new CancelledError(`disposable ${name} was interrupted`);
      // The agent connects only once it has its identity, the last step of startClone.
      const bootedAfter = Date.now();
      const clone = await startClone(this.deps, request.template, name, { disposable: request.owner });
      try {
        // Persistent, so that its stop (the first step of its removal) does not also undefine it:
        // a removal killed half-way still finds the domain and, through it, every file.
        await hypervisor.define(clone.xml);
      } catch (err) {
        throw new CloneUnavailable(`could not define clone '${name}': ${(err as Error).message}`, {
          cause: err,
        });
      }
      await journal.finish();
      trace('clone defined');
      const live = describeDomain(await hypervisor.xml(name));
      if (request.signal?.aborted) throw new CancelledError(`disposable ${name} was interrupted`);
      return { name, bootedAfter, ...(live.spiceUri ? { spiceUri: live.spiceUri } : {}) };
    } catch (err) {
      await removeClone(this.deps, state.vmDir, name).catch(() => undefined);
      if (await hypervisor.exists(name).catch(() => false)) {
        await hypervisor.undefine(name).catch((e: Error) => {
          if (!(e instanceof NotFoundError)) throw e;
        });
      }
      await journal.finish();
      throw err;
    }
  }
}

/** The virsh runner clones and ready states use (restore, save, hot-plug), at `uri`. */
export function virshRunnerFor(uri: string): CloneDeps['virsh'] {
  const virsh = new VirshHypervisor(uri);
  return (operation, args, options) => virsh.virsh(operation, args, options ?? {});
}

/** Everything a preparation of `template`'s ready state may make, for its journal (domain last). */
function readyStateEntries(templateSpec: { name: string; vmDir: string }): JournalEntry[] {
  const p = readyPaths(templateSpec);
  return [
    { kind: 'keyring', service: PASSWORD_SERVICE, account: p.source },
    { kind: 'keyring', service: AGENT_SECRET_SERVICE, account: p.source },
    ...[p.record, ...readyStateFiles(p)].map((file): JournalEntry => ({ kind: 'file', path: file })),
    { kind: 'volume', path: p.root },
    { kind: 'volume', path: p.private },
    { kind: 'domain', name: p.source },
  ];
}
