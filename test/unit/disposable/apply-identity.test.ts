import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** guest-agent/config-disk/vmp-apply-identity against a scratch root (VMP_ROOT), as the path unit runs it. */
describe('vmp-apply-identity', () => {
  let dir: string;
  const run = (): { status: number | null; stderr: string } => {
    const r = spawnSync('bash', ['guest-agent/config-disk/vmp-apply-identity'], {
      env: {
        PATH: process.env.PATH,
        VMP_ROOT: path.join(dir, 'root'),
        VMP_IDENTITY_DIR: path.join(dir, 'id'),
      },
      encoding: 'utf8',
    });
    return { status: r.status, stderr: r.stderr };
  };
  const request = (text: string): void => fs.writeFileSync(path.join(dir, 'id', 'request'), text);
  const etc = (file: string): string => fs.readFileSync(path.join(dir, 'root', 'etc', file), 'utf8');

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-apply-identity-'));
    fs.mkdirSync(path.join(dir, 'root', 'etc'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'id'));
    fs.writeFileSync(path.join(dir, 'root', 'etc', 'hosts'), '127.0.0.1\tlocalhost\n127.0.1.1\ttpl-ready\n');
    fs.writeFileSync(path.join(dir, 'root', 'etc', 'machine-id'), 'f'.repeat(32) + '\n');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('applies host name and machine ID once, and refuses a second request', () => {
    request('name=disp-1\nmachine-id=0123456789abcdef0123456789abcdef\n');
    expect(run().status).toBe(0);
    expect(etc('hostname')).toBe('disp-1\n');
    expect(etc('machine-id')).toBe('0123456789abcdef0123456789abcdef\n');
    expect(etc('hosts')).toBe('127.0.0.1\tlocalhost\n127.0.1.1\tdisp-1\n');
    expect(fs.existsSync(path.join(dir, 'id', 'request'))).toBe(false);
    request('name=other\nmachine-id=0123456789abcdef0123456789abcdee\n');
    const again = run();
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('an identity was applied already');
    expect(etc('hostname')).toBe('disp-1\n');
  });

  test.each([
    [
      'an upper-case name',
      'name=Disp\nmachine-id=0123456789abcdef0123456789abcdef\n',
      /not a host name label/,
    ],
    ['a bad machine ID', 'name=disp\nmachine-id=xyz\n', /not 32 hex digits/],
    ['an all-zero machine ID', `name=disp\nmachine-id=${'0'.repeat(32)}\n`, /not 32 hex digits/],
    ['a third line', 'name=disp\nmachine-id=0123456789abcdef0123456789abcdef\nx=1\n', /two lines/],
    ['swapped lines', 'machine-id=0123456789abcdef0123456789abcdef\nname=disp\n', /host name label/],
  ])('refuses %s, changing nothing', (_what, text, message) => {
    request(text);
    const r = run();
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(fs.existsSync(path.join(dir, 'root', 'etc', 'hostname'))).toBe(false);
    expect(etc('machine-id')).toBe('f'.repeat(32) + '\n');
  });
});
