import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { capture, HELP_WIDTH } from '../../../src/cli/help-book.js';
import { runCli as runInProcess } from '../../../src/cli/run.js';
import { defaultSpec } from '../../../src/spec/defaults.js';
import { RACY_MS } from '../../../src/spec/list-settings.js';
import { specToToml } from '../../../src/spec/toml.js';
import { runCli } from '../../support/cli.js';
import { fixtureDomainName, testDriverXml } from '../../support/test-driver-file.js';

/**
 * The built CLI's fast paths (src/cli/fast-path.ts), as a user runs them:
 * help answered from the build-time book prints what yargs prints, and
 * `list --json` reads a libvirt test-driver file of many domains, with each
 * VM's config, exactly as the yargs command does.
 */
let dir: string;
let env: NodeJS.ProcessEnv;
const VMS = 150;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-startup-'));
  fs.writeFileSync(path.join(dir, 'domains.xml'), testDriverXml(VMS, 'vmp-t-many'));
  const configs = path.join(dir, 'config', 'vm-provisioner');
  fs.mkdirSync(configs, { recursive: true });
  // Every other VM has a config file; the rest show the defaults.
  for (let i = 0; i < VMS; i += 2) {
    const name = fixtureDomainName('vmp-t-many', i);
    fs.writeFileSync(
      path.join(configs, `${name}.toml`),
      specToToml(defaultSpec(name, { label: 'green', onStop: 'save', display: 'seamless' })),
    );
  }
  env = { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'), LC_ALL: 'C' };
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('help without yargs', () => {
  const saved = { lcAll: process.env.LC_ALL, columns: process.stdout.columns };
  beforeAll(() => {
    process.env.LC_ALL = 'C';
    Object.defineProperty(process.stdout, 'columns', { value: HELP_WIDTH, configurable: true });
  });
  afterAll(() => {
    if (saved.lcAll === undefined) delete process.env.LC_ALL;
    else process.env.LC_ALL = saved.lcAll;
    Object.defineProperty(process.stdout, 'columns', { value: saved.columns, configurable: true });
  });

  test.each([
    [['--help'], ['--help']],
    [['-h'], ['--help']],
    [['help'], ['--help']],
    [
      ['help', 'list'],
      ['list', '--help'],
    ],
    [
      ['list', '--help'],
      ['list', '--help'],
    ],
    [
      ['template', 'create', '-h'],
      ['template', 'create', '--help'],
    ],
    [['--version'], ['--version']],
  ])('%j prints what yargs prints for %j', async (args, yargsArgs) => {
    const built = await runCli(args, env);
    const yargs = await capture(runInProcess, yargsArgs);
    expect(built).toEqual({ code: 0, stdout: yargs.out, stderr: '' });
    expect(built.stdout.length).toBeGreaterThan(5);
  });

  test('a non-English locale gets yargs, in its language', async () => {
    const built = await runCli(['--help'], { ...env, LC_ALL: 'de_DE.UTF-8' });
    expect(built.code).toBe(0);
    expect(built.stdout).toContain('Hilfe anzeigen');
  });
});

describe(`list --json of ${VMS} domains on a test:/// file`, () => {
  const uri = (): string => `test://${path.join(dir, 'domains.xml')}`;

  test('lists every one, with its config, state and apps', async () => {
    const r = await runCli(['list', '--json', '--connect', uri()], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const listed = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    expect(listed).toHaveLength(VMS);
    expect(listed.map((vm) => vm.name)).toEqual(
      Array.from({ length: VMS }, (_, i) => fixtureDomainName('vmp-t-many', i)),
    );
    expect(listed[0]).toEqual({
      name: 'vmp-t-many-000',
      state: 'running',
      memoryMb: 1024,
      vcpus: 1,
      apps: ['org.mozilla.firefox', 'xterm'],
      pendingFlatpaks: [],
      onStop: 'save',
      label: 'green',
      display: 'seamless',
    });
    expect(listed[5]).toMatchObject({
      state: 'shut off',
      memoryMb: 1536,
      vcpus: 2,
      onStop: 'shutdown',
      label: 'gray',
    });
  });

  test('the fast path prints byte for byte what the yargs command prints', async () => {
    const fast = await runCli(['list', '--connect', uri(), '--json'], env);
    // `--json=true` is not a form the fast path takes: yargs runs the command.
    const viaYargs = await runCli(['list', '--json=true', `--connect=${uri()}`], env);
    expect(fast.code).toBe(0);
    expect(viaYargs).toEqual(fast);
  });

  test('never stale: a changed config shows at once, a deleted VM goes, a corrupt cache is rebuilt', async () => {
    // A directory of its own: this test edits configs and the cache.
    const own = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-listcache-'));
    try {
      const configs = path.join(own, 'config', 'vm-provisioner');
      fs.mkdirSync(configs, { recursive: true });
      const names = [0, 1, 2].map((i) => fixtureDomainName('vmp-t-many', i));
      for (const name of names) {
        fs.writeFileSync(
          path.join(configs, `${name}.toml`),
          specToToml(defaultSpec(name, { label: 'green' })),
        );
      }
      const ownEnv = { ...env, HOME: own, XDG_CONFIG_HOME: path.join(own, 'config') };
      const cacheFile = path.join(own, '.cache', 'vm-provisioner', 'list-settings.json');
      const list = async (domains: number): Promise<Array<Record<string, unknown>>> => {
        fs.writeFileSync(path.join(own, 'domains.xml'), testDriverXml(domains, 'vmp-t-many'));
        const r = await runCli(
          ['list', '--json', '--connect', `test://${path.join(own, 'domains.xml')}`],
          ownEnv,
        );
        expect(r).toMatchObject({ code: 0, stderr: '' });
        return JSON.parse(r.stdout) as Array<Record<string, unknown>>;
      };
      const labels = async (domains: number): Promise<unknown[]> =>
        (await list(domains)).map((vm) => vm.label);

      // Files this fresh are not cached (RACY_MS): let them age so the runs below use the cache.
      await new Promise((resolve) => setTimeout(resolve, RACY_MS + 200));
      expect(await labels(3)).toEqual(['green', 'green', 'green']);
      const cachedNames = (): string[] =>
        Object.keys((JSON.parse(fs.readFileSync(cacheFile, 'utf8')) as { entries: object }).entries);
      expect(cachedNames().sort()).toEqual([...names].sort());
      // Edited in place, same size: shown at once.
      const first = path.join(configs, `${names[0]}.toml`);
      fs.writeFileSync(first, fs.readFileSync(first, 'utf8').replace('"green"', '"black"'));
      expect(await labels(3)).toEqual(['black', 'green', 'green']);
      // A config removed: the defaults.
      fs.rmSync(path.join(configs, `${names[1]}.toml`));
      expect(await labels(3)).toEqual(['black', 'gray', 'green']);
      // A VM undefined: gone from the list (and from the cache).
      expect((await list(2)).map((vm) => vm.name)).toEqual(names.slice(0, 2));
      expect(cachedNames()).not.toContain(names[2]);
      // A corrupt cache: ignored, the same list, and rewritten whole.
      fs.writeFileSync(cacheFile, '{"version":1,"dir":');
      expect(await labels(3)).toEqual(['black', 'gray', 'green']);
      expect(() => JSON.parse(fs.readFileSync(cacheFile, 'utf8')) as unknown).not.toThrow();
      // A definition changed since the last list (its apps): shown as it is now, not as the
      // descriptions cached from the last run (listing.json) had it.
      const listingFile = path.join(own, '.cache', 'vm-provisioner', 'listing.json');
      expect(fs.existsSync(listingFile)).toBe(true);
      const changed = testDriverXml(3, 'vmp-t-many').replace(
        '<vmp:app>xterm</vmp:app>',
        '<vmp:app>org.gnome.Calculator</vmp:app>',
      );
      fs.writeFileSync(path.join(own, 'domains.xml'), changed);
      const r = await runCli(
        ['list', '--json', '--connect', `test://${path.join(own, 'domains.xml')}`],
        ownEnv,
      );
      const apps = (JSON.parse(r.stdout) as Array<{ apps: string[] }>).map((vm) => vm.apps);
      expect(apps[0]).toEqual(['org.mozilla.firefox', 'org.gnome.Calculator']);
      expect(apps[1]).toEqual(['org.mozilla.firefox', 'xterm']);
    } finally {
      fs.rmSync(own, { recursive: true, force: true });
    }
  });

  test('a bad URI is the same one-line error, exit 2, on both paths', async () => {
    const fast = await runCli(['list', '--json', '--connect', 'no uri'], env);
    const viaYargs = await runCli(['list', '--json=true', '--connect', 'no uri'], env);
    expect(fast.code).toBe(2);
    expect(fast.stderr).toMatch(/^error: .*no uri.*\n$/);
    expect(viaYargs).toEqual(fast);
  });

  test('a file libvirt cannot read (opened before the command loads): the same error on both paths', async () => {
    const missing = `test://${path.join(dir, 'missing.xml')}`;
    const fast = await runCli(['list', '--json', '--connect', missing], env);
    const viaYargs = await runCli(['list', '--json=true', `--connect=${missing}`], env);
    expect(fast.code).toBe(1);
    expect(fast.stderr).toMatch(/^(.*\n)?error: connect to test:\/\/\/.*missing\.xml: .+\n$/);
    expect(fast.stdout).toBe('');
    expect(viaYargs).toEqual(fast);
  });
});

describe('start NAME without yargs', () => {
  test.each([
    [
      ['start', 'vmp-t-nosuch', '--no-viewer', '--connect', 'test:///default'],
      ['start', 'vmp-t-nosuch', '--viewer=false', '--connect=test:///default'],
    ],
    [
      ['start', 'Bad Name!', '--connect', 'test:///default'],
      ['start', 'Bad Name!', '--connect=test:///default', '--viewer=true'],
    ],
  ])('%j reports as the yargs path does (%j)', async (fast, viaYargs) => {
    const a = await runCli(fast, env);
    const b = await runCli(viaYargs, env);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/^error: .+\n$/);
    expect(b).toEqual(a);
  });

  test('a domain that is ours starts, with the same output on both paths', async () => {
    const uri = `test://${path.join(dir, 'domains.xml')}`;
    // Every third fixture domain is shut off; the test driver keeps state per process, so both start it.
    // The fixtures' display is seamless (which needs an X display); --no-seamless asks for SPICE, as a line.
    const fast = await runCli(
      ['start', 'vmp-t-many-002', '--no-viewer', '--no-seamless', '--connect', uri],
      env,
    );
    const viaYargs = await runCli(
      ['start', 'vmp-t-many-002', '--viewer=false', '--seamless=false', `--connect=${uri}`],
      env,
    );
    expect(fast).toEqual({
      code: 0,
      stdout: 'vmp-t-many-002: started\nvmp-t-many-002: no SPICE display assigned\n',
      stderr: '',
    });
    expect(viaYargs).toEqual(fast);
  });
});
