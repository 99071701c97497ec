import { buildCreateOptions } from '../../../src/spec/build.js';
import { formatPlan } from '../../../src/spec/plan.js';
import { validateKernelArgs } from '../../../src/spec/validate.js';
import { InputError } from '../../../src/util/errors.js';
import { testSpec } from '../../support/spec-fixture.js';

describe('create --import --kernel/--initrd/--kernel-args', () => {
  test('resolves the files against the working directory and keeps the arguments', () => {
    const options = buildCreateOptions(
      { import: 'g.qcow2', kernel: 'vmlinuz', initrd: '/boot/initrd.img', kernelArgs: 'root=/dev/vda rw' },
      '/work',
    );
    expect(options.importBoot).toEqual({
      kernel: '/work/vmlinuz',
      initrd: '/boot/initrd.img',
      kernelArgs: 'root=/dev/vda rw',
    });
    expect(buildCreateOptions({ import: 'g.qcow2', kernel: 'k', initrd: 'i' }, '/w').importBoot).toEqual({
      kernel: '/w/k',
      initrd: '/w/i',
      kernelArgs: '',
    });
    expect(buildCreateOptions({ import: 'g.qcow2' }, '/w').importBoot).toBeUndefined();
  });

  test.each([
    [{ kernel: 'k', initrd: 'i' }, /go with --import/],
    [{ kernelArgs: 'quiet' }, /go with --import/],
    [{ import: 'g', kernel: 'k' }, /--kernel and --initrd go together/],
    [{ import: 'g', initrd: 'i' }, /--kernel and --initrd go together/],
    [{ import: 'g', kernelArgs: 'quiet' }, /--kernel and --initrd go together/],
    [{ import: 'g', kernel: 'k', initrd: 'i', kernelArgs: ['a', 'b'] }, /--kernel-args was given 2 times/],
    [{ import: 'g', kernel: '', initrd: 'i' }, /invalid --kernel file/],
    [{ import: 'g', kernel: 'a b', initrd: 'i' }, /invalid --kernel file/],
  ])('refuses %p with a one-line InputError', (flags, message) => {
    const run = (): unknown => buildCreateOptions(flags, '/w');
    expect(run).toThrow(InputError);
    expect(run).toThrow(message);
  });

  test.each([
    'root=/dev/vda rw console=ttyS0',
    'root=UUID=0b1c-2d3e ro quiet splash=off',
    'init=/usr/lib/systemd/systemd systemd.unit=graphical.target console=tty0,115200',
  ])('accepts the kernel command line %p', (args) => {
    expect(validateKernelArgs(args)).toBe(args);
  });

  test.each([
    ['', /invalid --kernel-args ""/],
    ['root="/dev/vda"', /words of A-Z/],
    ["root='x'", /words of A-Z/],
    ['a  b', /separated by single spaces/],
    [' a', /invalid --kernel-args/],
    ['a\nb', /invalid --kernel-args "a\\nb"/],
    ['init=$(reboot)', /invalid --kernel-args/],
    ['a;b', /invalid --kernel-args/],
    ['x'.repeat(1025), /up to 1024 characters/],
  ])('refuses the kernel command line %p', (args, message) => {
    expect(() => validateKernelArgs(args)).toThrow(InputError);
    expect(() => validateKernelArgs(args)).toThrow(message);
  });

  test('the plan shows the config disk and how the VM boots', () => {
    const spec = testSpec({ name: 'xterm-vm', vmDir: '/vms' });
    const base = { connectUri: 'qemu:///system', force: false, yes: true, dryRun: true, verbose: false };
    const direct = formatPlan(spec, {
      ...base,
      importDisk: '/src/g.qcow2',
      importBoot: { kernel: '/src/vmlinuz', initrd: '/src/initrd.img', kernelArgs: 'root=/dev/vda' },
    });
    expect(direct).toContain('  config disk:     /vms/xterm-vm-config.img (read-only, made per VM)\n');
    expect(direct).toContain(
      '  boot:            kernel /src/vmlinuz, initrd /src/initrd.img (copied into /vms), args root=/dev/vda\n',
    );
    expect(formatPlan(spec, { ...base, importDisk: '/src/g.qcow2' })).toContain(
      "  boot:            the imported disk's boot loader\n",
    );
    expect(formatPlan(spec, base)).not.toContain('config disk');
  });
});
