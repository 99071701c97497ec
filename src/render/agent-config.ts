import { checkAbsolutePath, checkHost, checkPort, checkVmName } from './grammar.js';
import { renderPackagedTemplate } from './template.js';

/** Paths of the guest interface contract (docs/guest-interface.md). */
export const AGENT_CONF_PATH = '/etc/vm-provisioner/agent.conf';
export const AGENT_SECRET_PATH = '/etc/vm-provisioner/agent.secret';
export const AGENT_BUNDLE_PATH = '/usr/local/lib/vm-provisioner/vm-guest-agent.cjs';

export interface AgentConfInput {
  vmName: string;
  proxyHost: string;
  proxyPort: number;
  secretFile: string;
}

/**
 * agent.conf in systemd EnvironmentFile syntax. Values are unquoted, which is
 * safe only because each is checked against a grammar with no spaces, quotes,
 * `$` or `\`.
 */
export function renderAgentConf(input: AgentConfInput): string {
  return renderPackagedTemplate('templates/agent.conf.tmpl', {
    VM_NAME: checkVmName(input.vmName),
    PROXY_HOST: checkHost(input.proxyHost),
    PROXY_PORT: String(checkPort(input.proxyPort)),
    SECRET_FILE: checkAbsolutePath(input.secretFile, 'agent secret file'),
  });
}
