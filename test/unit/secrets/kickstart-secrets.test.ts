import { renderKickstart } from '../../../src/render/kickstart.js';
import { generateAgentSecret, generatePassword } from '../../../src/secrets/password.js';
import { sha512Crypt, verifySha512Crypt } from '../../../src/secrets/sha512crypt.js';
import { defaultSpec } from '../../../src/spec/defaults.js';
import { assertNoSecretsInString, findSecretsInString } from '../../support/no-secrets.js';

// The contract between src/secrets and the kickstart renderer: what provisionVmCredentials
// returns is accepted by the renderer, and the kickstart carries the hash, never the password.
describe('credentials in a kickstart', () => {
  test('the kickstart holds the verifiable hash and the agent secret, never the password', () => {
    const password = generatePassword();
    const passwordHash = sha512Crypt(password);
    const agentSecret = generateAgentSecret();
    const ks = renderKickstart(defaultSpec('vmp-t-sec-ks'), {
      passwordHash,
      agentSecret,
      agentBundle: '#!/usr/bin/env node\nconsole.log("agent");\n',
      proxyHost: '10.0.2.2',
      proxyPort: 40000,
    });
    assertNoSecretsInString(ks, [password], 'kickstart');
    // The helper does find what is there: the hash is embedded verbatim.
    expect(findSecretsInString(ks, [passwordHash], 'kickstart')).toHaveLength(1);
    const embedded = /\$6\$rounds=\d+\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}/.exec(ks)?.[0];
    expect(embedded).toBe(passwordHash);
    expect(verifySha512Crypt(password, embedded as string)).toBe(true);
  });
});
