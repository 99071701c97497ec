import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import fc from 'fast-check';
import {
  bindingPackageDir,
  EARLY_PROBE_URI,
  EARLY_URI,
  earlyProbeUri,
  earlyUri,
} from '../../../src/libvirt/early-open.js';
import { resolveConnection } from '../../../src/libvirt/index.js';
import { validateConnectUri } from '../../../src/spec/validate.js';

/**
 * Which `list` lines open libvirt before loading the command (src/libvirt/early-open.ts): only
 * test:/// URIs every check accepts, chosen as resolveConnection chooses, and nothing that
 * openHypervisor would check or act on before opening.
 */
describe('earlyUri', () => {
  const file = 'test:///tmp/vmp/domains.xml';

  test('--connect, else LIBVIRT_DEFAULT_URI, as resolveConnection picks them', () => {
    expect(earlyUri(file, {})).toBe(file);
    expect(earlyUri(undefined, { LIBVIRT_DEFAULT_URI: file })).toBe(file);
    expect(earlyUri('test:///default', { LIBVIRT_DEFAULT_URI: file })).toBe('test:///default');
    for (const [connect, env] of [
      [file, {}],
      [undefined, { LIBVIRT_DEFAULT_URI: file }],
      ['test:///default', { LIBVIRT_DEFAULT_URI: file }],
    ] as const) {
      expect(earlyUri(connect, env)).toBe(resolveConnection(connect, env).uri);
    }
  });

  test('nothing early for a daemon, the defaults file, or settings openHypervisor checks first', () => {
    expect(earlyUri('qemu:///system', {})).toBeUndefined();
    expect(earlyUri('qemu+ssh://host/system', {})).toBeUndefined();
    expect(earlyUri(undefined, {})).toBeUndefined();
    expect(earlyUri(undefined, { LIBVIRT_DEFAULT_URI: '' })).toBeUndefined();
    // An empty --connect is a usage error (exit 2), not a reason to open LIBVIRT_DEFAULT_URI.
    expect(earlyUri('', { LIBVIRT_DEFAULT_URI: file })).toBeUndefined();
    expect(earlyUri(file, { VMP_LIBVIRT_BACKEND: 'virsh' })).toBeUndefined();
    expect(earlyUri(file, { VMP_LIBVIRT_BACKEND: 'binding' })).toBeUndefined();
    expect(earlyUri(file, { VMP_LIBVIRT_CONNECT_TIMEOUT_MS: 'soon' })).toBeUndefined();
    expect(earlyUri('test:///tmp/a b.xml', {})).toBeUndefined();
    expect(earlyUri('test:///tmp/a%20b.xml', {})).toBeUndefined();
    expect(earlyUri('test:///default?x=1', {})).toBeUndefined();
  });

  test('every URI opened early is one validateConnectUri accepts', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 420 }), (tail) => {
        const uri = `test:///${tail}`;
        if (EARLY_URI.test(uri)) expect(validateConnectUri(uri)).toBe(uri);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9._~/-]{0,400}$/), (tail) => {
        expect(EARLY_URI.test(`test:///${tail}`)).toBe(true);
        expect(validateConnectUri(`test:///${tail}`)).toBe(`test:///${tail}`);
      }),
    );
  });
});

/**
 * Which `start` and `list --json` lines start the daemon's probe before loading the command: the
 * local daemons only, chosen as resolveConnection chooses, never when the defaults file could name
 * another connection or a libvirt setting is in the environment.
 */
describe('earlyProbeUri', () => {
  let config: string;
  let env: NodeJS.ProcessEnv;
  const saved = process.env.XDG_CONFIG_HOME;
  beforeEach(() => {
    config = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-probe-'));
    // configDir() reads the process's own XDG_CONFIG_HOME.
    process.env.XDG_CONFIG_HOME = config;
    env = {};
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.XDG_CONFIG_HOME;
    else process.env.XDG_CONFIG_HOME = saved;
    fs.rmSync(config, { recursive: true, force: true });
  });

  test('--connect, else LIBVIRT_DEFAULT_URI, else the built-in default: as resolveConnection picks', () => {
    const cases: Array<[string | undefined, NodeJS.ProcessEnv]> = [
      ['qemu:///system', {}],
      ['qemu:///session', { LIBVIRT_DEFAULT_URI: 'qemu:///system' }],
      [undefined, { LIBVIRT_DEFAULT_URI: 'qemu:///session' }],
      [undefined, {}],
    ];
    for (const [connect, given] of cases) {
      expect(earlyProbeUri(connect, given)).toBe(resolveConnection(connect, given).uri);
    }
    expect(earlyProbeUri(undefined, env)).toBe('qemu:///system');
  });

  test('nothing early when the defaults file exists: it may name another connection', () => {
    fs.mkdirSync(path.join(config, 'vm-provisioner'));
    fs.writeFileSync(path.join(config, 'vm-provisioner', 'defaults.toml'), 'connect = "qemu:///session"\n');
    expect(earlyProbeUri(undefined, env)).toBeUndefined();
    // A URI given on the line or in the environment decides before the file.
    expect(earlyProbeUri('qemu:///system', env)).toBe('qemu:///system');
  });

  test('nothing early for remote or test URIs, odd spellings, or settings openHypervisor checks first', () => {
    for (const uri of [
      'qemu+ssh://host/system',
      'qemu:///system?socket=/tmp/x.sock',
      'qemu+unix:///system',
      'test:///default',
      'qemu:///System',
      'qemu:///system ',
      '',
    ]) {
      expect(earlyProbeUri(uri, env)).toBeUndefined();
    }
    expect(earlyProbeUri(undefined, { LIBVIRT_DEFAULT_URI: 'qemu+ssh://host/system' })).toBeUndefined();
    expect(earlyProbeUri('qemu:///system', { VMP_LIBVIRT_BACKEND: 'virsh' })).toBeUndefined();
    expect(earlyProbeUri('qemu:///system', { VMP_LIBVIRT_CONNECT_TIMEOUT_MS: '900' })).toBeUndefined();
  });

  test('every URI probed early is one validateConnectUri accepts', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (tail) => {
        const uri = `qemu:///${tail}`;
        if (EARLY_PROBE_URI.test(uri)) expect(validateConnectUri(uri)).toBe(uri);
      }),
      { numRuns: 2000 },
    );
    for (const uri of ['qemu:///system', 'qemu:///session']) expect(validateConnectUri(uri)).toBe(uri);
  });
});

describe('bindingPackageDir', () => {
  let root: string;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-pkgdir-'));
    const pkg = (dir: string): void => {
      fs.mkdirSync(path.join(dir, 'dist'), { recursive: true });
      fs.writeFileSync(
        path.join(dir, 'package.json'),
        JSON.stringify({
          name: '@unraid/libvirt',
          type: 'module',
          exports: { '.': { import: './dist/index.js' } },
        }),
      );
      fs.writeFileSync(path.join(dir, 'dist', 'index.js'), 'export {};\n');
    };
    // The outer package; a nearer `node_modules/@unraid/libvirt` that is a file, not a directory.
    pkg(path.join(root, 'node_modules', '@unraid', 'libvirt'));
    fs.mkdirSync(path.join(root, 'app', 'node_modules', '@unraid'), { recursive: true });
    fs.writeFileSync(path.join(root, 'app', 'node_modules', '@unraid', 'libvirt'), '');
    fs.mkdirSync(path.join(root, 'app', 'dist', 'cli'), { recursive: true });
    // A nested install beside another module wins over the outer one.
    pkg(path.join(root, 'other', 'node_modules', '@unraid', 'libvirt'));
    fs.mkdirSync(path.join(root, 'other', 'lib'), { recursive: true });
    for (const dir of ['app/dist/cli', 'other/lib']) {
      fs.writeFileSync(
        path.join(root, dir, 'where.mjs'),
        "process.stdout.write(import.meta.resolve('@unraid/libvirt'));\n",
      );
    }
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  test.each(['app/dist/cli', 'other/lib'])('from %s: the package Node itself imports', (dir) => {
    const from = pathToFileURL(path.join(root, dir, 'where.mjs')).href;
    const found = bindingPackageDir(from);
    const imported = fileURLToPath(
      execFileSync(process.execPath, [path.join(root, dir, 'where.mjs')], { encoding: 'utf8' }),
    );
    expect(path.join(found, 'dist', 'index.js')).toBe(imported);
  });

  test('none on the way up: not installed', () => {
    expect(() => bindingPackageDir(pathToFileURL(path.join(os.tmpdir(), 'x.mjs')).href)).toThrow(
      /not installed/,
    );
  });
});
