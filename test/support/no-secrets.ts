import fs from 'node:fs';
import path from 'node:path';

/**
 * Asserts that no secret (a VM password, an agent secret) occurs in generated
 * text or anywhere under a directory: file contents (text or binary), file
 * and directory names, symlink targets. Failure messages never print the
 * secret itself, only where it was found and a redacted hint.
 *
 *   assertNoSecretsInTree(configDir(), [creds.password, creds.agentSecret]);
 *   assertNoSecretsInString(kickstart, [creds.password], 'kickstart');
 */

/** Shorter values would match by chance; a real password or secret is never this short. */
const MIN_SECRET_LENGTH = 8;

export interface SecretFinding {
  /** Redacted: the secret's first two characters and its length. */
  secret: string;
  where: string;
}

function redact(secret: string): string {
  return `${secret.slice(0, 2)}…(${secret.length} chars)`;
}

function checkSecrets(secrets: readonly string[]): Buffer[] {
  if (secrets.length === 0) throw new Error('no-secrets: give at least one secret to look for');
  return secrets.map((s, i) => {
    if (typeof s !== 'string' || s.length < MIN_SECRET_LENGTH) {
      throw new Error(
        `no-secrets: secret #${i} is shorter than ${MIN_SECRET_LENGTH} characters; that is not a real secret`,
      );
    }
    return Buffer.from(s, 'utf8');
  });
}

function lineOf(haystack: Buffer, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (haystack[i] === 0x0a) line++;
  return line;
}

function scanBuffer(
  data: Buffer,
  needles: Buffer[],
  secrets: readonly string[],
  label: string,
  withLine = true,
): SecretFinding[] {
  const found: SecretFinding[] = [];
  needles.forEach((needle, i) => {
    const at = data.indexOf(needle);
    if (at < 0) return;
    found.push({
      secret: redact(secrets[i] as string),
      where: withLine ? `${label}:${lineOf(data, at)}` : label,
    });
  });
  return found;
}

/** Every occurrence site in `text`; empty when clean. */
export function findSecretsInString(
  text: string,
  secrets: readonly string[],
  label = 'string',
): SecretFinding[] {
  return scanBuffer(Buffer.from(text, 'utf8'), checkSecrets(secrets), secrets, label);
}

/** Every occurrence site under `root` (the root itself may be a file); empty when clean. */
export function findSecretsInTree(root: string, secrets: readonly string[]): SecretFinding[] {
  const needles = checkSecrets(secrets);
  const found: SecretFinding[] = [];
  const visit = (p: string): void => {
    const name = Buffer.from(path.basename(p), 'utf8');
    found.push(...scanBuffer(name, needles, secrets, `name of ${p}`, false));
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) {
      // Not followed: a link out of the tree would scan unrelated files.
      const target = Buffer.from(fs.readlinkSync(p), 'utf8');
      found.push(...scanBuffer(target, needles, secrets, `link target of ${p}`, false));
    } else if (st.isDirectory()) {
      for (const entry of fs.readdirSync(p).sort()) visit(path.join(p, entry));
    } else if (st.isFile()) {
      found.push(...scanBuffer(fs.readFileSync(p), needles, secrets, p));
    }
  };
  visit(root);
  return found;
}

function fail(findings: SecretFinding[], what: string): void {
  if (findings.length === 0) return;
  const lines = findings.map((f) => `  ${f.secret} in ${f.where}`).join('\n');
  throw new Error(`secret found in ${what}:\n${lines}`);
}

export function assertNoSecretsInString(text: string, secrets: readonly string[], label = 'string'): void {
  fail(findSecretsInString(text, secrets, label), label);
}

export function assertNoSecretsInTree(root: string, secrets: readonly string[]): void {
  if (!fs.existsSync(root)) throw new Error(`no-secrets: ${root} does not exist, so nothing was checked`);
  fail(findSecretsInTree(root, secrets), root);
}
