/**
 * Timings behind docs/secrets.md: SHA-512 crypt at the default rounds, and one
 * keyring round trip (a worker process per call). Run inside a Secret Service
 * session, from the build:
 *
 *   npm run build && env -u DISPLAY HOME=$(mktemp -d) dbus-run-session -- \
 *     bash .ci/test-session.sh node dist/bench/secrets.js
 */
import { randomBytes } from 'node:crypto';
import { KeyringSecretStore } from '../src/secrets/keyring.js';
import { generatePassword } from '../src/secrets/password.js';
import { DEFAULT_ROUNDS, sha512Crypt } from '../src/secrets/sha512crypt.js';

function stats(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  return `median ${at(0.5).toFixed(1)} ms, p90 ${at(0.9).toFixed(1)} ms, max ${at(1).toFixed(1)} ms (n=${samples.length})`;
}

async function time(n: number, fn: () => unknown): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

const password = generatePassword();
console.log(`sha512Crypt, rounds=${DEFAULT_ROUNDS}: ${stats(await time(10, () => sha512Crypt(password)))}`);

const store = new KeyringSecretStore(`vmp-bench-${randomBytes(4).toString('hex')}`);
const account = 'vmp-bench';
console.log(`keyring set:    ${stats(await time(10, () => store.set(account, password)))}`);
console.log(`keyring get:    ${stats(await time(10, () => store.get(account)))}`);
console.log(`keyring list:   ${stats(await time(10, () => store.list()))}`);
console.log(`keyring delete: ${stats(await time(1, () => store.delete(account)))}`);
