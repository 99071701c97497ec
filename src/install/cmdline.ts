import { InputError } from '../util/errors.js';
import { KICKSTART_PATH_IN_INITRD } from './initrd.js';

/**
 * The kernel command line of the install boot. Everything on it is checked
 * against a strict grammar: the kernel splits on spaces and only knows double
 * quotes, so a value with neither needs no escaping and cannot add arguments.
 */

const HOST_RE =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])$/;
const PATH_RE = /^\/[A-Za-z0-9._~%+/-]*$/;
const ARG_RE = /^[A-Za-z0-9._,:=/+-]{1,256}$/;
const MAX_URL = 1024;

/**
 * Validates an install tree URL (http or https, host, optional port and path;
 * no credentials, query or fragment) and returns it normalised to end in '/'.
 */
export function validateTreeUrl(value: string): string {
  const rule =
    'must be an http(s) URL of host[:port]/path made of [A-Za-z0-9._~%+/-], without credentials, query or fragment';
  const fail = (): never => {
    throw new InputError(`install tree URL ${JSON.stringify(value)} ${rule}`);
  };
  if (value.length === 0 || value.length > MAX_URL || /[\s"'\\]/.test(value)) fail();
  const m = /^(https?):\/\/([^/?#@]+?)(?::(\d{1,5}))?(\/[^?#]*)?$/.exec(value);
  if (!m) return fail();
  const [, scheme, host, port, rawPath] = m;
  if (!HOST_RE.test(host!)) fail();
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) fail();
  const urlPath = rawPath ?? '/';
  if (!PATH_RE.test(urlPath) || urlPath.split('/').some((seg) => seg === '..' || seg === '.')) fail();
  const normalised = `${scheme}://${host}${port !== undefined ? `:${port}` : ''}${urlPath.endsWith('/') ? urlPath : `${urlPath}/`}`;
  if (normalised.length > MAX_URL) fail();
  return normalised;
}

export interface InstallCmdlineOptions {
  treeUrl: string;
  /** Serial console device the progress is read from. Default ttyS0. */
  console?: string;
  /** Further kernel arguments, each checked against [A-Za-z0-9._,:=/+-]. */
  extraArgs?: readonly string[];
}

/** `inst.ks=file:/ks.cfg inst.repo=<tree> inst.text console=ttyS0 [extra...]`. */
export function installKernelCmdline(options: InstallCmdlineOptions): string {
  const tree = validateTreeUrl(options.treeUrl);
  const consoleDev = options.console ?? 'ttyS0';
  if (!/^tty[A-Za-z]{1,4}\d{1,3}(,\d{3,7}(n8)?)?$/.test(consoleDev)) {
    throw new InputError(`console ${JSON.stringify(consoleDev)} must look like ttyS0 or ttyS0,115200n8`);
  }
  const extra = options.extraArgs ?? [];
  for (const arg of extra) {
    if (!ARG_RE.test(arg)) {
      throw new InputError(
        `kernel argument ${JSON.stringify(arg)} must be 1-256 characters of [A-Za-z0-9._,:=/+-]`,
      );
    }
  }
  return [
    `inst.ks=file:${KICKSTART_PATH_IN_INITRD}`,
    `inst.repo=${tree}`,
    'inst.text',
    `console=${consoleDev}`,
    ...extra,
  ].join(' ');
}
