import { readFileSync } from 'node:fs';
import { parseAgentSecret } from '../../src/protocol/auth.js';

/**
 * The agent's settings. The contract is docs/guest-interface.md: a KEY=value
 * file (systemd EnvironmentFile syntax) at /etc/vm-provisioner/agent.conf, or
 * wherever VMP_AGENT_CONFIG points; VMP_* environment variables (which the
 * systemd unit sets from the same file) override the file's values.
 */

export const DEFAULT_CONFIG_PATH = '/etc/vm-provisioner/agent.conf';
export const DEFAULT_PROXY_PORT = 9999;

export interface AgentConfig {
  vmName: string;
  proxyHost: string;
  proxyPort: number;
  secretFile: string;
  /** X display to watch; VMP_DISPLAY, else $DISPLAY, else `:0`. */
  display: string;
  /** A clone source: connect nowhere until an identity arrives on the wake channel (guest-agent/src/identity.ts). */
  awaitIdentity: boolean;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const KEYS = [
  'VMP_VM_NAME',
  'VMP_PROXY_HOST',
  'VMP_PROXY_PORT',
  'VMP_SECRET_FILE',
  'VMP_DISPLAY',
  'VMP_AWAIT_IDENTITY',
] as const;
type Key = (typeof KEYS)[number];

const RULES: Record<Key, { re: RegExp; rule: string }> = {
  VMP_VM_NAME: {
    re: /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
    rule: '1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit',
  },
  VMP_PROXY_HOST: {
    re: /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9.:-]*[A-Za-z0-9])?$/,
    rule: 'an IP address or host name',
  },
  VMP_PROXY_PORT: { re: /^[1-9][0-9]{0,4}$/, rule: 'an integer from 1 to 65535' },
  VMP_SECRET_FILE: { re: /^\/[A-Za-z0-9._/-]{1,4095}$/, rule: 'an absolute path of A-Z a-z 0-9 . _ - /' },
  VMP_DISPLAY: { re: /^[A-Za-z0-9._/-]*:[0-9]{1,5}(\.[0-9]{1,3})?$/, rule: 'an X display such as :0' },
  VMP_AWAIT_IDENTITY: { re: /^[01]$/, rule: '0 or 1' },
};

/** Parses agent.conf text: KEY=value lines, `#` comments, blank lines. Unknown keys are an error. */
export function parseAgentConf(text: string, source = 'agent.conf'): Partial<Record<Key, string>> {
  const out: Partial<Record<Key, string>> = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new ConfigError(`${source}:${i + 1}: "${clip(line)}" is not KEY=value`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (!(KEYS as readonly string[]).includes(key)) {
      throw new ConfigError(`${source}:${i + 1}: unknown key "${clip(key)}" (known: ${KEYS.join(', ')})`);
    }
    out[key as Key] = value;
  });
  return out;
}

/** Merges file values with VMP_* environment overrides and validates every value. */
export function resolveAgentConfig(
  fileValues: Partial<Record<Key, string>>,
  env: NodeJS.ProcessEnv,
  source = 'agent.conf',
): AgentConfig {
  const get = (key: Key): string | undefined => {
    const fromEnv = env[key];
    return fromEnv !== undefined && fromEnv !== '' ? fromEnv : fileValues[key];
  };
  const need = (key: Key): string => {
    const value = get(key);
    if (value === undefined || value === '') throw new ConfigError(`${source}: ${key} is missing`);
    return check(key, value);
  };
  const port = Number(check('VMP_PROXY_PORT', get('VMP_PROXY_PORT') ?? String(DEFAULT_PROXY_PORT)));
  if (port > 65535) throw new ConfigError(`VMP_PROXY_PORT "${port}" must be ${RULES.VMP_PROXY_PORT.rule}`);
  const display = get('VMP_DISPLAY') ?? (env.DISPLAY || ':0');
  return {
    vmName: need('VMP_VM_NAME'),
    proxyHost: need('VMP_PROXY_HOST'),
    proxyPort: port,
    secretFile: need('VMP_SECRET_FILE'),
    display: check('VMP_DISPLAY', display),
    awaitIdentity: check('VMP_AWAIT_IDENTITY', get('VMP_AWAIT_IDENTITY') ?? '0') === '1',
  };
}

/**
 * Loads the config the way the agent does at start: the file is optional when
 * the environment carries every required key (systemd's EnvironmentFile).
 */
export function loadAgentConfig(env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const path = env.VMP_AGENT_CONFIG || DEFAULT_CONFIG_PATH;
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' || env.VMP_AGENT_CONFIG) {
      throw new ConfigError(`config file ${path}: ${(err as Error).message}`);
    }
  }
  return resolveAgentConfig(parseAgentConf(text, path), env, path);
}

/**
 * Reads the VM's agent secret (64 lower-case hex digits, trailing newline
 * allowed; docs/protocol.md "Authentication") and returns the 32-byte HMAC key.
 */
export function readSecret(path: string): Buffer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`secret file ${path}: ${(err as Error).message}`);
  }
  const key = parseAgentSecret(text);
  if (!key) throw new ConfigError(`secret file ${path}: content must be 64 lower-case hex digits`);
  return key;
}

function check(key: Key, value: string): string {
  if (!RULES[key].re.test(value)) throw new ConfigError(`${key} "${clip(value)}" must be ${RULES[key].rule}`);
  return value;
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
