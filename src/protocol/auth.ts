import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { MAC_BYTES, NONCE_BYTES } from './messages.js';

/**
 * Challenge-response authentication of an agent (and of the proxy to the
 * agent). Both sides hold the VM's 32-byte agent secret; only HMAC-SHA256
 * tags cross the wire. Each tag binds the role, the negotiated version, the
 * VM name and both nonces, so a tag cannot be replayed on another connection,
 * for another VM, at another version, or reflected back as the other role.
 */

export const AUTH_LABEL = 'vm-provisioner-agent-auth';
export const AGENT_SECRET_BYTES = 32;
const SECRET_HEX = /^[0-9a-f]{64}$/;

/**
 * Who a tag proves: an agent (AUTH) or the proxy (WELCOME) after a CHALLENGE, or the same after a RESUME,
 * where the proxy's nonce is the ticket it issued earlier; each its own label, so no tag serves as another.
 */
export type AuthRole = 'agent' | 'proxy' | 'agent-resume' | 'proxy-resume';

export interface AuthContext {
  vmName: string;
  version: number;
  agentNonce: Buffer;
  proxyNonce: Buffer;
}

export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

let spare: Buffer | undefined;

/**
 * A fresh nonce, made ahead: the agent's next one is drawn while it is idle, not on the way back after a
 * resume, where the RNG's code runs for the first time under emulation. Each is handed out once.
 */
export function takeNonce(): Buffer {
  const nonce = spare ?? newNonce();
  spare = undefined;
  setImmediate(() => {
    spare ??= newNonce();
  }).unref?.();
  return nonce;
}

/** The exact bytes that get MACed (see docs/protocol.md, "Authentication"). */
export function authTranscript(role: AuthRole, ctx: AuthContext): Buffer {
  const name = Buffer.from(ctx.vmName, 'utf8');
  const fixed = Buffer.allocUnsafe(2 + 2);
  fixed.writeUInt16BE(ctx.version, 0);
  fixed.writeUInt16BE(name.length, 2);
  return Buffer.concat([
    Buffer.from(`${AUTH_LABEL}\0${role}\0`, 'ascii'),
    fixed,
    name,
    ctx.agentNonce,
    ctx.proxyNonce,
  ]);
}

export function computeAuthMac(secret: Buffer, role: AuthRole, ctx: AuthContext): Buffer {
  return createHmac('sha256', secret).update(authTranscript(role, ctx)).digest();
}

/** Constant-time check of a received tag. */
export function verifyAuthMac(secret: Buffer, role: AuthRole, ctx: AuthContext, mac: Buffer): boolean {
  const expected = computeAuthMac(secret, role, ctx);
  if (mac.length !== MAC_BYTES) return false;
  return timingSafeEqual(expected, mac);
}

/**
 * The HMAC key from the secret's text form: 64 lower-case hex digits (as in
 * the keyring and the guest's agent.secret, trailing newline allowed).
 * Returns null when the text is not a valid secret.
 */
export function parseAgentSecret(text: string): Buffer | null {
  const trimmed = text.trim();
  if (!SECRET_HEX.test(trimmed)) return null;
  return Buffer.from(trimmed, 'hex');
}
