import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeWith } from '../../support/services.js';
import { probeCommand } from '../../support/tools.js';

/**
 * The first-boot Flatpak installer of app VMs on a template
 * (guest-agent/config-disk/vmp-install-flatpaks), with the real flatpak
 * command and a scratch HOME. Tests reach no network, so Flathub is never
 * reached: what is checked is the bookkeeping the host relies on (an ID is
 * recorded as installed only once it is, and recorded IDs are not retried).
 */

const INSTALLER = path.resolve('guest-agent/config-disk/vmp-install-flatpaks');

describeWith(probeCommand('flatpak', ['--version']), 'flatpak')('vmp-install-flatpaks', () => {
  let home: string;
  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-flatpaks-'));
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  const run = (list: string[], done?: string[]) => {
    const listFile = path.join(home, 'flatpaks');
    fs.writeFileSync(listFile, list.map((id) => `${id}\n`).join(''));
    const doneFile = path.join(home, '.local/share/vm-provisioner/flatpaks-installed');
    if (done) {
      fs.mkdirSync(path.dirname(doneFile), { recursive: true });
      fs.writeFileSync(doneFile, done.map((id) => `${id}\n`).join(''));
    }
    const r = spawnSync('bash', [INSTALLER], {
      encoding: 'utf8',
      timeout: 120_000,
      // No proxy, no route: the remote cannot be fetched here, as on a VM without a network.
      env: {
        PATH: process.env.PATH,
        HOME: home,
        VMP_FLATPAK_LIST: listFile,
        http_proxy: 'http://127.0.0.1:9',
        https_proxy: 'http://127.0.0.1:9',
      },
    });
    return { ...r, done: fs.existsSync(doneFile) ? fs.readFileSync(doneFile, 'utf8') : undefined };
  };

  test('an ID that cannot be installed fails the unit, is named, and is not recorded as installed', () => {
    const r = run(['org.example.Pending']);
    expect(r.status).not.toBe(0);
    expect(`${r.stdout}${r.stderr}`).toMatch(/org\.example\.Pending|flathub/);
    expect(r.done).toBe('');
  });

  test('IDs already recorded are not tried again; invalid IDs are skipped', () => {
    const r = run(['org.example.Done', 'not-an-id'], ['org.example.Done']);
    expect(r.stderr).toContain("skipping invalid ID 'not-an-id'");
    expect(r.status).toBe(0);
    expect(r.done).toBe('org.example.Done\n');
  });

  test('passes shellcheck', () => {
    const r = spawnSync('shellcheck', [INSTALLER], { encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.status).toBe(0);
  });
});
