import type { ArgumentsCamelCase } from 'yargs';
import { followEvents, controlRequest } from '../proxy/control-client.js';
import { keyringCredentialStores } from '../secrets/credentials.js';
import {
  chooseTemplate,
  ColdBootStarter,
  describeEnd,
  DisposableWatch,
  flatpakArgv,
  withDisposable,
  type DisposableContext,
  type DisposableEnd,
} from '../service/disposable.js';
import { CloneStarter, virshRunnerFor } from '../disposable/starter.js';
import { checkHostFile } from '../service/files.js';
import { ourDomains } from '../service/inventory.js';
import { hasGraphicalSession, openViewer } from '../service/lifecycle.js';
import { requireProxy, startInVm, validateRunArgv } from '../service/run.js';
import { requireTemplate } from '../service/templates.js';
import { loadUserDefaults } from '../spec/defaults-file.js';
import { DEFAULT_DISPOSABLE_PRELOAD } from '../spec/validate.js';
import { FileConfigStore } from '../spec/store.js';
import { LibvirtVolumeStore } from '../storage/volumes.js';
import { CancelledError, InputError, ServiceUnavailableError, VmpError } from '../util/errors.js';
import { packageVersion } from '../util/package-info.js';
import { trace } from '../util/trace.js';
import type { RunArgs } from './commands/run.js';
import { cleanupDeps } from './commands/gc.js';
import { runTimeoutSeconds } from './commands/run.js';
import { withHypervisor } from './hypervisor.js';
import { openShown } from './open-output.js';

/** How long a preloaded disposable's agent may take to connect and start its first process. */
const PRELOAD_WAIT_MS = 60_000;

/** SIGTERM's conventional exit status (128 + 15). */
class TerminatedError extends CancelledError {
  override readonly exitCode: number = 143;
}

/** What both `run --disposable` and `open --disposable` take from their command lines. */
export interface DisposableShellArgs {
  connect: string | undefined;
  template?: string;
  socket?: string;
  viewer: boolean;
}

/** What the action of a disposable session is handed. */
export interface DisposableSession {
  vm: DisposableContext;
  socket: { socketPath?: string };
  /** The proxy's view of the VM: feed `started` the exec id of the command whose exit ends it. */
  watch: DisposableWatch;
  /** Resolves with what ended the disposable (its last window, its command, the VM) or a signal's error. */
  ended: Promise<DisposableEnd | Error>;
  /** Aborted once the disposable has ended: waits for its agent are abandoned with it. */
  abandon: AbortSignal;
}

/**
 * The shell around withDisposable (src/service/disposable.ts) that `run
 * --disposable` and `open --disposable` share: chooses the template, wires
 * Ctrl+C and SIGTERM to the disposable's end, follows the proxy's events for
 * its windows and command, opens the viewer, and hands `action` the running
 * disposable. The action returns what ended it (usually by awaiting `ended`).
 */
export async function inDisposable(
  argv: DisposableShellArgs,
  action: (session: DisposableSession) => Promise<DisposableEnd>,
): Promise<DisposableEnd> {
  const socket = argv.socket ? { socketPath: argv.socket } : {};
  const defaults = await loadUserDefaults();
  const preloadCount =
    defaults?.disposableClones === false ? 0 : (defaults?.disposablePreload ?? DEFAULT_DISPOSABLE_PRELOAD);

  // Installed before anything is made: from here on a signal ends the disposable, never the process.
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received === undefined) {
      process.stderr.write(
        `\n${signal === 'SIGINT' ? 'interrupted (Ctrl+C)' : `received ${signal}`}: removing the disposable\n`,
      );
    }
    received ??= signal;
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    trace('loaded');
    return await withHypervisor(argv.connect, async (hypervisor) => {
      trace('libvirt open');
      const templates = (await ourDomains(hypervisor))
        .filter((d) => d.role === 'template')
        .map((d) => d.name);
      const chosen = chooseTemplate(
        argv.template,
        defaults?.defaultTemplate !== undefined
          ? { name: defaults.defaultTemplate, source: defaults.source }
          : undefined,
        templates,
      );
      // An unknown template fails here, in one line, with nothing made; then no proxy, before any VM.
      trace('template chosen');
      await requireTemplate(hypervisor, chosen.name);
      await requireProxy(socket);
      trace('template and proxy checked');
      const configStore = new FileConfigStore();
      const volumes = new LibvirtVolumeStore(hypervisor.uri);
      const credentials = keyringCredentialStores();
      const cleanup = cleanupDeps(hypervisor);
      const coldBoot = new ColdBootStarter({
        hypervisor,
        volumes,
        configStore,
        credentials,
        version: packageVersion(),
      });
      try {
        return await withDisposable(
          {
            // A clone of the template's ready state (prepared first if need be), else a cold boot;
            // only the cold boot with `disposable_clones = false`.
            starter:
              defaults?.disposableClones === false
                ? coldBoot
                : new CloneStarter(
                    {
                      hypervisor,
                      volumes,
                      configStore,
                      credentials,
                      virsh: virshRunnerFor(hypervisor.uri),
                      version: packageVersion(),
                      cleanup: cleanup.deps,
                      log: (line) => process.stderr.write(`${line}\n`),
                    },
                    coldBoot,
                  ),
            remove: {
              hypervisor,
              volumes,
              configStore,
              credentials,
              journal: cleanup.deps,
              volumesFor: (uri) => new LibvirtVolumeStore(uri),
              forgetAtProxy: async (name) => {
                await controlRequest('forget', { vm: name }, { ...socket, timeoutMs: 5_000 });
              },
            },
            template: chosen.name,
            signal: controller.signal,
            // Running clones kept ready (docs/disposables-clones.md, "Preloaded disposables"); none without clones.
            ...(preloadCount === 0
              ? {}
              : {
                  preload: {
                    count: preloadCount,
                    warm: async (name: string, since: number, signal: AbortSignal) => {
                      await startInVm(name, ['true'], {
                        ...socket,
                        waitMs: PRELOAD_WAIT_MS,
                        connectedSince: since,
                        signal,
                      });
                    },
                  },
                }),
            log: (line) => process.stderr.write(`${line}\n`),
          },
          async (vm) => {
            const watch = new DisposableWatch(vm.name);
            let finish: (end: DisposableEnd | Error) => void = () => undefined;
            const ended = new Promise<DisposableEnd | Error>((resolve) => (finish = resolve));
            const following = new AbortController();
            vm.signal.addEventListener('abort', () => finish(new CancelledError('interrupted')), {
              once: true,
            });
            // Followed before the command starts: its exit or first window cannot be missed.
            const follow = followEvents({
              ...socket,
              vm: vm.name,
              signal: following.signal,
              onEvent: (event) => {
                const end = watch.apply(event as unknown as Parameters<DisposableWatch['apply']>[0]);
                if (end) finish(end);
                // Its window is up: now the next one's restore no longer competes with it.
                else if (watch.windowCount > 0) vm.preloadNext();
              },
            }).catch((err: Error) =>
              finish(new ServiceUnavailableError(`lost the window proxy (${err.message})`)),
            );
            let viewerPid: number | undefined;
            try {
              if (argv.viewer && vm.started.spiceUri && hasGraphicalSession()) {
                viewerPid = await openViewer(vm.started.spiceUri, vm.name);
              }
              // Whatever ends the disposable first also abandons the wait for its agent.
              const abandon = new AbortController();
              void ended.then((end) =>
                abandon.abort(end instanceof Error ? end : new VmpError(`${vm.name}: ${describeEnd(end)}`)),
              );
              const end = await action({ vm, socket, watch, ended, abandon: abandon.signal });
              process.stderr.write(`${vm.name}: ${describeEnd(end)}; removing it\n`);
              return end;
            } finally {
              following.abort();
              await follow;
              // The viewer's connection dies with the VM: do not leave its error dialog behind.
              if (viewerPid !== undefined) {
                try {
                  process.kill(viewerPid, 'SIGTERM');
                } catch {
                  // already gone
                }
              }
            }
          },
        );
      } finally {
        await cleanup.close();
      }
    });
  } catch (err) {
    if (!(err instanceof CancelledError)) throw err;
    if (received === 'SIGTERM') throw new TerminatedError('terminated (SIGTERM): the disposable was removed');
    if (received === 'SIGINT') throw new CancelledError('interrupted (Ctrl+C): the disposable was removed');
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The end the action waits for; an error (a signal, a lost proxy) is thrown. */
async function endOf(session: DisposableSession): Promise<DisposableEnd> {
  const end = await session.ended;
  if (end instanceof Error) throw end;
  return end;
}

/**
 * `run --disposable [--template T] (-- CMD... | --flatpak ID)`: checks every
 * input before anything is made, then runs the command in a disposable that
 * ends when the command exits or its last window closes.
 */
export async function runDisposable(argv: ArgumentsCamelCase<RunArgs>): Promise<void> {
  const words = [
    ...(argv.name !== undefined ? [argv.name] : []),
    ...(argv.command ?? []),
    ...(argv['--'] ?? []),
  ].map(String);
  if (argv.flatpak !== undefined && words.length > 0) {
    throw new InputError(`run --disposable: give either -- CMD or --flatpak ID, not both`);
  }
  if (argv.flatpak === undefined && words.length === 0) {
    throw new InputError('run --disposable: name a command after --, e.g. run --disposable -- xterm');
  }
  const command = argv.flatpak !== undefined ? flatpakArgv(argv.flatpak) : validateRunArgv(words);
  const seconds = runTimeoutSeconds(argv.timeout);
  const end = await inDisposable(argv, async (session) => {
    const { vm } = session;
    trace('run sent');
    const started = await startInVm(vm.name, command, {
      waitMs: seconds * 1000,
      ...session.socket,
      connectedSince: vm.started.bootedAfter,
      signal: session.abandon,
    });
    trace('run answered');
    process.stdout.write(`${vm.name}: started ${command[0]} (pid ${started.pid} in the VM)\n`);
    return session.watch.started(started.execId) ?? (await endOf(session));
  });
  if (end.reason === 'exited' && end.how === 'exited' && end.code !== 0) process.exitCode = 1;
}

/**
 * `open --disposable FILE [--template T] [--writeback]`: the file in a fresh
 * disposable, opened with its default handler. `xdg-open` hands the file over
 * and exits at once, so the disposable ends when its last window closes (or
 * on Ctrl+C or SIGTERM), not when the opener exits. With `--writeback`, each
 * version saved in it replaces the host file until then.
 */
export async function openDisposable(
  argv: DisposableShellArgs & { file: string; writeback: boolean; timeout: unknown },
): Promise<void> {
  const file = await checkHostFile(argv.file);
  const seconds = runTimeoutSeconds(argv.timeout);
  await inDisposable(argv, async (session) => {
    const { vm } = session;
    const options = {
      waitMs: seconds * 1000,
      ...session.socket,
      connectedSince: vm.started.bootedAfter,
      signal: session.abandon,
    };
    await openShown(vm.name, file, { ...options, writeback: argv.writeback }, 'it ends');
    return endOf(session);
  });
}
