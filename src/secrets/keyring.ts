import { spawn } from 'node:child_process';
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
    const response = await runWorker(await workerScript(), request, this.timeoutMs, what);
    if (response.ok) return response.value;
    switch (response.kind) {
      case 'locked':
        throw new ServiceUnavailableError(
          `the keyring is locked (${what}: ${response.message}); unlock it (log in to your desktop, or unlock the "Login" keyring in Passwords and Keys) and try again`,
        );
      case 'unavailable':
        throw new ServiceUnavailableError(
          `no usable Secret Service (${what}: ${response.message}); run gnome-keyring or KWallet in your desktop session, with DBUS_SESSION_BUS_ADDRESS set, and try again`,
        );
      default:
        throw new VmpError(`keyring ${what} failed: ${response.message}`);
    }
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
  cachedWorker ??= locateWorker();
  return cachedWorker;
}

async function locateWorker(): Promise<string> {
  const here = fileURLToPath(import.meta.url);
  const dir = path.dirname(here);
  if (here.endsWith('.js')) return path.join(dir, 'keyring-worker.js');
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

function runWorker(
  script: string,
  request: KeyringRequest,
  timeoutMs: number,
  what: string,
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
    const timeoutError = (): TimeoutError =>
      new TimeoutError(
        `the keyring did not answer within ${formatMs(timeoutMs)} (${what}); it may be locked and waiting for an unlock prompt, or the Secret Service is stuck: unlock or restart it, or raise ${KEYRING_TIMEOUT_ENV}`,
      );

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
