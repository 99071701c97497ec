/**
 * Child process that makes ONE keyring call and exits. The parent
 * (keyring.ts) kills it when its deadline passes: a native keyring call that
 * waits on an unlock prompt or a silent D-Bus peer cannot be abandoned
 * in-process (the libuv thread stays busy and Node cannot exit), but a process
 * can always be killed.
 *
 * Protocol: one JSON KeyringRequest on stdin (secrets never go on argv, which
 * other users can read in /proc), one JSON KeyringResponse on stdout.
 *
 * This file must stay self-contained (node: built-ins only, the keyring module
 * loaded from the path the parent sends): under ts-jest the parent compiles it
 * on its own into a cache directory, where relative imports would not resolve.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

export type KeyringOp = 'set' | 'get' | 'delete' | 'list';

export interface KeyringRequest {
  /** Absolute path of @napi-rs/keyring's entry point, resolved by the parent. */
  module: string;
  service: string;
  op: KeyringOp;
  account?: string;
  secret?: string;
}

/** `locked`: the store needs unlocking; `unavailable`: no usable store; `failed`: anything else. */
export type KeyringFailureKind = 'locked' | 'unavailable' | 'failed';

export type KeyringValue = string | null | boolean | Array<{ account: string; secret: string }> | undefined;

export type KeyringResponse =
  { ok: true; value: KeyringValue } | { ok: false; kind: KeyringFailureKind; message: string };

interface NapiEntry {
  setPassword(password: string): void;
  getPassword(): string | null;
  deletePassword(): boolean;
}

interface NapiKeyring {
  Entry: new (service: string, account: string, options?: { linux?: { store?: string } }) => NapiEntry;
  findCredentials(service: string): Array<{ account: string; password: string }>;
}

/**
 * Unpinned, the binding silently falls back to the kernel keyring on Linux
 * when no Secret Service answers: a password stored there is lost on reboot
 * and `list` would not find it. Pinning makes that case an error instead.
 */
const ENTRY_OPTIONS = { linux: { store: 'secret-service' } };

export function classifyKeyringError(message: string): KeyringFailureKind {
  if (/is ?locked|unlock prompt|prompt was dismissed|locked collection/i.test(message)) return 'locked';
  if (
    /d-?bus|zbus|failed to connect|ServiceUnknown|no result found|secret service|platform|storage|keychain|not available/i.test(
      message,
    )
  ) {
    return 'unavailable';
  }
  return 'failed';
}

export function runKeyringRequest(keyring: NapiKeyring, req: KeyringRequest): KeyringResponse {
  try {
    const entry = (): NapiEntry => new keyring.Entry(req.service, req.account ?? '', ENTRY_OPTIONS);
    switch (req.op) {
      case 'set':
        entry().setPassword(req.secret ?? '');
        return { ok: true, value: undefined };
      case 'get':
        return { ok: true, value: entry().getPassword() };
      case 'delete':
        return { ok: true, value: entry().deletePassword() };
      case 'list': {
        // findCredentials takes no store option; on Linux it searches the Secret
        // Service only, and errors when the bus is gone. Constructing a pinned
        // entry first makes "no Secret Service" the same clear error as for
        // the other operations instead of a possibly empty list.
        if (process.platform === 'linux')
          new keyring.Entry(req.service, 'vm-provisioner-probe', ENTRY_OPTIONS);
        const found = keyring.findCredentials(req.service);
        return { ok: true, value: found.map((c) => ({ account: c.account, secret: c.password })) };
      }
      default:
        return { ok: false, kind: 'failed', message: `unknown keyring operation ${JSON.stringify(req.op)}` };
    }
  } catch (err) {
    const message = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim();
    return { ok: false, kind: classifyKeyringError(message), message };
  }
}

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  let req: KeyringRequest;
  try {
    req = JSON.parse(Buffer.concat(chunks).toString('utf8')) as KeyringRequest;
  } catch {
    // V8 quotes part of the input in JSON errors, and the input may hold a secret.
    throw new Error('the request on stdin is not valid JSON');
  }
  if (req.op === 'delete') {
    // We share the CLI's process group, so a Ctrl+C reaches us too. A delete is
    // the CLI removing what an interrupted create made: it must run to the end
    // (the parent's deadline still bounds it). Any other call may die with the
    // CLI; the parent reports that as the interrupt.
    process.on('SIGINT', () => undefined);
    process.on('SIGTERM', () => undefined);
  }
  const keyring = createRequire(import.meta.url)(req.module) as NapiKeyring;
  process.stdout.write(JSON.stringify(runKeyringRequest(keyring, req)));
}

// Only when run as a program, so the parent and tests can import the helpers above.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`keyring worker: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
