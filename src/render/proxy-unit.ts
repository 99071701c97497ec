import { pathToFileURL } from 'node:url';
import { validateConnectUri } from '../spec/validate.js';
import { InputError } from '../util/errors.js';
import { renderPackagedTemplate } from './template.js';

/**
 * The systemd user unit of the window proxy (systemd/vm-provisioner-proxy.service.tmpl),
 * for one install: node and the CLI entry file by absolute path, so the unit
 * runs this install whatever PATH the user manager has.
 */

export const PROXY_UNIT_NAME = 'vm-provisioner-proxy.service';
export const PROXY_UNIT_TEMPLATE = 'systemd/vm-provisioner-proxy.service.tmpl';

export interface ProxyUnitInput {
  /** The Node.js binary (process.execPath). */
  node: string;
  /** The CLI's entry file (dist/src/cli/main.js of this install). */
  cli: string;
  /** Baked in when `service install` was given --connect; else the proxy resolves it at run time. */
  connect?: string;
  /** Existing documentation: absolute files (made file:// URLs) or man: references. */
  documentation: string[];
}

const PATH_RULE = 'must be an absolute path of printable ASCII without quotes or backslashes';

/** An absolute path for ExecStart: strict grammar first, then systemd's quoting and specifier escaping. */
export function checkUnitPath(what: string, value: string): string {
  if (!/^\/[\x20-\x7e]{0,1023}$/.test(value) || /["\\]/.test(value) || value.includes('/../')) {
    throw new InputError(`${what} ${JSON.stringify(value).slice(0, 80)} ${PATH_RULE}`);
  }
  return value;
}

/** One ExecStart word: `%` and `$` escaped (specifiers, variables), quoted when it holds a space. */
function execWord(word: string): string {
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return escaped.includes(' ') ? `"${escaped}"` : escaped;
}

function documentationUri(entry: string): string {
  if (/^man:[a-z0-9][a-z0-9._-]*\([0-9][a-z]*\)$/.test(entry)) return entry;
  const file = checkUnitPath('documentation file', entry);
  // A file URL has no spaces (they are %20); its % signs are systemd specifiers unless doubled.
  return pathToFileURL(file).href.replace(/%/g, '%%');
}

export function renderProxyUnit(input: ProxyUnitInput): string {
  const words = [
    checkUnitPath('node binary', input.node),
    checkUnitPath('CLI entry file', input.cli),
    'proxy',
  ];
  if (input.connect !== undefined) words.push('--connect', validateConnectUri(input.connect));
  if (input.documentation.length === 0) throw new InputError('the proxy unit needs a Documentation= entry');
  return renderPackagedTemplate(PROXY_UNIT_TEMPLATE, {
    EXEC_START: words.map(execWord).join(' '),
    DOCUMENTATION: input.documentation.map(documentationUri).join(' '),
  });
}

/** The shipped systemd/vm-provisioner-proxy.service: the unit for `sudo npm install -g` with Fedora's node. */
export const SHIPPED_PROXY_UNIT_INPUT: ProxyUnitInput = {
  node: '/usr/bin/node',
  cli: '/usr/local/lib/node_modules/vm-provisioner/dist/src/cli/main.js',
  documentation: ['/usr/local/lib/node_modules/vm-provisioner/README.md'],
};
