import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAddon, type BindingConnection } from './native-addon.js';

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
