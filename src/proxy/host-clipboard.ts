import { MAX_CLIPBOARD_BYTES } from '../protocol/index.js';
import { InputError, ServiceUnavailableError, TimeoutError, VmpError } from '../util/errors.js';

/**
 * The host's clipboard through wl-clipboard (Wayland) or xclip (X11). The
 * MIME type can come from a guest, so it is checked against a strict grammar
 * before it reaches a command line.
 */

export const HOST_CLIPBOARD_TIMEOUT_MS = 5_000;
export const TEXT_MIME = 'text/plain;charset=utf-8';
const MIME_PATTERN =
  /^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}(?:;[a-z0-9_.-]{1,32}=[a-z0-9_.-]{1,32})?$/;

export function validateMimeType(mime: string): string {
  const lower = mime.toLowerCase();
  if (!MIME_PATTERN.test(lower)) {
    throw new InputError(
      `clipboard type ${JSON.stringify(mime)} is invalid: use a MIME type such as ${TEXT_MIME}`,
    );
  }
  return lower;
}

type Backend = { kind: 'wayland' } | { kind: 'x11' };

function backend(env: NodeJS.ProcessEnv): Backend {
  if (env.WAYLAND_DISPLAY) return { kind: 'wayland' };
  if (env.DISPLAY) return { kind: 'x11' };
  throw new ServiceUnavailableError('no host clipboard: neither WAYLAND_DISPLAY nor DISPLAY is set');
}

/** X11 selection target for a MIME type: text goes as UTF8_STRING, the type every X client offers. */
function x11Target(mime: string): string {
  return mime.startsWith('text/plain') ? 'UTF8_STRING' : mime.split(';')[0]!;
}

function describeFailure(tool: string, err: unknown): VmpError {
  const e = err as {
    timedOut?: boolean;
    code?: string;
    stderr?: string;
    shortMessage?: string;
    message?: string;
  };
  if (e.timedOut) return new TimeoutError(`${tool} did not finish within ${HOST_CLIPBOARD_TIMEOUT_MS} ms`);
  if (e.code === 'ENOENT') {
    return new ServiceUnavailableError(`${tool} is not installed (install wl-clipboard or xclip)`);
  }
  if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER' || /maxBuffer/i.test(e.message ?? '')) {
    return new InputError(`the host clipboard holds more than ${MAX_CLIPBOARD_BYTES} bytes, the limit`);
  }
  const detail = (e.stderr || e.shortMessage || e.message || String(err)).trim().split('\n')[0];
  return new VmpError(`${tool} failed: ${detail}`);
}

/** Reads the host clipboard as the given type (text by default). */
export async function readHostClipboard(
  mime: string = TEXT_MIME,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Buffer> {
  const { execa } = await import('execa');
  const type = validateMimeType(mime);
  const b = backend(env);
  const [tool, args] =
    b.kind === 'wayland'
      ? ['wl-paste', ['--no-newline', '--type', type.startsWith('text/plain') ? 'text/plain' : type]]
      : ['xclip', ['-selection', 'clipboard', '-o', '-t', x11Target(type)]];
  try {
    const result = await execa(tool, args, {
      env,
      encoding: 'buffer',
      timeout: HOST_CLIPBOARD_TIMEOUT_MS,
      maxBuffer: MAX_CLIPBOARD_BYTES,
      stdin: 'ignore',
    });
    return Buffer.from(result.stdout);
  } catch (err) {
    throw describeFailure(tool, err);
  }
}

/** Puts content into the host clipboard. */
export async function writeHostClipboard(
  data: Buffer,
  mime: string = TEXT_MIME,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const { execa } = await import('execa');
  const type = validateMimeType(mime);
  const b = backend(env);
  const [tool, args] =
    b.kind === 'wayland'
      ? ['wl-copy', ['--type', type]]
      : ['xclip', ['-selection', 'clipboard', '-i', '-t', x11Target(type)]];
  try {
    // Both tools fork a child that keeps serving the selection; it must not hold our pipes open.
    await execa(tool, args, {
      env,
      input: data,
      stdout: 'ignore',
      stderr: 'ignore',
      timeout: HOST_CLIPBOARD_TIMEOUT_MS,
    });
  } catch (err) {
    throw describeFailure(tool, err);
  }
}
