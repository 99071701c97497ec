import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configDir, DEFAULTS_FILE_NAME } from '../util/paths.js';
import { loadAddon, type BindingConnection } from './native-addon.js';
import { virshArgv } from './virsh-argv.js';

/** The connection when neither --connect, LIBVIRT_DEFAULT_URI nor the defaults file names one. */
export const DEFAULT_URI = 'qemu:///system';

/**
 * A binding connection opened before the modules that use it are loaded.
 * `list --json` starts it first thing (src/cli/fast-path.ts): libvirt's
 * connectOpen runs on one of libuv's threads (the test driver parses its whole
 * file there), so Node loads the command's modules meanwhile instead of before
 * (docs/architecture.md, "Start-up"). openHypervisor adopts it under the same
 * connect deadline and error wrapping as a connection it opens itself.
 *
 * Only where opening is safe before anything else is checked: a `test:///`
 * URI (libvirt's in-process driver: no daemon, no socket that could hang a
 * thread, nothing left behind) that every check of a connection URI accepts,
 * given by --connect or LIBVIRT_DEFAULT_URI as resolveConnection would take it,
 * with no environment setting that openHypervisor would check or act on first.
 * Anything else opens as before, through the virsh probe where one is due.
 */
export interface EarlyConnection {
  uri: string;
  native: BindingConnection;
  /** connectOpen, started; rejects as the binding does (an Error with libvirt's message). */
  opened: Promise<void>;
}

/**
 * The URIs opened early: test:/// and a plain path, a strict subset of what
 * validateConnectUri accepts (a unit test checks that), so a URI it would
 * reject is never opened here.
 */
export const EARLY_URI = /^test:\/\/\/[A-Za-z0-9._~/-]{0,400}$/;

/** Settings openHypervisor reads before opening (a backend, a connect deadline): present, no early open. */
const SETTINGS_CHECKED_FIRST = ['VMP_LIBVIRT_BACKEND', 'VMP_LIBVIRT_CONNECT_TIMEOUT_MS'];

let pending: EarlyConnection | undefined;

/**
 * The URI to open early for a `--connect` value (undefined when not given),
 * or undefined when this line should open as usual.
 */
export function earlyUri(connect: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (SETTINGS_CHECKED_FIRST.some((name) => env[name] !== undefined)) return undefined;
  // resolveConnection's order: --connect when given, else LIBVIRT_DEFAULT_URI; the defaults file is not read here.
  const uri = connect ?? env.LIBVIRT_DEFAULT_URI;
  return uri !== undefined && EARLY_URI.test(uri) ? uri : undefined;
}

/**
 * Loads the binding's native addon and starts opening `uri` when earlyUri allows it; does nothing
 * otherwise, or when the addon cannot be loaded (openHypervisor then finds it missing as before).
 */
export function openEarly(connect: string | undefined, env: NodeJS.ProcessEnv = process.env): void {
  const uri = earlyUri(connect, env);
  if (uri === undefined || pending) return;
  let native: BindingConnection;
  try {
    native = new (loadAddon(bindingPackageDir()).Hypervisor)({ uri });
  } catch {
    return;
  }
  const opened = native.connectOpen();
  // Reported when adopted; one never adopted (the command failed first) is left to process exit.
  opened.catch(() => undefined);
  pending = { uri, native, opened };
}

/** The connection opened early for this URI, handed over once; undefined when there is none. */
export function takeEarlyConnection(uri: string): EarlyConnection | undefined {
  if (pending?.uri !== uri) return undefined;
  const taken = pending;
  pending = undefined;
  return taken;
}

/**
 * The directory of the @unraid/libvirt package, found as Node's `import` finds it: the first
 * `node_modules/@unraid/libvirt` directory from this module's directory up to the root. This is
 * what `import.meta.resolve` walks before reading the package's exports, which cost `list` about
 * 2 ms of its start-up for a path the addon does not need (the addon is at a fixed place in the
 * package, where the package's own wrapper requires it).
 */
export function bindingPackageDir(from: string = import.meta.url): string {
  let dir = path.dirname(fileURLToPath(from));
  for (;;) {
    const candidate = path.join(dir, 'node_modules', '@unraid', 'libvirt');
    if (fs.statSync(candidate, { throwIfNoEntry: false })?.isDirectory()) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('@unraid/libvirt is not installed');
    dir = parent;
  }
}

/**
 * `virsh uri` against the daemon, started before the command's modules load:
 * the probe openHypervisor runs before it opens a daemon connection
 * (VirshHypervisor.probe: a killable process, so a hung daemon fails the
 * command at the connect deadline instead of hanging a libuv thread). `start
 * NAME` and `list --json` start it first thing (src/cli/fast-path.ts), and
 * load the binding's addon (libvirt itself, about 9 ms) while it runs; the
 * probe's 15-20 ms then pass while Node loads the modules instead of after.
 * The adopter judges its outcome exactly as the probe's own (same deadline,
 * same errors).
 *
 * Only the local daemons, named by --connect or LIBVIRT_DEFAULT_URI, or the
 * built-in default when no defaults file exists (one could name another
 * connection: reading it needs the TOML parser, which is what loads later);
 * with a libvirt setting in the environment (VMP_LIBVIRT_BACKEND,
 * VMP_LIBVIRT_CONNECT_TIMEOUT_MS) nothing starts early. Anything else probes as before.
 */
export interface EarlyProbe {
  uri: string;
  /** How the probe ended: its exit status and stderr, or the error spawning it. */
  done: Promise<ProbeEnd>;
  kill(): void;
}

export interface ProbeEnd {
  code: number | null;
  stderr: string;
  error?: NodeJS.ErrnoException;
}

/** The URIs probed early: a strict subset of what validateConnectUri accepts (a unit test checks). */
export const EARLY_PROBE_URI = /^qemu:\/\/\/(system|session)$/;

/** What the probe's stderr is kept of: a libvirt error is one or two lines. */
const MAX_PROBE_STDERR = 4096;

let pendingProbe: EarlyProbe | undefined;

/** The URI to probe early, or undefined when this line should probe as usual. */
export function earlyProbeUri(connect: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (SETTINGS_CHECKED_FIRST.some((name) => env[name] !== undefined)) return undefined;
  let uri = connect ?? env.LIBVIRT_DEFAULT_URI;
  if (uri === undefined) {
    if (fs.existsSync(path.join(configDir(), DEFAULTS_FILE_NAME))) return undefined;
    uri = DEFAULT_URI;
  }
  return EARLY_PROBE_URI.test(uri) ? uri : undefined;
}

/** Starts the probe (and loads the addon) when earlyProbeUri allows it; does nothing otherwise. */
export function probeEarly(connect: string | undefined, env: NodeJS.ProcessEnv = process.env): void {
  const uri = earlyProbeUri(connect, env);
  if (uri === undefined || pendingProbe) return;
  pendingProbe = startProbe(uri, env);
  try {
    loadAddon(bindingPackageDir());
  } catch {
    // Not installed or not built: openHypervisor finds that out as before.
  }
}

/** `virsh uri` for `uri`, with VirshHypervisor.virsh's command line and environment (no shell). */
export function startProbe(uri: string, env: NodeJS.ProcessEnv = process.env): EarlyProbe {
  const child = spawn('virsh', virshArgv(uri, ['uri']), {
    env: { ...env, LC_ALL: 'C' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    if (stderr.length < MAX_PROBE_STDERR) stderr += chunk.slice(0, MAX_PROBE_STDERR - stderr.length);
  });
  const done = new Promise<ProbeEnd>((resolve) => {
    child.once('error', (error: NodeJS.ErrnoException) => resolve({ code: null, stderr, error }));
    child.once('close', (code) => resolve({ code, stderr }));
  });
  return { uri, done, kill: () => child.kill('SIGKILL') };
}

/** The probe started early for this URI, handed over once; undefined when there is none. */
export function takeEarlyProbe(uri: string): EarlyProbe | undefined {
  if (pendingProbe?.uri !== uri) return undefined;
  const taken = pendingProbe;
  pendingProbe = undefined;
  return taken;
}

/** A probe nobody took (the command ended first, e.g. on bad input) is killed: nothing waits on it. */
export function dropEarlyProbe(): void {
  pendingProbe?.kill();
  pendingProbe = undefined;
}
