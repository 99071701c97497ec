import { randomBytes } from 'node:crypto';
import {
  getAgentSecret,
  getVmPassword,
  keyringCredentialStores,
  listVmPasswords,
  provisionVmCredentials,
  removeVmCredentials,
} from '../../../src/secrets/credentials.js';
import { KeyringSecretStore } from '../../../src/secrets/keyring.js';
import { AGENT_SECRET_PATTERN, PASSWORD_PATTERN } from '../../../src/secrets/password.js';
import { SHA512_CRYPT_PATTERN, verifySha512Crypt } from '../../../src/secrets/sha512crypt.js';
import { AGENT_SECRET_SERVICE, PASSWORD_SERVICE } from '../../../src/service/ports.js';
import { InputError, NotFoundError, TimeoutError } from '../../../src/util/errors.js';
import { secretToolLookup } from '../../support/keyring-control.js';
import { describeWith, probeSecretService } from '../../support/services.js';

const vmName = (): string => `vmp-t-sec-${randomBytes(4).toString('hex')}`;

describeWith(probeSecretService(), 'VM credentials')('VM credentials in the real keyring', () => {
  test('provision stores both secrets under the VM name; remove deletes both', async () => {
    const name = vmName();
    try {
      const creds = await provisionVmCredentials(name);
      expect(creds.password).toMatch(PASSWORD_PATTERN);
      expect(creds.agentSecret).toMatch(AGENT_SECRET_PATTERN);
      expect(creds.passwordHash).toMatch(SHA512_CRYPT_PATTERN);
      expect(verifySha512Crypt(creds.password, creds.passwordHash)).toBe(true);
      expect(creds.passwordHash).not.toContain(creds.password);
      // In the Secret Service under the agreed service names, as another client sees them.
      expect(secretToolLookup(PASSWORD_SERVICE, name)).toBe(creds.password);
      expect(secretToolLookup(AGENT_SECRET_SERVICE, name)).toBe(creds.agentSecret);
      expect(await getVmPassword(name)).toBe(creds.password);
      expect(await getAgentSecret(name)).toBe(creds.agentSecret);
      expect(await listVmPasswords()).toContainEqual({ name, password: creds.password });

      expect(await removeVmCredentials(name)).toEqual({ password: true, agentSecret: true });
      expect(secretToolLookup(PASSWORD_SERVICE, name)).toBeNull();
      expect(secretToolLookup(AGENT_SECRET_SERVICE, name)).toBeNull();
      expect(await removeVmCredentials(name)).toEqual({ password: false, agentSecret: false });
      await expect(getVmPassword(name)).rejects.toThrow(NotFoundError);
      await expect(getVmPassword(name)).rejects.toThrow(`no password for VM "${name}" in the keyring`);
      expect(await getAgentSecret(name)).toBeNull();
    } finally {
      await removeVmCredentials(name);
    }
  });

  test('when storing the agent secret fails, the stored password is removed again', async () => {
    const name = vmName();
    const stores = {
      passwords: new KeyringSecretStore(PASSWORD_SERVICE),
      // A real store whose deadline no worker can meet: every call fails with TimeoutError.
      agentSecrets: new KeyringSecretStore(AGENT_SECRET_SERVICE, { timeoutMs: 1 }),
    };
    await expect(provisionVmCredentials(name, stores)).rejects.toThrow(TimeoutError);
    expect(secretToolLookup(PASSWORD_SERVICE, name)).toBeNull();
    expect(secretToolLookup(AGENT_SECRET_SERVICE, name)).toBeNull();
    expect((await listVmPasswords(keyringCredentialStores())).map((r) => r.name)).not.toContain(name);
  });

  test('a bad VM name is refused before the keyring is touched', async () => {
    await expect(provisionVmCredentials('Bad Name')).rejects.toThrow(InputError);
    await expect(getVmPassword('../etc')).rejects.toThrow(/^invalid VM name "\.\.\/etc": /);
  });
});
