import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { readyPaths } from '../../src/disposable/ready-state.js';
import { describeDomain } from '../../src/libvirt/inspect.js';
import { poolNameFor } from '../../src/storage/volumes.js';
import { AGENT_SECRET_SERVICE, PASSWORD_SERVICE } from '../../src/service/ports.js';
import { CLI } from '../support/cli.js';
import { secretToolLookup } from '../support/keyring-control.js';
import { allDomainNames, removeDomain, virsh } from '../support/libvirt-fixture.js';
import { describeWith } from '../support/services.js';
import {
  AppVmHost,
  buildGuestImage,
  isXterm,
  showsWindow,
  type GuestImage,
  type ProxyEventLine,
  type WindowView,
  probeE2e,
} from './support/app-vm-host.js';
import { procState } from '../support/processes.js';

/**
 * Disposables on a real guest (docs/disposables.md): the e2e Debian image
 * imported as a template; `run --disposable -- xterm` boots a throwaway VM
 * whose xterm reaches the real proxy; closing the xterm in the guest removes
 * every trace of it; so does SIGTERM of the CLI; and after a few in a row,
 * one of whose CLIs is SIGKILLed mid-start, `gc` leaves nothing. Those
 * boot cold (`disposable_clones = false`); the last ones start from a clone
 * of the template's ready state, which the first of them prepares. The
 * 50-in-a-row run with timings is bench/disposable.ts.
 */

const WINDOW_DEADLINE_MS = 240_000;

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

describeWith(probeE2e(), 'end-to-end disposables')('run --disposable on a real guest', () => {
  const template = AppVmHost.vmName('disptmpl');
  let image: GuestImage;
  let host: AppVmHost;
  let follow: { events: ProxyEventLine[]; stop: () => void };
  const made = new Set<string>();
  /** The disposable the first clone run preloaded for the next (docs/disposables-clones.md). */
  let preloaded = '';

  beforeAll(async () => {
    image = await buildGuestImage();
    host = new AppVmHost();
    await host.startProxy();
    follow = host.follow();
    const imported = await host.importTemplate(template, image);
    expect({ code: imported.code, stderr: imported.stderr }).toEqual({ code: 0, stderr: '' });
    // The cold boot first: the tests of clones turn them on.
    setClones(false);
  }, 40 * 60_000);

  const defaultsFile = (): string => path.join(host.env.XDG_CONFIG_HOME!, 'vm-provisioner', 'defaults.toml');
  function setClones(on: boolean): void {
    fs.mkdirSync(path.dirname(defaultsFile()), { recursive: true });
    fs.writeFileSync(defaultsFile(), `disposable_clones = ${String(on)}\n`);
  }
  /** The disposables' domains on this suite's template (a preloaded one among them). */
  const disposablesOfTemplate = (): string[] =>
    allDomainNames().filter(
      (d) =>
        /^disp\d{4}$/.test(d) &&
        describeDomain(virsh('dumpxml', d, '--inactive')).template?.name === template,
    );
  /** The ready state's files (docs/disposables-clones.md), shared by every clone. */
  const readyFiles = (): string[] => {
    const p = readyPaths({ name: template, vmDir: host.vmDir });
    return [p.record, p.saveImage, p.root, p.private, p.configDisk];
  };

  afterAll(async () => {
    follow?.stop();
    for (const name of [...made, template]) if (allDomainNames().includes(name)) removeDomain(name);
    await host?.close();
  }, 300_000);

  function runDisposable(argv: string[], extraEnv: NodeJS.ProcessEnv = {}): ReturnType<typeof disposableCli> {
    return disposableCli(
      ['run', '--disposable', '--template', template, '--no-viewer', '--timeout', '300', '--', ...argv],
      extraEnv,
    );
  }

  function disposableCli(
    args: string[],
    extraEnv: NodeJS.ProcessEnv = {},
  ): {
    child: ChildProcess;
    exited: Promise<Exit>;
    name: () => string | undefined;
  } {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...host.env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
      const m = /^(disp\d{4}): disposable on template/m.exec(stderr);
      if (m) made.add(m[1]!);
    });
    const exited = new Promise<Exit>((resolve) =>
      child.on('close', (code) => resolve({ code, stdout, stderr })),
    );
    return { child, exited, name: () => /^(disp\d{4}): disposable on template/m.exec(stderr)?.[1] };
  }

  /** Every trace a disposable could leave, each listed when present. */
  async function tracesOf(name: string): Promise<string[]> {
    const traces: string[] = [];
    if (allDomainNames().includes(name)) traces.push(`domain ${name}`);
    for (const f of fs.readdirSync(host.vmDir).filter((f) => f.startsWith(`${name}-`)))
      traces.push(`file ${f}`);
    try {
      const pool = poolNameFor(host.vmDir);
      virsh('pool-refresh', pool);
      for (const v of virsh('vol-list', pool, '--name')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.startsWith(`${name}-`)))
        traces.push(`volume ${v}`);
    } catch {
      // no pool for the directory: no volume either
    }
    const state = path.join(host.root, 'state', 'vm-provisioner');
    for (const sub of ['disposables', 'journal', 'logs']) {
      const dir = path.join(state, sub);
      if (!fs.existsSync(dir)) continue;
      for (const f of fs.readdirSync(dir).filter((f) => f.startsWith(name))) traces.push(`${sub}/${f}`);
    }
    if (fs.existsSync(path.join(host.root, 'config', 'vm-provisioner', `${name}.toml`)))
      traces.push('config');
    if (secretToolLookup(PASSWORD_SERVICE, name) !== null) traces.push('keyring password');
    if (secretToolLookup(AGENT_SECRET_SERVICE, name) !== null) traces.push('keyring agent secret');
    const windows = await host.cli(['windows', '--json'], 20_000);
    const known = (
      JSON.parse(windows.stdout) as { vms: Array<{ name: string; windows: unknown[] }> }
    ).vms.find((vm) => vm.name === name);
    if (known) traces.push(`proxy entry with ${known.windows.length} window(s)`);
    return traces;
  }

  async function xtermOf(
    run: ReturnType<typeof runDisposable>,
    since: number,
    isWanted: (w: WindowView) => boolean = isXterm,
  ): Promise<string> {
    const started = Date.now();
    let exit: Exit | undefined;
    void run.exited.then((e) => (exit = e));
    const name = await host.until(
      () => {
        if (exit) throw new Error(`the CLI ended first: ${JSON.stringify(exit)}`);
        const n = run.name();
        return n && follow.events.slice(since).some((e) => showsWindow(e, n, isWanted)) ? n : undefined;
      },
      'the disposable xterm at the proxy',
      WINDOW_DEADLINE_MS,
    );
    process.stderr.write(
      `e2e disposable: ${name}'s xterm after ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
    return name;
  }

  test(
    'a disposable runs xterm, seen at the proxy; closing it in the guest removes everything',
    async () => {
      const since = follow.events.length;
      const run = runDisposable(['xterm', '-T', 'vmp-disposable']);
      const name = await xtermOf(run, since);
      const d = describeDomain(virsh('dumpxml', name, '--inactive'));
      expect(d.role).toBe('disposable');
      expect(d.disposableOwner?.pid).toBe(run.child.pid);
      expect(d.template?.name).toBe(template);
      // It is there while it runs: the check below can fail.
      expect(await tracesOf(name)).toEqual(
        expect.arrayContaining([
          `domain ${name}`,
          'config',
          'keyring agent secret',
          `disposables/${name}.json`,
        ]),
      );
      closeXterms(name);
      const exit = await run.exited;
      expect(exit.stdout).toMatch(new RegExp(`^${name}: started xterm \\(pid \\d+ in the VM\\)$`, 'm'));
      // xterm may turn the SIGTERM into an exit of its own or die of it, or its window may
      // go first: each is an end, and the CLI's status follows the command's.
      const end = new RegExp(
        `^${name}: (its command exited with status (\\d+)|its command was killed by signal 15|its last window closed); removing it$`,
        'm',
      ).exec(exit.stderr);
      expect({ end: end?.[1], stderr: exit.stderr }).toEqual({
        end: expect.any(String),
        stderr: exit.stderr,
      });
      expect(exit.code).toBe(end?.[2] !== undefined && end[2] !== '0' ? 1 : 0);
      expect(exit.stderr).toMatch(new RegExp(`^${name}: removed$`, 'm'));
      expect(await tracesOf(name)).toEqual([]);
    },
    WINDOW_DEADLINE_MS + 120_000,
  );

  test(
    'open --disposable: only that file, read-only, opened in a new disposable; closing its window removes everything',
    async () => {
      const since = follow.events.length;
      const file = path.join(host.root, 'letter.txt');
      fs.writeFileSync(file, 'dear disposable\n');
      const run = disposableCli([
        'open',
        '--disposable',
        '--template',
        template,
        '--no-viewer',
        '--timeout',
        '300',
        file,
      ]);
      // The image's xdg-open stand-in shows the file in an xterm titled after it.
      const name = await xtermOf(run, since, (w) => w.title === 'vmp-opened letter.txt');
      const seen = await host.guestExec(name, '/bin/sh', [
        '-c',
        'find /run/user/*/vm-provisioner/open -type f -printf "%m %p\\n" && cat /run/user/*/vm-provisioner/open/*/letter.txt',
      ]);
      expect(seen.stdout).toMatch(
        /^444 \/run\/user\/\d+\/vm-provisioner\/open\/f-[^/]+\/letter\.txt\ndear disposable\n$/,
      );
      closeXterms(name);
      const exit = await run.exited;
      expect(exit.stdout).toMatch(
        new RegExp(
          `^${name}: opened /run/user/\\d+/vm-provisioner/open/f-[^/]+/letter\\.txt with xdg-open`,
          'm',
        ),
      );
      expect(exit.stderr).toMatch(new RegExp(`^${name}: its last window closed; removing it$`, 'm'));
      expect(exit.code).toBe(0);
      expect(fs.readFileSync(file, 'utf8')).toBe('dear disposable\n');
      expect(await tracesOf(name)).toEqual([]);
    },
    WINDOW_DEADLINE_MS + 120_000,
  );

  test(
    'SIGTERM of the CLI mid-run removes everything (exit 143)',
    async () => {
      const since = follow.events.length;
      const run = runDisposable(['xterm']);
      const name = await xtermOf(run, since);
      run.child.kill('SIGTERM');
      const exit = await run.exited;
      expect(exit.code).toBe(143);
      expect(await tracesOf(name)).toEqual([]);
    },
    WINDOW_DEADLINE_MS + 120_000,
  );

  test(
    'three in a row, the second SIGKILLed mid-start: gc leaves nothing',
    async () => {
      const names: string[] = [];
      // One that ends by itself: its command exits at once.
      const first = runDisposable(['/bin/true']);
      const firstExit = await first.exited;
      expect(firstExit.code).toBe(0);
      expect(firstExit.stderr).toMatch(/its command exited with status 0; removing it/);
      names.push(first.name()!);
      // Killed once its root volume is journaled (mid-create), before it could boot.
      const killed = runDisposable(['xterm'], { VMP_TEST_STOP_AT: 'private-volume' });
      await host.until(
        () => procState(killed.child.pid!) === 'T',
        'the CLI to stop at its test point',
        120_000,
      );
      names.push(killed.name() ?? recordedName(host.root));
      killed.child.kill('SIGKILL');
      await killed.exited;
      expect((await tracesOf(names[1]!)).length).toBeGreaterThan(0);
      // The next one removes the orphan as it starts; gc then has nothing left to do.
      const third = runDisposable(['/bin/true']);
      const thirdExit = await third.exited;
      expect(thirdExit.code).toBe(0);
      expect(thirdExit.stderr).toContain(`${names[1]}: removed (its owner was gone;`);
      names.push(third.name()!);
      const gc = await host.cli(['gc'], 120_000);
      expect({ code: gc.code, stderr: gc.stderr }).toEqual({ code: 0, stderr: '' });
      for (const name of names) expect({ name, traces: await tracesOf(name) }).toEqual({ name, traces: [] });
    },
    3 * WINDOW_DEADLINE_MS,
  );

  test(
    'Ctrl+C while it prepares the ready state: exit 130, nothing of the state or the disposable left',
    async () => {
      setClones(true);
      const source = `${template}-ready`;
      const run = runDisposable(['xterm']);
      await host.until(() => allDomainNames().includes(source), 'the clone source domain', 120_000);
      const name = recordedName(host.root);
      run.child.kill('SIGINT');
      const exit = await run.exited;
      expect({ code: exit.code, stderr: exit.stderr }).toEqual({ code: 130, stderr: expect.any(String) });
      expect(allDomainNames()).not.toContain(source);
      expect(fs.readdirSync(host.vmDir).filter((f) => f.startsWith(source))).toEqual([]);
      expect(secretToolLookup(PASSWORD_SERVICE, source)).toBeNull();
      const journal = path.join(host.root, 'state', 'vm-provisioner', 'journal');
      expect(fs.existsSync(journal) ? fs.readdirSync(journal) : []).toEqual([]);
      expect(await tracesOf(name)).toEqual([]);
    },
    WINDOW_DEADLINE_MS,
  );

  test(
    'a run SIGKILLed while it prepares the ready state: gc removes the half-made state and the disposable',
    async () => {
      setClones(true);
      const source = `${template}-ready`;
      const run = runDisposable(['xterm']);
      // The clone source is booting: its volumes, config disk and keyring entries exist.
      await host.until(() => allDomainNames().includes(source), 'the clone source domain', 120_000);
      const name = recordedName(host.root);
      run.child.kill('SIGKILL');
      await run.exited;
      const gc = await host.cli(['gc'], 120_000);
      expect({ code: gc.code, stderr: gc.stderr }).toEqual({ code: 0, stderr: '' });
      expect(gc.stdout).toMatch(new RegExp(`^${source}: removed the unfinished create`, 'm'));
      expect(allDomainNames()).not.toContain(source);
      expect(fs.readdirSync(host.vmDir).filter((f) => f.startsWith(source))).toEqual([]);
      expect(secretToolLookup(PASSWORD_SERVICE, source)).toBeNull();
      expect(secretToolLookup(AGENT_SECRET_SERVICE, source)).toBeNull();
      expect(await tracesOf(name)).toEqual([]);
    },
    WINDOW_DEADLINE_MS,
  );

  test(
    'from a clone: the first run prepares the ready state once, its xterm reaches the proxy; closing it removes all but the ready state',
    async () => {
      setClones(true);
      const since = follow.events.length;
      const run = runDisposable(['xterm', '-T', 'vmp-clone']);
      const name = await xtermOf(run, since);
      const d = describeDomain(virsh('dumpxml', name, '--inactive'));
      expect({ role: d.role, owner: d.disposableOwner?.pid, template: d.template?.name }).toEqual({
        role: 'disposable',
        owner: run.child.pid,
        template,
      });
      // Persistent (so a removal killed half-way still finds it), and hidden from list.
      expect(virsh('dominfo', name)).toMatch(/^Persistent:\s+yes$/m);
      const listed = (args: string[]) =>
        host
          .cli(['list', '--json', ...args], 20_000)
          .then((r) => JSON.parse(r.stdout) as Array<{ name: string; disposable?: boolean }>);
      expect((await listed([])).map((vm) => vm.name)).not.toContain(name);
      expect((await listed(['--disposables'])).find((vm) => vm.name === name)).toMatchObject({
        name,
        disposable: true,
      });
      const running = await tracesOf(name);
      expect(running).toEqual(
        expect.arrayContaining([`domain ${name}`, 'keyring agent secret', `disposables/${name}.json`]),
      );
      // A clone has no config file and no password of its own: the shared ready state's.
      expect(running).not.toContain('config');
      closeXterms(name);
      const exit = await run.exited;
      const preparing =
        exit.stderr.match(/^preparing template .*'s ready state for fast disposables/gm) ?? [];
      expect({ preparing: preparing.length, stderr: exit.stderr }).toEqual({
        preparing: 1,
        stderr: exit.stderr,
      });
      expect(exit.stderr).not.toMatch(/: no clone \(/);
      expect(exit.stderr).toMatch(new RegExp(`^${name}: removed$`, 'm'));
      expect(await tracesOf(name)).toEqual([]);
      for (const file of readyFiles())
        expect({ file, there: fs.existsSync(file) }).toEqual({ file, there: true });
      // Once its window was up it preloaded the next one: running, its agent connected, hidden from list.
      preloaded = /^(disp\d{4}): preloaded for the next disposable on /m.exec(exit.stderr)?.[1] ?? '';
      expect({ preloaded, stderr: exit.stderr }).toEqual({
        preloaded: expect.stringMatching(/^disp\d{4}$/),
        stderr: exit.stderr,
      });
      made.add(preloaded);
      expect(virsh('domstate', preloaded).trim()).toBe('running');
      expect(describeDomain(virsh('dumpxml', preloaded, '--inactive')).template?.name).toBe(template);
      expect((await listed([])).map((vm) => vm.name)).not.toContain(preloaded);
      const record = JSON.parse(
        fs.readFileSync(
          path.join(host.root, 'state', 'vm-provisioner', 'disposables', `${preloaded}.json`),
          'utf8',
        ),
      ) as { preloaded?: { readySavedAt: string } };
      expect(record.preloaded?.readySavedAt).toEqual(expect.any(String));
    },
    WINDOW_DEADLINE_MS + 120_000,
  );

  test(
    'the next run takes the preloaded disposable; SIGKILLed, gc removes all of it (and any preloaded) and keeps the ready state',
    async () => {
      const since = follow.events.length;
      const run = runDisposable(['xterm']);
      const name = await xtermOf(run, since);
      run.child.kill('SIGKILL');
      const exit = await run.exited;
      // The preloaded one, running since the test before: no preparing, no clone restore, no boot.
      expect({ name, stderr: exit.stderr }).toEqual({
        name: preloaded,
        stderr: expect.stringMatching(new RegExp(`^${preloaded}: a preloaded disposable$`, 'm')),
      });
      expect(exit.stderr).not.toMatch(/preparing template|no clone/);
      expect(await tracesOf(name)).toEqual(
        expect.arrayContaining([`domain ${name}`, 'keyring agent secret', `disposables/${name}.json`]),
      );
      const gc = await host.cli(['gc'], 120_000);
      expect({ code: gc.code, stderr: gc.stderr }).toEqual({ code: 0, stderr: '' });
      expect(gc.stdout).toMatch(new RegExp(`^${name}: removed the disposable whose owner is gone`, 'm'));
      expect(await tracesOf(name)).toEqual([]);
      // gc also removes preloaded ones (the killed run may have been preloading one): none is left.
      expect(disposablesOfTemplate()).toEqual([]);
      for (const file of readyFiles())
        expect({ file, there: fs.existsSync(file) }).toEqual({ file, there: true });
    },
    WINDOW_DEADLINE_MS + 120_000,
  );

  test(
    'open --disposable from a clone: closing its window removes everything but the ready state',
    async () => {
      const since = follow.events.length;
      const file = path.join(host.root, 'clone-letter.txt');
      fs.writeFileSync(file, 'dear clone\n');
      const run = disposableCli([
        'open',
        '--disposable',
        '--template',
        template,
        '--no-viewer',
        '--timeout',
        '300',
        file,
      ]);
      const name = await xtermOf(run, since, (w) => w.title === 'vmp-opened clone-letter.txt');
      expect(virsh('dominfo', name)).toMatch(/^Persistent:\s+yes$/m);
      closeXterms(name);
      const exit = await run.exited;
      expect(exit.stderr).not.toMatch(/preparing template|: no clone \(/);
      expect(exit.stderr).toMatch(new RegExp(`^${name}: its last window closed; removing it$`, 'm'));
      expect(exit.code).toBe(0);
      expect(await tracesOf(name)).toEqual([]);
      for (const f of readyFiles()) expect({ f, there: fs.existsSync(f) }).toEqual({ f, there: true });
    },
    WINDOW_DEADLINE_MS + 120_000,
  );

  test('template destroy removes its preloaded disposable and the ready state first', async () => {
    // The open --disposable run before preloaded one.
    const waiting = disposablesOfTemplate();
    expect(waiting).toHaveLength(1);
    const destroyed = await host.cli(['template', 'destroy', template], 120_000);
    expect({ code: destroyed.code, stderr: destroyed.stderr }).toEqual({ code: 0, stderr: '' });
    expect(destroyed.stdout).toMatch(new RegExp(`^${waiting[0]}: preloaded disposable removed$`, 'm'));
    expect(await tracesOf(waiting[0]!)).toEqual([]);
    for (const file of readyFiles())
      expect({ file, there: fs.existsSync(file) }).toEqual({ file, there: false });
    expect(secretToolLookup(PASSWORD_SERVICE, `${template}-ready`)).toBeNull();
  }, 180_000);
});

/**
 * Closes the guest's xterms (pkill through the QEMU guest agent), without waiting for pkill's status:
 * the disposable, and its guest agent with it, may be gone before that could be read.
 */
function closeXterms(name: string): void {
  virsh(
    'qemu-agent-command',
    name,
    JSON.stringify({ execute: 'guest-exec', arguments: { path: '/usr/bin/pkill', arg: ['-x', 'xterm'] } }),
    '--timeout',
    '10',
  );
}

/** The one disposable record a stopped CLI has written (it logs its name only once started). */
function recordedName(root: string): string {
  const dir = path.join(root, 'state', 'vm-provisioner', 'disposables');
  const records = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
  if (records.length !== 1) throw new Error(`expected one disposable record, found ${records.join(', ')}`);
  return records[0]!.slice(0, -'.json'.length);
}
