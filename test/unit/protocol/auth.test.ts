import { createHmac } from 'node:crypto';
import {
  authTranscript,
  computeAuthMac,
  decodeFrame,
  newNonce,
  parseAgentSecret,
  prepareResume,
  verifyAuthMac,
  type AuthContext,
} from '../../../src/protocol/index.js';

const secret = Buffer.from('11'.repeat(32), 'hex');
const ctx: AuthContext = {
  vmName: 'firefox-vm',
  version: 1,
  agentNonce: Buffer.alloc(32, 0xaa),
  proxyNonce: Buffer.alloc(32, 0xbb),
};

describe('agent authentication', () => {
  test('the transcript is the documented byte layout', () => {
    const t = authTranscript('agent', ctx);
    const expected = Buffer.concat([
      Buffer.from('vm-provisioner-agent-auth\0agent\0'),
      Buffer.from([0, 1, 0, 10]),
      Buffer.from('firefox-vm'),
      ctx.agentNonce,
      ctx.proxyNonce,
    ]);
    expect(t.equals(expected)).toBe(true);
    expect(computeAuthMac(secret, 'agent', ctx)).toEqual(
      createHmac('sha256', secret).update(expected).digest(),
    );
  });

  test('a tag verifies only for the same secret, role, VM, version and nonces', () => {
    const mac = computeAuthMac(secret, 'agent', ctx);
    expect(verifyAuthMac(secret, 'agent', ctx, mac)).toBe(true);
    expect(verifyAuthMac(Buffer.alloc(32, 0x12), 'agent', ctx, mac)).toBe(false);
    expect(verifyAuthMac(secret, 'proxy', ctx, mac)).toBe(false);
    expect(verifyAuthMac(secret, 'agent', { ...ctx, vmName: 'firefox-vn' }, mac)).toBe(false);
    expect(verifyAuthMac(secret, 'agent', { ...ctx, version: 2 }, mac)).toBe(false);
    expect(verifyAuthMac(secret, 'agent', { ...ctx, proxyNonce: newNonce() }, mac)).toBe(false);
    expect(verifyAuthMac(secret, 'agent', { ...ctx, agentNonce: newNonce() }, mac)).toBe(false);
    expect(verifyAuthMac(secret, 'agent', ctx, mac.subarray(0, 31))).toBe(false);
  });

  test('a resume tag is its own: no AUTH or WELCOME tag serves as one, nor the other way round', () => {
    const roles = ['agent', 'proxy', 'agent-resume', 'proxy-resume'] as const;
    const tags = roles.map((role) => computeAuthMac(secret, role, ctx).toString('hex'));
    expect(new Set(tags).size).toBe(4);
    for (const role of roles) {
      for (const other of roles) {
        expect(verifyAuthMac(secret, other, ctx, computeAuthMac(secret, role, ctx))).toBe(role === other);
      }
    }
    expect(authTranscript('agent-resume', ctx).subarray(0, 39).toString('latin1')).toBe(
      'vm-provisioner-agent-auth\0agent-resume\0',
    );
  });

  test('prepareResume: the RESUME frame carries the agent-resume tag over the ticket, and the WELCOME it expects', () => {
    const ticket = newNonce();
    const agentNonce = newNonce();
    const prepared = prepareResume('firefox-vm', '0.1.0', secret, 4, ticket, agentNonce);
    const decoded = decodeFrame(prepared.frame);
    if (!decoded.ok || decoded.message.type !== 'resume') throw new Error('not a resume frame');
    const resumeCtx = { vmName: 'firefox-vm', version: 4, agentNonce, proxyNonce: ticket };
    expect(decoded.message.vmName).toBe('firefox-vm');
    expect(decoded.message.agentNonce.equals(agentNonce)).toBe(true);
    expect(verifyAuthMac(secret, 'agent-resume', resumeCtx, decoded.message.mac)).toBe(true);
    expect(prepared.expectedWelcome).toEqual(computeAuthMac(secret, 'proxy-resume', resumeCtx));
    expect(prepared.version).toBe(4);
  });

  test('nonces are 32 fresh random bytes', () => {
    const a = newNonce();
    expect(a).toHaveLength(32);
    expect(a.equals(newNonce())).toBe(false);
  });

  test('parseAgentSecret accepts 64 lower-case hex digits and a trailing newline only', () => {
    expect(parseAgentSecret(`${'ab'.repeat(32)}\n`)).toEqual(Buffer.alloc(32, 0xab));
    expect(parseAgentSecret('AB'.repeat(32))).toBeNull();
    expect(parseAgentSecret('ab'.repeat(31))).toBeNull();
    expect(parseAgentSecret('')).toBeNull();
  });
});
