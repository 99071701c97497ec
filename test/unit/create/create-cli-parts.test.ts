import { CreateProgress, progressBar } from '../../../src/cli/create-progress.js';
import { parseInstallTimeout } from '../../../src/cli/commands/create.js';
import { renderDomainXml } from '../../../src/render/domain-xml.js';
import { defaultSpec } from '../../../src/spec/defaults.js';
import { InputError } from '../../../src/util/errors.js';

test('the domain XML carries the UUID create chose, and refuses a malformed one', () => {
  const spec = defaultSpec('vmp-t-create-uuid', { flatpakPackages: ['org.mozilla.firefox'] });
  const uuid = '0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0';
  const xml = renderDomainXml(spec, { diskPath: '/var/lib/libvirt/images/x.qcow2', version: '0.1.0', uuid });
  expect(xml).toContain(
    '<name>vmp-t-create-uuid</name>\n  <uuid>0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0</uuid>',
  );
  expect(() =>
    renderDomainXml(spec, { diskPath: '/x.qcow2', version: '0.1.0', uuid: '1234</uuid><evil/>' }),
  ).toThrow(/domain UUID '1234<\/uuid><evil\/>' is invalid/);
  expect(renderDomainXml(spec, { diskPath: '/x.qcow2', version: '0.1.0' })).not.toContain('<uuid>');
});

test('--install-timeout: minutes 1-1440, default 90', () => {
  expect(parseInstallTimeout(undefined)).toBe(90);
  expect(parseInstallTimeout('45')).toBe(45);
  for (const bad of ['0', '1441', '1.5', '90m', '', '-3']) {
    expect(() => parseInstallTimeout(bad)).toThrow(InputError);
  }
  expect(() => parseInstallTimeout(['5', '6'])).toThrow(/given 2 times/);
});

test('progress off a terminal: one line per step, download, stage and package decile', () => {
  let out = '';
  const progress = new CreateProgress({ write: (t) => (out += t), isTTY: false });
  progress.handle({ type: 'step', step: 'media', message: 'Fetching the installer' });
  const url = 'http://127.0.0.1/x';
  progress.handle({
    type: 'download',
    progress: { file: 'kernel', url, receivedBytes: 10, totalBytes: 2048 },
  });
  progress.handle({
    type: 'download',
    progress: { file: 'kernel', url, receivedBytes: 2048, totalBytes: 2048 },
  });
  progress.handle({ type: 'install-started', logPath: '/l/x-install.log' });
  progress.handle({
    type: 'install-progress',
    event: { type: 'stage', stage: 'installing-software', label: 'Installing software' },
  });
  for (let i = 1; i <= 20; i++) {
    progress.handle({
      type: 'install-progress',
      event: { type: 'package', name: `p${i}`, done: i, total: 20 },
    });
  }
  progress.handle({ type: 'install-progress', event: { type: 'success', vmName: 'x' } });
  progress.finish();
  const lines = out.trimEnd().split('\n');
  expect(lines.slice(0, 5)).toEqual([
    'Fetching the installer',
    '  downloaded vmlinuz (2.0 KiB)',
    '  console log: /l/x-install.log',
    '  Installing software',
    '  installed 1/20 packages',
  ]);
  expect(lines.filter((l) => l.includes('packages'))).toHaveLength(11);
  expect(lines.at(-2)).toBe('  installed 20/20 packages');
  expect(lines.at(-1)).toBe('  installer reported success for x');
  expect(out).not.toContain('\r');
});

test('progress bar', () => {
  expect(progressBar(0, 100, 10)).toBe('[----------]   0%');
  expect(progressBar(50, 100, 10)).toBe('[#####-----]  50%');
  expect(progressBar(5, 0, 10)).toBe('[----------]   0%');
  expect(progressBar(200, 100, 10)).toBe('[##########] 100%');
});
