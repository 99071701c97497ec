import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { applyIdentity, awaitIdentity, IdentityLines } from '../../../guest-agent/src/identity.js';
import {
  encodeIdentity,
  IDENTITY_READY_LINE,
  parseIdentityLine,
  type CloneIdentity,
} from '../../../src/protocol/identity.js';

const ID: CloneIdentity = {
  name: 'disp-1a2b',
  secret: 'ab'.repeat(32),
  seed: '5e'.repeat(32),
  machineId: '0123456789abcdef0123456789abcdef',
};

describe('the identity line of a clone', () => {
  test('round-trips through the host encoder and the agent parser', () => {
    const line = encodeIdentity(ID).toString('ascii');
    expect(line).toBe(
      `vmp-identity 1 name=disp-1a2b secret=${ID.secret} seed=${ID.seed} machine-id=${ID.machineId}\n`,
    );
    expect(parseIdentityLine(line.trimEnd())).toEqual(ID);
  });

  test.each([
    ['an upper-case name', { name: 'Disp' }, /identity name 'Disp' must be a host name label/],
    ['a name with a space', { name: 'a b' }, /identity name/],
    ['a short secret', { secret: 'ab' }, /identity secret 'ab' must be 64 lower-case hex digits/],
    ['an upper-case seed', { seed: '5E'.repeat(32) }, /identity seed/],
    ['an all-zero machine ID', { machineId: '0'.repeat(32) }, /machine-id .* not all zero/],
  ])('the host refuses %s, naming the field and the rule', (_what, change, message) => {
    expect(() => encodeIdentity({ ...ID, ...change })).toThrow(message);
  });

  test('the agent rejects reordered, missing and extra fields', () => {
    const line = encodeIdentity(ID).toString('ascii').trimEnd();
    expect(parseIdentityLine(line.replace('name=', 'nam='))).toBe('field 1 must be name=');
    expect(parseIdentityLine(`${line} extra=1`)).toBe('an identity has 4 fields, not 5');
    expect(parseIdentityLine('vmp-identity 2 name=x')).toBe('not an identity line');
    expect(parseIdentityLine(line.replace(ID.secret, 'zz'.repeat(32)))).toMatch(/identity secret/);
  });

  test('wake bytes before it, junk lines and over-long lines are skipped; split writes are joined', () => {
    const lines = new IdentityLines();
    const rejected: string[] = [];
    const reject = (why: string): void => {
      rejected.push(why);
    };
    expect(lines.push(Buffer.from('ww'), reject)).toBeUndefined();
    expect(lines.push(Buffer.from('hello\n'), reject)).toBeUndefined();
    expect(lines.push(Buffer.from('x'.repeat(600)), reject)).toBeUndefined();
    expect(lines.push(Buffer.from('yyy\n'), reject)).toBeUndefined();
    const encoded = encodeIdentity(ID);
    expect(lines.push(encoded.subarray(0, 40), reject)).toBeUndefined();
    expect(lines.push(encoded.subarray(40), reject)).toEqual(ID);
    expect(rejected).toEqual(['not an identity line', 'a line over 512 bytes']);
  });
});

describe('awaitIdentity and applyIdentity', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-identity-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('says it is ready on the port, then returns the identity the host writes', async () => {
    // A FIFO stands in for the virtio-serial port: the agent writes and reads the same node.
    const port = path.join(dir, 'port');
    execFileSync('mkfifo', [port]);
    const host = await fs.promises.open(port, fs.constants.O_RDWR);
    try {
      const waiting = awaitIdentity(port, () => undefined);
      const ready = Buffer.alloc(IDENTITY_READY_LINE.length);
      await host.read(ready, 0, ready.length, null);
      expect(ready.toString()).toBe(IDENTITY_READY_LINE);
      await host.write(Buffer.from('w'));
      await host.write(encodeIdentity(ID));
      expect(await waiting).toEqual(ID);
    } finally {
      await host.close();
    }
  });

  test('mixes the seed into the RNG and asks root for host name and machine ID through the request file', async () => {
    const urandom = path.join(dir, 'urandom');
    fs.writeFileSync(urandom, '');
    const logs: string[] = [];
    await applyIdentity(ID, (l) => logs.push(l), { urandom, requestDir: dir });
    expect(fs.readFileSync(urandom).toString('hex')).toBe(ID.seed);
    expect(fs.readFileSync(path.join(dir, 'request'), 'utf8')).toBe(
      `name=${ID.name}\nmachine-id=${ID.machineId}\n`,
    );
    expect(logs).toEqual([]);
    await applyIdentity(ID, (l) => logs.push(l), { urandom, requestDir: path.join(dir, 'absent') });
    expect(logs).toEqual([expect.stringContaining('host name and machine ID not re-seeded (ENOENT')]);
  });
});
