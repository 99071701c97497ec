import { consoleLogPath } from '../install/logs.js';
import fs from 'node:fs/promises';
import path from 'node:path';
import { configDiskFiles, type ConfigDiskFile } from '../configdisk/layout.js';
import { renderDomainXml } from '../render/domain-xml.js';
import { renderKickstart } from '../render/kickstart.js';
import { diskPathOf, importedVmPaths } from '../spec/defaults.js';
import type { CreateOptions } from '../spec/build.js';
import type { NetworkMode, VmSpec } from '../spec/types.js';
import { generateAgentSecret, generatePassword } from '../secrets/password.js';
import { sha512Crypt } from '../secrets/sha512crypt.js';
import { VmpError } from '../util/errors.js';
import { agentBundlePath, packageVersion } from '../util/package-info.js';

/** The port the host proxy listens on for guest agents. */
export const PROXY_PORT = 9999;

/**
 * Where a guest reaches the host proxy. QEMU user-mode networking maps the
 * host to 10.0.2.2; libvirt's `default` NAT network puts the host on its
 * bridge, 192.168.122.1 unless the network was reconfigured. A VM without a
 * NIC cannot reach the proxy at all; its agent is configured for loopback and
 * simply stays disconnected.
 */
export function proxyHostFor(mode: NetworkMode): string {
  switch (mode) {
    case 'user':
      return '10.0.2.2';
    case 'default':
      return '192.168.122.1';
    case 'none':
      return '127.0.0.1';
  }
}

export async function loadAgentBundle(file = agentBundlePath()): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new VmpError(`the guest agent bundle ${file} is missing: run "npm run build" first`);
    }
    throw err;
  }
}

export interface GeneratedFiles {
  kickstart: string;
  domainXml: string;
}

/** The kickstart and the installed VM's domain XML for one spec. Pure apart from its inputs. */
export function renderVmFiles(
  spec: VmSpec,
  options: Pick<CreateOptions, 'location'>,
  credentials: { passwordHash: string; agentSecret: string },
  agentBundle: string,
  template = false,
): GeneratedFiles {
  const kickstart = renderKickstart(spec, {
    passwordHash: credentials.passwordHash,
    agentSecret: credentials.agentSecret,
    agentBundle,
    proxyHost: proxyHostFor(spec.networkMode),
    proxyPort: PROXY_PORT,
    ...(options.location !== undefined ? { installTree: options.location } : {}),
    ...(template ? { template } : {}),
  });
  const domainXml = renderDomainXml(spec, {
    diskPath: diskPathOf(spec),
    consoleLog: consoleLogPath(spec.name),
    version: packageVersion(),
  });
  return { kickstart, domainXml };
}

/**
 * Writes a dry run's files into `dir` (created 0700 if absent): the kickstart,
 * the domain XML and the plan. Files are 0600: the kickstart carries a
 * password hash. Returns the paths written.
 */
export async function writeDryRunFiles(
  dir: string,
  name: string,
  // No kickstart for `create --import`: an imported VM is not installed.
  files: Partial<GeneratedFiles> & Pick<GeneratedFiles, 'domainXml'> & { plan: string },
): Promise<string[]> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const out: Array<[string, string]> = [
    ...(files.kickstart !== undefined ? [[`${name}.ks`, files.kickstart] as [string, string]] : []),
    [`${name}.xml`, files.domainXml],
    [`${name}-plan.txt`, files.plan],
  ];
  const written: string[] = [];
  for (const [file, content] of out) {
    const target = path.join(dir, file);
    const temp = `${target}.tmp-${process.pid}`;
    await fs.writeFile(temp, content, { mode: 0o600, flag: 'wx' });
    await fs.rename(temp, target);
    written.push(target);
  }
  return written;
}

/**
 * A dry run renders everything a real create would, so every generator and
 * grammar check runs, but with a throwaway password and agent secret that are
 * never stored: the keyring is not touched.
 */
export async function renderDryRun(
  spec: VmSpec,
  options: Pick<CreateOptions, 'location'>,
): Promise<{ files: GeneratedFiles; note: string }> {
  const agentSecret = generateAgentSecret();
  const passwordHash = sha512Crypt(generatePassword());
  const files = renderVmFiles(spec, options, { passwordHash, agentSecret }, await loadAgentBundle());
  const lines = files.kickstart.split('\n').length;
  const note =
    `Rendered a ${lines}-line kickstart and the domain XML (dry run: with a throwaway password that ` +
    'is not stored; a real create keeps its password in the OS keyring).';
  return { files, note };
}

/**
 * An imported VM's domain: its disk copy, its config disk and, with direct
 * boot, its own copies of the kernel and initrd (recorded as owned files, so
 * `destroy` removes them).
 */
export function renderImportDomainXml(
  spec: VmSpec,
  importBoot: CreateOptions['importBoot'],
  version: string,
  local: { displayOwner?: { uid: number; gid: number }; agentSocket?: string } = {},
): string {
  const paths = importedVmPaths(spec);
  const boot = importBoot
    ? { kernel: paths.kernel, initrd: paths.initrd, cmdline: importBoot.kernelArgs }
    : undefined;
  return renderDomainXml(spec, {
    diskPath: diskPathOf(spec),
    configDiskPath: paths.configDisk,
    ...(boot ? { boot, ownedFiles: [boot.kernel, boot.initrd] } : {}),
    consoleLog: consoleLogPath(spec.name),
    ...local,
    version,
  });
}

/** The VM's config disk files, with the agent pointed at the proxy as this VM's network reaches it. */
export function vmConfigDiskFiles(
  spec: VmSpec,
  credentials: { passwordHash: string; agentSecret: string },
  extra: { pendingFlatpaks?: string[] } = {},
): ConfigDiskFile[] {
  return configDiskFiles({
    spec,
    credentials,
    ...(extra.pendingFlatpaks ? { pendingFlatpaks: extra.pendingFlatpaks } : {}),
    proxyHost: proxyHostFor(spec.networkMode),
    proxyPort: PROXY_PORT,
  });
}

/**
 * `create --import --dry-run`: the domain XML the import would define and
 * the config disk's file list, rendered with a throwaway password and agent
 * secret that are never stored. Names only, never the disk's contents.
 */
export function renderImportDryRun(
  spec: VmSpec,
  options: Pick<CreateOptions, 'importBoot'>,
): { files: Pick<GeneratedFiles, 'domainXml'>; note: string } {
  const domainXml = renderImportDomainXml(spec, options.importBoot, packageVersion());
  const diskFiles = vmConfigDiskFiles(spec, {
    passwordHash: sha512Crypt(generatePassword()),
    agentSecret: generateAgentSecret(),
  });
  const note =
    `Rendered the domain XML and a config disk of ${diskFiles.length} files ` +
    `(${diskFiles.map((f) => f.path).join(', ')}); dry run: with a throwaway password that is not stored.`;
  return { files: { domainXml }, note };
}
