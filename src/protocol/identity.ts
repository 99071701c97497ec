/**
 * The identity a restored clone receives on its wake channel (docs/protocol.md,
 * "Identity of a clone"): one text line from the host, read by the clone
 * source's agent before it connects anywhere. Shared by the host (which
 * writes it) and the guest agent (which parses it); node: built-ins only.
 */

export const IDENTITY_PREFIX = 'vmp-identity 1 ';
/** What an agent waiting for its identity writes on the channel, so the host knows it is idle and waiting. */
export const IDENTITY_READY_LINE = 'vmp-ready 1\n';
/** Longest identity line with its newline; anything longer is discarded unread to its newline. */
export const MAX_IDENTITY_LINE_BYTES = 512;

export interface CloneIdentity {
  /** The clone's VM name, which is also its host name: a lower-case host name label. */
  name: string;
  /** Its agent secret: 64 lower-case hex digits (32 bytes), as every VM's. */
  secret: string;
  /** 32 bytes of host randomness (64 hex digits) mixed into the guest's RNG. */
  seed: string;
  /** Its machine ID: 32 lower-case hex digits, not all zero (machine-id(5)). */
  machineId: string;
}

const RULES: Array<[keyof CloneIdentity, string, RegExp, string]> = [
  ['name', 'name', /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'a host name label: 1-63 of a-z 0-9 -'],
  ['secret', 'secret', /^[0-9a-f]{64}$/, '64 lower-case hex digits'],
  ['seed', 'seed', /^[0-9a-f]{64}$/, '64 lower-case hex digits'],
  ['machineId', 'machine-id', /^(?!0{32})[0-9a-f]{32}$/, '32 lower-case hex digits, not all zero'],
];

/** Why a value cannot be part of an identity, or undefined. */
export function identityProblem(identity: CloneIdentity): string | undefined {
  for (const [key, field, re, rule] of RULES) {
    if (!re.test(identity[key])) return `identity ${field} '${identity[key].slice(0, 70)}' must be ${rule}`;
  }
  return undefined;
}

/** The line the host writes; throws on a value outside its grammar (nothing unchecked reaches the guest). */
export function encodeIdentity(identity: CloneIdentity): Buffer {
  const problem = identityProblem(identity);
  if (problem) throw new Error(problem);
  const fields = RULES.map(([key, field]) => `${field}=${identity[key]}`).join(' ');
  return Buffer.from(`${IDENTITY_PREFIX}${fields}\n`, 'ascii');
}

/** Parses one line (without its newline); a string says why it is not an identity. */
export function parseIdentityLine(line: string): CloneIdentity | string {
  if (!line.startsWith(IDENTITY_PREFIX)) return 'not an identity line';
  const parts = line.slice(IDENTITY_PREFIX.length).split(' ');
  if (parts.length !== RULES.length) return `an identity has ${RULES.length} fields, not ${parts.length}`;
  const out: Partial<CloneIdentity> = {};
  for (const [i, [key, field]] of RULES.entries()) {
    const part = parts[i]!;
    if (!part.startsWith(`${field}=`)) return `field ${i + 1} must be ${field}=`;
    out[key] = part.slice(field.length + 1);
  }
  const identity = out as CloneIdentity;
  return identityProblem(identity) ?? identity;
}
