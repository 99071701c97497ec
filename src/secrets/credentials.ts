import { AGENT_SECRET_SERVICE, PASSWORD_SERVICE, type SecretStore } from '../service/ports.js';
import { validateVmName } from '../spec/validate.js';
import { NotFoundError, VmpError } from '../util/errors.js';
import { KeyringSecretStore, type KeyringStoreOptions } from './keyring.js';
import { generateAgentSecret, generatePassword } from './password.js';
import { sha512Crypt } from './sha512crypt.js';

/**
 * A VM's credentials: the login password (keyring service `vm-provisioner`)
 * and the guest agent's proxy secret (`vm-provisioner-agent`), both under the
 * VM name as account. Only the SHA-512 crypt hash of the password ever goes
 * into a kickstart; neither secret is written to a file by this module.
 */
export interface VmCredentials {
  password: string;
  /** `$6$rounds=…$salt$hash` for the kickstart's `user --iscrypted --password=`. */
  passwordHash: string;
  /** 64 lower-case hex digits (32 random bytes). */
  agentSecret: string;
}

export interface CredentialStores {
  passwords: SecretStore;
  agentSecrets: SecretStore;
}

/** The OS keyring stores under the project's two service names. */
export function keyringCredentialStores(options: KeyringStoreOptions = {}): CredentialStores {
  return {
    passwords: new KeyringSecretStore(PASSWORD_SERVICE, options),
    agentSecrets: new KeyringSecretStore(AGENT_SECRET_SERVICE, options),
  };
}

/**
 * Generates and stores a VM's password and agent secret; the first thing
 * `create` does. Call it after checking the name is free: it replaces a stale
 * entry under the same name. Both are stored at once (each keyring call is a
 * helper process; in turn they were a third of `create --template`'s time);
 * if either fails, the other is removed again, so a failure leaves nothing.
 */
export async function provisionVmCredentials(
  name: string,
  stores: CredentialStores = keyringCredentialStores(),
): Promise<VmCredentials> {
  validateVmName(name);
  const password = generatePassword();
  const agentSecret = generateAgentSecret();
  const stored = Promise.allSettled([
    stores.passwords.set(name, password),
    stores.agentSecrets.set(name, agentSecret),
  ]);
  // Hashed while the keyring helpers start.
  const passwordHash = sha512Crypt(password);
  const [pw, agent] = await stored;
  if (pw.status === 'rejected' || agent.status === 'rejected') {
    const failure = pw.status === 'rejected' ? pw.reason : (agent as PromiseRejectedResult).reason;
    const made = [
      ...(pw.status === 'fulfilled' ? [{ what: `the password of ${name}`, store: stores.passwords }] : []),
      ...(agent.status === 'fulfilled'
        ? [{ what: `the agent secret of ${name}`, store: stores.agentSecrets }]
        : []),
    ];
    if (made.length === 0) throw failure;
    await undo(
      failure,
      () => Promise.all(made.map((m) => m.store.delete(name))),
      made.map((m) => m.what).join(' and '),
    );
  }
  return { password, passwordHash, agentSecret };
}

/**
 * Removes both secrets of a VM (`destroy`, and `create`'s rollback). Tries
 * both even if the first fails, then throws the first failure. Returns what
 * was actually there.
 */
export async function removeVmCredentials(
  name: string,
  stores: CredentialStores = keyringCredentialStores(),
): Promise<{ password: boolean; agentSecret: boolean }> {
  validateVmName(name);
  const results = await Promise.allSettled([stores.passwords.delete(name), stores.agentSecrets.delete(name)]);
  const [pw, agent] = results as [PromiseSettledResult<boolean>, PromiseSettledResult<boolean>];
  if (pw.status === 'rejected') throw pw.reason;
  if (agent.status === 'rejected') throw agent.reason;
  return { password: pw.value, agentSecret: agent.value };
}

/** The VM's login password. Throws NotFoundError (exit 2) when the keyring has none for `name`. */
export async function getVmPassword(
  name: string,
  stores: CredentialStores = keyringCredentialStores(),
): Promise<string> {
  validateVmName(name);
  const password = await stores.passwords.get(name);
  if (password === null) {
    throw new NotFoundError(
      `no password for VM ${JSON.stringify(name)} in the keyring (service ${PASSWORD_SERVICE})`,
    );
  }
  return password;
}

/** The VM's agent secret, or null when the keyring has none. */
export async function getAgentSecret(
  name: string,
  stores: CredentialStores = keyringCredentialStores(),
): Promise<string | null> {
  validateVmName(name);
  return stores.agentSecrets.get(name);
}

/** Every VM password under service `vm-provisioner`, sorted by VM name. */
export async function listVmPasswords(
  stores: CredentialStores = keyringCredentialStores(),
): Promise<Array<{ name: string; password: string }>> {
  const entries = await stores.passwords.list();
  return entries
    .map((e) => ({ name: e.account, password: e.secret }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function undo(original: unknown, action: () => Promise<unknown>, what: string): Promise<never> {
  try {
    await action();
  } catch (undoErr) {
    const first = original instanceof Error ? original.message : String(original);
    const second = undoErr instanceof Error ? undoErr.message : String(undoErr);
    const Ctor = original instanceof VmpError ? (original.constructor as typeof VmpError) : VmpError;
    throw new Ctor(`${first}; removing ${what} again also failed: ${second}`, { cause: original });
  }
  throw original;
}
