import { createHash } from 'node:crypto';
import type { VmSpec } from '../spec/types.js';
import { InputError } from '../util/errors.js';
import { AGENT_BUNDLE_PATH, AGENT_CONF_PATH, AGENT_SECRET_PATH, renderAgentConf } from './agent-config.js';
import {
  checkAgentSecret,
  checkFirewallRule,
  checkInstallTree,
  checkPackage,
  checkPasswordHash,
  checkSpecForGuest,
} from './grammar.js';
import { I3_CONFIG_PATH, renderI3Config } from './i3config.js';
import { LIGHTDM_CONF_PATH, renderLightdmConf } from './lightdm.js';
import { loadTemplate, renderPackagedTemplate } from './template.js';
import {
  USER_UNIT_DIR,
  renderAgentUnit,
  renderAppUnits,
  renderSessionTarget,
  type UnitFile,
} from './units.js';

export interface KickstartInput {
  /** The VM password as a SHA-512 crypt hash (src/secrets); never the password. */
  passwordHash: string;
  /** The per-VM agent secret (written to agent.secret, mode 0600, owned by `user`). */
  agentSecret: string;
  /** The bundled guest agent (vm-guest-agent.cjs), embedded in %post as base64. */
  agentBundle: string;
  /** Where the guest agent reaches the host proxy. */
  proxyHost: string;
  proxyPort: number;
  /** Install tree URL (`url --url=`); default: the Fedora mirror network's Everything tree plus updates. */
  installTree?: string;
  /**
   * A template (`template create`): also install the per-VM config-disk loader and the first-boot
   * Flatpak installer, so app VMs on it take their identity from their own config disk
   * (docs/config-disk.md, docs/templates.md).
   */
  template?: boolean;
}

/** The guest files a template carries besides the agent: repo path, guest path, mode. */
export const TEMPLATE_GUEST_FILES: ReadonlyArray<readonly [string, string, string]> = [
  ['guest-agent/config-disk/vmp-apply-config', '/usr/local/lib/vm-provisioner/vmp-apply-config', '0755'],
  [
    'guest-agent/config-disk/vmp-install-flatpaks',
    '/usr/local/lib/vm-provisioner/vmp-install-flatpaks',
    '0755',
  ],
  ['systemd/vm-provisioner-config.service', '/etc/systemd/system/vm-provisioner-config.service', '0644'],
  ['systemd/vm-flatpak-install.service', '/etc/systemd/user/vm-flatpak-install.service', '0644'],
  // Seamless windows (docs/seamless.md): the display bridge, the session's xpra server, the port's owner.
  ['guest-agent/seamless/vmp-display-bridge', '/usr/local/lib/vm-provisioner/vmp-display-bridge', '0755'],
  ['systemd/vm-display-bridge.service', '/etc/systemd/user/vm-display-bridge.service', '0644'],
  ['systemd/vm-seamless-xpra.service', '/etc/systemd/user/vm-seamless-xpra.service', '0644'],
  [
    'guest-agent/udev/61-vm-provisioner-display.rules',
    '/etc/udev/rules.d/61-vm-provisioner-display.rules',
    '0644',
  ],
  // A restored clone's host name and machine ID (docs/protocol.md, "Identity of a clone").
  ['guest-agent/config-disk/vmp-apply-identity', '/usr/local/lib/vm-provisioner/vmp-apply-identity', '0755'],
  ['systemd/vmp-apply-identity.path', '/etc/systemd/system/vmp-apply-identity.path', '0644'],
  ['systemd/vmp-apply-identity.service', '/etc/systemd/system/vmp-apply-identity.service', '0644'],
];

/** What a template adds to %packages for seamless windows: xpra's server on an Xvfb display, and xauth for its cookie. */
export const SEAMLESS_PACKAGES: readonly string[] = ['xpra', 'xorg-x11-server-Xvfb', 'xorg-x11-xauth'];

function templateSteps(): string {
  return [
    'install -d -m 0755 /usr/local/lib/vm-provisioner /etc/systemd/system /etc/systemd/user /etc/udev/rules.d',
    ...TEMPLATE_GUEST_FILES.map(([from, to, mode]) => writeFileStep(to, mode, loadTemplate(from))),
    'systemctl enable vm-provisioner-config.service',
    'systemctl enable vmp-apply-identity.path',
    'systemctl --global enable vm-flatpak-install.service',
    'systemctl --global enable vm-display-bridge.service',
  ].join('\n');
}

/** Packages every app VM gets, before the spec's own system packages. */
export const BASE_PACKAGES: readonly string[] = [
  '@^minimal-environment',
  '@base-x',
  'i3',
  'dmenu',
  'lightdm',
  'lightdm-gtk',
  'kitty',
  'dejavu-sans-fonts',
  'dejavu-sans-mono-fonts',
  'dejavu-serif-fonts',
  'xdotool',
  'wmctrl',
  'xwininfo',
  'xprop',
  'spice-vdagent',
  'qemu-guest-agent',
  'flatpak',
  'nodejs',
];
/** Added when the spec enables audio. */
export const AUDIO_PACKAGES: readonly string[] = ['pipewire', 'pipewire-pulseaudio', 'wireplumber'];
/** firewalld's direct rules need the iptables front end, which Fedora no longer pulls in. */
export const FIREWALL_RULE_PACKAGES: readonly string[] = ['iptables-nft'];

/** The agent bundle goes through base64 into a kickstart; keep it to something a kickstart can carry. */
export const MAX_AGENT_BUNDLE_BYTES = 8 * 1024 * 1024;

export const FLATHUB_URL = 'https://dl.flathub.org/repo/flathub.flatpakrepo';

/** The install source lines: `url --url=` (never a bare mirror list) and, by default, the updates repo. */
export function installSourceLines(release: number, arch: string, installTree?: string): string[] {
  if (installTree !== undefined) return [`url --url=${checkInstallTree(installTree)}`];
  return [
    `url --url=https://download.fedoraproject.org/pub/fedora/linux/releases/${release}/Everything/${arch}/os/`,
    `repo --name=updates --metalink=https://mirrors.fedoraproject.org/metalink?repo=updates-released-f${release}&arch=${arch}`,
  ];
}

/** %packages body: the base set, optional audio/firewall extras, then the spec's packages, each once. */
export function packageList(spec: VmSpec): string[] {
  const all = [
    ...BASE_PACKAGES,
    ...(spec.enableAudio ? AUDIO_PACKAGES : []),
    ...(spec.firewallRules.length > 0 ? FIREWALL_RULE_PACKAGES : []),
    ...spec.systemPackages.map(checkPackage),
  ];
  return [...new Set(all)];
}

const HEREDOC_END = 'VMP_FILE_END';

/**
 * A shell step that writes `content` to `path` through a quoted heredoc, so
 * no shell expansion happens inside it. Content that could end the heredoc or
 * a kickstart section early is refused.
 */
export function writeFileStep(path: string, mode: string, content: string): string {
  for (const line of content.split('\n')) {
    if (line === HEREDOC_END || line.startsWith('%')) {
      throw new InputError(
        `file ${path} has a line ${JSON.stringify(line)} that would end a heredoc or kickstart section`,
      );
    }
  }
  const body = content.endsWith('\n') ? content : `${content}\n`;
  return `cat > ${path} << '${HEREDOC_END}'\n${body}${HEREDOC_END}\nchmod ${mode} ${path}`;
}

/** base64 in 76-column lines: safe inside a quoted heredoc and a kickstart section (no `%`, no delimiter). */
function base64Lines(data: string | Buffer): string {
  const b64 = Buffer.from(data).toString('base64');
  return (b64.match(/.{1,76}/g) ?? []).join('\n');
}

function unitSteps(units: UnitFile[]): string {
  return units.map((u) => writeFileStep(`${USER_UNIT_DIR}/${u.fileName}`, '0644', u.content)).join('\n');
}

/** One comment line for whoever debugs the install: an installer short of memory or disk fails oddly. */
function describeResources(spec: VmSpec): string {
  const n = (what: string, v: number): number => {
    if (!Number.isSafeInteger(v) || v < 1)
      throw new InputError(`invalid ${what} ${v}: must be a positive whole number`);
    return v;
  };
  const onOff = (b: boolean): string => (b ? 'on' : 'off');
  return [
    `${n('memory', spec.memoryMb)} MiB memory`,
    `${n('vCPU count', spec.vcpus)} vCPUs`,
    `${n('disk size', spec.diskSizeGb)} GiB disk`,
    `audio ${onOff(spec.enableAudio)}`,
    `auto-login ${onOff(spec.enableAutoLogin)}`,
  ].join(', ');
}

/**
 * Renders the Fedora kickstart that installs `spec` unattended: packages,
 * Flatpaks, LightDM auto-login into i3, one user unit per auto-launched app,
 * the guest agent with its credentials, and serial-console success/failure
 * markers. Pure: same input, same text. Every value is checked against its
 * grammar before it reaches the text.
 */
export function renderKickstart(spec: VmSpec, input: KickstartInput): string {
  checkSpecForGuest(spec);
  const passwordHash = checkPasswordHash(input.passwordHash);
  const agentSecret = checkAgentSecret(input.agentSecret);
  if (typeof input.agentBundle !== 'string' || input.agentBundle.length === 0) {
    throw new InputError('invalid agent bundle: must be the non-empty text of vm-guest-agent.cjs');
  }
  const bundleBytes = Buffer.from(input.agentBundle, 'utf8');
  if (bundleBytes.length > MAX_AGENT_BUNDLE_BYTES) {
    throw new InputError(
      `invalid agent bundle: ${bundleBytes.length} bytes is over the ${MAX_AGENT_BUNDLE_BYTES}-byte limit`,
    );
  }

  const appUnits = renderAppUnits(spec);
  const units = [renderSessionTarget(), ...appUnits, renderAgentUnit()];
  const enable = [...appUnits.map((u) => u.fileName), renderAgentUnit().fileName];
  const firewallRules = spec.firewallRules.map(checkFirewallRule);

  const post = renderPackagedTemplate('kickstart/post.sh.tmpl', {
    VM_NAME: spec.name,
    FLATPAK_APPS: spec.flatpakPackages.map((id) => `'${id}'`).join(' '),
    FILE_LIGHTDM: writeFileStep(LIGHTDM_CONF_PATH, '0644', renderLightdmConf(spec)),
    FILE_I3: writeFileStep(I3_CONFIG_PATH, '0644', renderI3Config(spec)),
    FILE_UNITS: unitSteps(units),
    ENABLE_UNITS: enable.join(' '),
    FILE_AGENT_CONF: writeFileStep(
      AGENT_CONF_PATH,
      '0644',
      renderAgentConf({
        vmName: spec.name,
        proxyHost: input.proxyHost,
        proxyPort: input.proxyPort,
        secretFile: AGENT_SECRET_PATH,
      }),
    ),
    TEMPLATE_FILES: input.template ? templateSteps() : '# (an app VM: no config-disk loader)',
    AGENT_SECRET_B64: base64Lines(agentSecret),
    AGENT_BUNDLE_B64: base64Lines(bundleBytes),
    AGENT_BUNDLE_SHA256: createHash('sha256').update(bundleBytes).digest('hex'),
    FIREWALL_RULES:
      firewallRules.length === 0
        ? '# (no firewall rules in the spec)'
        : firewallRules
            .flatMap((r) =>
              r.families.map(
                (f) =>
                  `firewall-offline-cmd --direct --add-rule ${f} filter ${r.chain} 0 ${r.args.join(' ')}`,
              ),
            )
            .join('\n'),
  });
  if (!post.includes(AGENT_BUNDLE_PATH)) throw new Error('post.sh.tmpl no longer installs the agent bundle');

  const postNochroot = renderPackagedTemplate('kickstart/post-nochroot.sh.tmpl', { VM_NAME: spec.name });

  return renderPackagedTemplate('kickstart/fedora.ks.tmpl', {
    VM_NAME: spec.name,
    FEDORA_RELEASE: String(spec.fedoraRelease),
    ARCH: spec.arch,
    RESOURCES: describeResources(spec),
    INSTALL_SOURCE: installSourceLines(spec.fedoraRelease, spec.arch, input.installTree).join('\n'),
    PASSWORD_HASH: passwordHash,
    PACKAGES: [...new Set([...packageList(spec), ...(input.template ? SEAMLESS_PACKAGES : [])])].join('\n'),
    POST_NOCHROOT: postNochroot.trimEnd(),
    POST: post.trimEnd(),
  });
}

/**
 * The shell bodies of a kickstart's %post sections, in order, for checks such
 * as shellcheck (header line and `%end` excluded).
 */
export function extractPostScripts(kickstart: string): Array<{ header: string; body: string }> {
  const out: Array<{ header: string; body: string }> = [];
  const lines = kickstart.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const header = lines[i] as string;
    if (!header.startsWith('%post')) continue;
    const end = lines.indexOf('%end', i + 1);
    if (end < 0) throw new Error(`unterminated ${header}`);
    out.push({ header, body: lines.slice(i + 1, end).join('\n') + '\n' });
    i = end;
  }
  return out;
}
