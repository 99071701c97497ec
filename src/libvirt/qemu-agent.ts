import { execa } from 'execa';
import { NotRunningError, TimeoutError, VmpError } from '../util/errors.js';
import { libvirtError, virshMessage } from './errors.js';

/**
 * The QEMU guest agent (qemu-guest-agent in the guest, on the domain's
 * `org.qemu.guest_agent.0` channel), through `virsh qemu-agent-command`. The
 * host uses it to run a command in a template being updated and to read one
 * small status file of an app VM; it is never given anything from a guest to run.
 */

export interface GuestAgentOptions {
  /** How long one request may take in the guest agent, in seconds (virsh's own bound). */
  agentTimeoutSeconds?: number;
}

export async function qemuAgentCommand(
  uri: string,
  domain: string,
  request: object,
  options: GuestAgentOptions = {},
): Promise<unknown> {
  const seconds = options.agentTimeoutSeconds ?? 5;
  try {
    const { stdout } = await execa(
      'virsh',
      [
        '--connect',
        uri,
        'qemu-agent-command',
        '--domain',
        domain,
        '--timeout',
        String(seconds),
        JSON.stringify(request),
      ],
      { timeout: (seconds + 10) * 1000, env: { LC_ALL: 'C' } },
    );
    return (JSON.parse(stdout) as { return: unknown }).return;
  } catch (err) {
    const e = err as { timedOut?: boolean; stderr?: string; shortMessage?: string };
    if (e.timedOut)
      throw new TimeoutError(`guest agent of '${domain}' did not answer within ${seconds + 10} s`);
    const message = virshMessage(e.stderr ?? e.shortMessage ?? String(err));
    if (/Guest agent is not responding|QEMU guest agent is not connected|not connected/i.test(message)) {
      throw new NotRunningError(`the QEMU guest agent of '${domain}' is not answering (yet): ${message}`);
    }
    throw libvirtError(`guest agent command in '${domain}'`, message, err);
  }
}

/** Whether the guest agent answers now. */
export async function guestAgentReady(uri: string, domain: string): Promise<boolean> {
  try {
    await qemuAgentCommand(uri, domain, { execute: 'guest-ping' }, { agentTimeoutSeconds: 2 });
    return true;
  } catch (err) {
    if (err instanceof NotRunningError || err instanceof TimeoutError) return false;
    if (err instanceof VmpError && /not responding|not connected|timeout/i.test(err.message)) return false;
    throw err;
  }
}

export interface GuestExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs argv in the guest (as root, no shell unless argv names one) and waits for it, at most `timeoutMs`. */
export async function guestExec(
  uri: string,
  domain: string,
  argv: string[],
  timeoutMs: number,
): Promise<GuestExecResult> {
  const [file, ...args] = argv;
  if (file === undefined) throw new VmpError('guest-exec needs a command');
  const started = (await qemuAgentCommand(uri, domain, {
    execute: 'guest-exec',
    arguments: { path: file, arg: args, 'capture-output': true },
  })) as { pid: number };
  const deadline = Date.now() + timeoutMs;
  for (let wait = 100; ; wait = Math.min(wait * 2, 2000)) {
    const status = (await qemuAgentCommand(uri, domain, {
      execute: 'guest-exec-status',
      arguments: { pid: started.pid },
    })) as { exited: boolean; exitcode?: number; signal?: number; 'out-data'?: string; 'err-data'?: string };
    if (status.exited) {
      return {
        exitCode: status.exitcode ?? 128 + (status.signal ?? 0),
        stdout: Buffer.from(status['out-data'] ?? '', 'base64').toString('utf8'),
        stderr: Buffer.from(status['err-data'] ?? '', 'base64').toString('utf8'),
      };
    }
    if (Date.now() >= deadline) {
      throw new TimeoutError(
        `'${argv.join(' ')}' in '${domain}' did not finish within ${Math.round(timeoutMs / 1000)} s`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/** Up to `maxBytes` of a guest file, or undefined if it does not exist. */
export async function guestReadFile(
  uri: string,
  domain: string,
  file: string,
  maxBytes: number,
): Promise<string | undefined> {
  let handle: number;
  try {
    handle = (await qemuAgentCommand(uri, domain, {
      execute: 'guest-file-open',
      arguments: { path: file, mode: 'r' },
    })) as number;
  } catch (err) {
    if (err instanceof VmpError && /No such file|not found|Failed to open/i.test(err.message))
      return undefined;
    throw err;
  }
  try {
    const read = (await qemuAgentCommand(uri, domain, {
      execute: 'guest-file-read',
      arguments: { handle, count: maxBytes },
    })) as { 'buf-b64': string };
    return Buffer.from(read['buf-b64'], 'base64').toString('utf8');
  } finally {
    await qemuAgentCommand(uri, domain, { execute: 'guest-file-close', arguments: { handle } }).catch(
      () => undefined,
    );
  }
}
