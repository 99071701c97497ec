import { AlreadyExistsError, InputError } from '../../../src/util/errors.js';
import { autoName, chooseFreeName, suffixedName } from '../../../src/spec/naming.js';
import { validateVmName } from '../../../src/spec/validate.js';

const NOW = new Date('2026-11-23T12:00:00Z');

describe('autoName (the predecessor rules)', () => {
  test('first Flatpak ID, dots to dashes, lower-cased, -vm', () => {
    expect(autoName({ flatpakPackages: ['org.mozilla.firefox'], systemPackages: ['git'] })).toBe(
      'org-mozilla-firefox-vm',
    );
    expect(autoName({ flatpakPackages: ['com.jetbrains.IntelliJ-IDEA-Community'], systemPackages: [] })).toBe(
      'com-jetbrains-intellij-idea-community-vm',
    );
    expect(autoName({ flatpakPackages: ['_a._b.C_d'], systemPackages: [] })).toBe('a-b-c-d-vm');
  });

  test('else the first system package', () => {
    expect(autoName({ flatpakPackages: [], systemPackages: ['git', 'gcc'] })).toBe('git-vm');
    expect(autoName({ flatpakPackages: [], systemPackages: ['@^workstation-product-environment'] })).toBe(
      'workstation-product-environment-vm',
    );
    expect(autoName({ flatpakPackages: [], systemPackages: ['gcc-c++'] })).toBe('gcc-c-vm');
    expect(autoName({ flatpakPackages: [], systemPackages: ['kernel-6.*'] })).toBe('kernel-6-vm');
  });

  test('else app-vm-<unix seconds>', () => {
    expect(autoName({ flatpakPackages: [], systemPackages: [] }, NOW)).toBe('app-vm-1795435200');
  });

  test('long sources are trimmed to a valid 63-character name', () => {
    const id = `org.example.${'A'.repeat(240)}`;
    const name = autoName({ flatpakPackages: [id], systemPackages: [] });
    expect(name).toHaveLength(63);
    expect(name.endsWith('-vm')).toBe(true);
    expect(validateVmName(name)).toBe(name);
    // A cut landing on a dash must not leave "--vm".
    const dashy = autoName({ flatpakPackages: [`a.b.${'c'.repeat(55)}-ddd`], systemPackages: [] });
    expect(dashy).not.toMatch(/--vm$/);
    expect(validateVmName(dashy)).toBe(dashy);
  });
});

describe('suffixes and taken names', () => {
  test('suffixedName keeps within 63 characters', () => {
    expect(suffixedName('git-vm', 1)).toBe('git-vm');
    expect(suffixedName('git-vm', 2)).toBe('git-vm-2');
    const long = 'a'.repeat(63);
    expect(suffixedName(long, 12)).toBe(`${'a'.repeat(60)}-12`);
  });

  test('a generated name takes the first free numeric suffix', async () => {
    const taken = new Set(['git-vm', 'git-vm-2']);
    await expect(chooseFreeName('git-vm', true, (n) => taken.has(n))).resolves.toBe('git-vm-3');
  });

  test('a chosen name that is taken is an error, not renamed', async () => {
    const err = await chooseFreeName('office-vm', false, async () => true).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AlreadyExistsError);
    expect((err as Error).message).toBe('a VM named "office-vm" already exists; choose another --name');
  });

  test('a free chosen name is kept', async () => {
    await expect(chooseFreeName('office-vm', false, () => false)).resolves.toBe('office-vm');
  });

  test('gives up after 999 suffixes', async () => {
    const err = await chooseFreeName('git-vm', true, () => true).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toMatch(/no free name from "git-vm" to "git-vm-999"/);
  });
});
