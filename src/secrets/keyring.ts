import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SecretStore } from '../service/ports.js';
import { InputError, ServiceUnavailableError, TimeoutError, VmpError } from '../util/errors.js';
import type { KeyringOp, KeyringRequest, KeyringResponse, KeyringValue } from './keyring-worker.js';

/**
 * The OS keyring (Secret Service on Linux, Keychain on macOS) behind the
 * SecretStore port. Every call runs in a short-lived child process
 * (keyring-worker.ts) that is SIGKILLed at the deadline: a keyring waiting for
 * an unlock prompt, or a Secret Service that stopped answering, can never keep
 * the CLI from finishing or exiting.
 */

export const DEFAULT_KEYRING_TIMEOUT_MS = 5000;
/** Overrides the default deadline of every keyring call, in milliseconds. */
export const KEYRING_TIMEOUT_ENV = 'VMP_KEYRING_TIMEOUT_MS';

export interface KeyringStoreOptions {
  /** Deadline for each call; default: $VMP_KEYRING_TIMEOUT_MS, else 5000. */
  timeoutMs?: number;
}

/** The deadline from $VMP_KEYRING_TIMEOUT_MS, or the default. Throws InputError for a bad value. */
export function keyringTimeoutFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[KEYRING_TIMEOUT_ENV];
  if (raw === undefined || raw === '') return DEFAULT_KEYRING_TIMEOUT_MS;
  if (!/^[0-9]{1,7}$/.test(raw) || Number(raw) < 1) {
    throw new InputError(
      `${KEYRING_TIMEOUT_ENV}=${JSON.stringify(raw)} is invalid: it must be a whole number of milliseconds from 1 to 9999999`,
    );
  }
  return Number(raw);
}

export class KeyringSecretStore implements SecretStore {
  readonly timeoutMs: number;

  constructor(
    readonly serviceName: string,
    options: KeyringStoreOptions = {},
  ) {
    if (serviceName.length === 0) throw new InputError('keyring service name is empty: it must not be');
    const timeoutMs = options.timeoutMs ?? keyringTimeoutFromEnv();
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
      throw new InputError(
        `keyring timeout ${String(timeoutMs)} ms is invalid: it must be a positive whole number`,
      );
    }
    this.timeoutMs = timeoutMs;
  }

  async set(account: string, secret: string): Promise<void> {
    checkAccount(account);
    if (secret.length === 0) throw new InputError(`secret for ${account} is empty: it must not be`);
    await this.call('set', account, secret);
  }

  async get(account: string): Promise<string | null> {
    checkAccount(account);
    const value = await this.call('get', account);
    return typeof value === 'string' ? value : null;
  }

  async delete(account: string): Promise<boolean> {
    checkAccount(account);
    return (await this.call('delete', account)) === true;
  }

  async list(): Promise<Array<{ account: string; secret: string }>> {
    const value = await this.call('list');
    const found = Array.isArray(value) ? value : [];
    return [...found].sort((a, b) => (a.account < b.account ? -1 : a.account > b.account ? 1 : 0));
  }

  private async call(op: KeyringOp, account?: string, secret?: string): Promise<KeyringValue> {
    const request: KeyringRequest = {
      module: keyringModulePath(),
      service: this.serviceName,
      op,
      account,
      secret,
    };
    const what = account === undefined ? `${op} ${this.serviceName}` : `${op} ${this.serviceName}/${account}`;
    const script = await workerScript();
    // One deadline for the whole call, retries and the collection check included.
    const started = Date.now();
    const remaining = (): number => this.timeoutMs - (Date.now() - started);
    for (;;) {
      const left = remaining();
      if (left <= 0) throw keyringTimeoutError(this.timeoutMs, what);
      const response = await runWorker(script, request, left, what, this.timeoutMs);
      if (response.ok) {
        // An empty answer from a Secret Service without a default collection is
        // not "no entries": create could not store one there either, so both
        // must report the same "no usable Secret Service".
        const empty =
          response.value === null || (Array.isArray(response.value) && response.value.length === 0);
        if ((op === 'get' || op === 'list') && empty)
          await requireDefaultCollection(what, remaining(), this.timeoutMs);
        return response.value;
      }
      // The library's own D-Bus reply timeout (about 2 s) is shorter than ours:
      // a stuck daemon is a timeout, not a missing service. Ask again until our
      // deadline, so the documented TimeoutError comes at the documented time.
      if (NO_REPLY.test(response.message)) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(100, Math.max(0, remaining()))));
        continue;
      }
      switch (response.kind) {
        case 'locked':
          throw new ServiceUnavailableError(
            `the keyring is locked (${what}: ${response.message}); unlock it (log in to your desktop, or unlock the "Login" keyring in Passwords and Keys) and try again`,
          );
        case 'unavailable':
          throw unavailableError(what, response.message);
        default:
          throw new VmpError(`keyring ${what} failed: ${response.message}`);
      }
    }
  }
}

/** libdbus's words for a method call whose reply did not come in time. */
const NO_REPLY = /Did not receive a reply|org\.freedesktop\.DBus\.Error\.(?:NoReply|Timeout)/i;

function unavailableError(what: string, detail: string): ServiceUnavailableError {
  return new ServiceUnavailableError(
    `no usable Secret Service (${what}: ${detail}); run gnome-keyring or KWallet in your desktop session, with DBUS_SESSION_BUS_ADDRESS set, and try again`,
  );
}

function keyringTimeoutError(timeoutMs: number, what: string): TimeoutError {
  return new TimeoutError(
    `the keyring did not answer within ${formatMs(timeoutMs)} (${what}); it may be locked and waiting for an unlock prompt, or the Secret Service is stuck: unlock or restart it, or raise ${KEYRING_TIMEOUT_ENV}`,
  );
}

/**
 * Throws "no usable Secret Service" when the Secret Service has no default
 * collection (what a D-Bus-activated gnome-keyring without a login keyring
 * looks like: reads find nothing, every store fails). @napi-rs/keyring has
 * no read-only way to ask, so this asks the service itself with gdbus
 * (glib2, present wherever gnome-keyring is); without gdbus the check is
 * skipped. Linux only: elsewhere there is no Secret Service.
 */
async function requireDefaultCollection(what: string, leftMs: number, timeoutMs: number): Promise<void> {
  if (process.platform !== 'linux') return;
  if (leftMs <= 0) throw keyringTimeoutError(timeoutMs, what);
  const result = await new Promise<{ out: string; timedOut: boolean; failed: boolean }>((resolve) => {
    execFile(
      'gdbus',
      [
        'call',
        '--session',
        '--dest',
        'org.freedesktop.secrets',
        '--object-path',
        '/org/freedesktop/secrets',
        '--method',
        'org.freedesktop.Secret.Service.ReadAlias',
        'default',
      ],
      { timeout: leftMs, killSignal: 'SIGKILL', encoding: 'utf8', env: process.env },
      (err, stdout) => {
        const e = err as (Error & { killed?: boolean }) | null;
        resolve({ out: stdout, timedOut: e?.killed === true, failed: e !== null });
      },
    );
  });
  if (result.timedOut) throw keyringTimeoutError(timeoutMs, what);
  // Not conclusive (no gdbus, an unusual service): the read's own answer stands.
  if (result.failed) return;
  if (/objectpath '\/'/.test(result.out)) {
    throw unavailableError(what, 'the Secret Service has no default collection');
  }
}

function checkAccount(account: string): void {
  // The account is a VM name; the name grammar lives in src/spec. Here only
  // what would corrupt a keyring lookup or a one-line message is refused.
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (account.length === 0 || /[\u0000-\u001f\u007f]/.test(account)) {
    throw new InputError(
      `keyring account ${JSON.stringify(account)} is invalid: it must be non-empty with no control characters`,
    );
  }
}

let cachedModulePath: string | undefined;
function keyringModulePath(): string {
  cachedModulePath ??= createRequire(import.meta.url).resolve('@napi-rs/keyring');
  return cachedModulePath;
}

let cachedWorker: Promise<string> | undefined;

/**
 * The worker program to run. From dist/ it is the compiled sibling
 * keyring-worker.js. From TypeScript sources (ts-jest, tsx) Node cannot run
 * the .ts file, so it is transpiled with the `typescript` dev dependency into
 * node_modules/.cache/vm-provisioner/, keyed by its content hash (inside the
 * project, not a shared /tmp where another user could plant a file).
 */
function workerScript(): Promise<string> {
  cachedWorker ??= locateWorker().catch((err: unknown) => {
    cachedWorker = undefined;
    throw err;
  });
  return cachedWorker;
}

async function locateWorker(): Promise<string> {
  const here = fileURLToPath(import.meta.url);
  const dir = path.dirname(here);
  if (here.endsWith('.js')) {
    const compiled = path.join(dir, 'keyring-worker.js');
    if (!fs.existsSync(compiled)) {
      throw new VmpError(
        `the keyring helper ${compiled} is missing; reinstall vm-provisioner (or run npm run build)`,
      );
    }
    return compiled;
  }
  const sourcePath = path.join(dir, 'keyring-worker.ts');
  const source = fs.readFileSync(sourcePath, 'utf8');
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const cacheDir = path.resolve(dir, '..', '..', 'node_modules', '.cache', 'vm-provisioner');
  const target = path.join(cacheDir, `keyring-worker-${hash}.mjs`);
  if (fs.existsSync(target)) return target;
  const ts = (await import('typescript')).default;
  const output = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    fileName: sourcePath,
  }).outputText;
  fs.mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  const tmp = `${target}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, output, { mode: 0o600 });
  fs.renameSync(tmp, target);
  return target;
}

/** Grace period for the killed worker to be reaped before we stop waiting for it. */
const REAP_GRACE_MS = 1000;
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

/** Kills the worker after `timeoutMs`; a timeout is reported as `reportedMs`, the caller's whole deadline. */
function runWorker(
  script: string,
  request: KeyringRequest,
  timeoutMs: number,
  what: string,
  reportedMs: number = timeoutMs,
): Promise<KeyringResponse> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: process.env,
      // Its own process group is not needed: the worker starts no children.
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let timedOut = false;
    let settled = false;
    let reapTimer: NodeJS.Timeout | undefined;

    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      if (reapTimer) clearTimeout(reapTimer);
      fn();
    };
    const timeoutError = (): TimeoutError => keyringTimeoutError(reportedMs, what);

    const deadline = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
      // SIGKILL cannot be ignored; 'close' follows at once. The grace timer only
      // guards against a worker stuck in uninterruptible sleep, and is unref'd.
      reapTimer = setTimeout(() => finish(() => reject(timeoutError())), REAP_GRACE_MS);
      reapTimer.unref();
    }, timeoutMs);

    child.stdout.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > MAX_OUTPUT_BYTES) child.kill('SIGKILL');
      else out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (err.length < 64) err.push(chunk);
    });
    // A worker that dies before reading its request makes the write fail with EPIPE; 'close' reports it.
    child.stdin.on('error', () => undefined);
    child.on('error', (e) =>
      finish(() =>
        reject(new VmpError(`cannot start the keyring helper (${what}): ${e.message}`, { cause: e })),
      ),
    );
    child.on('close', (code, signal) => {
      finish(() => {
        if (timedOut) return reject(timeoutError());
        const stdout = Buffer.concat(out).toString('utf8');
        try {
          if (code === 0) return resolve(JSON.parse(stdout) as KeyringResponse);
        } catch {
          // fall through to the report below
        }
        const detail = Buffer.concat(err).toString('utf8').trim().split('\n')[0] || `exit ${code ?? signal}`;
        reject(new VmpError(`the keyring helper failed (${what}): ${detail}`));
      });
    });
    child.stdin.end(JSON.stringify(request));
  });
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
