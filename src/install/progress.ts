/**
 * A pure parser for the installer's serial console: it turns Anaconda's
 * text-mode output into install stages, package counts and the outcome
 * markers our kickstart prints. It is fed text in arbitrary chunks (as the
 * log file grows) and keeps partial lines until their newline arrives.
 *
 * What Anaconda prints (text mode, `inst.text console=ttyS0`), as far as we
 * rely on it — every line is matched at its start, after stripping ANSI
 * escapes, carriage returns and the progress dots Anaconda's TUI prints:
 *   "Starting installer, one moment..."              (anaconda launcher)
 *   "anaconda 41.33-1.fc41 for Fedora Linux 41 started."
 *   "Setting up the installation environment"        (installation task categories,
 *   "Configuring storage"                             pyanaconda/installation.py)
 *   "Running pre-installation scripts" / "... tasks"
 *   "Starting package installation process"
 *   "Downloading 850 RPMs, 12.4 MiB / 812.3 MiB (1%) done."
 *   "Preparing transaction from installation source"
 *   "Installing glibc.x86_64 (12/850)"                (DNF transaction progress)
 *   "Performing post-installation setup tasks" / "Configuring installed system"
 *   "Running post-installation scripts"
 *   "Installation complete"
 * An incomplete kickstart makes the TUI stop at a prompt such as
 * "Please make a selection from the above ['b' to begin installation, ...]:"
 * or a yes/no question; those are reported as `waiting-for-input`, since no
 * one will ever answer them.
 * Our kickstart prints "VMP-INSTALL-OK <vm-name>" at the end of %post and
 * "VMP-INSTALL-FAILED [<vm-name>] <detail>" when a step fails, each at the start of a line
 * of the serial console.
 * Unknown lines are kept (the last few) for error messages and otherwise ignored,
 * so a change in Anaconda's wording degrades the display, never the outcome.
 */

export const INSTALL_OK_MARKER = 'VMP-INSTALL-OK';
export const INSTALL_FAILED_MARKER = 'VMP-INSTALL-FAILED';

export type InstallStage =
  | 'booting'
  | 'starting-installer'
  | 'setting-up'
  | 'storage'
  | 'pre-install'
  | 'installing-software'
  | 'configuring-system'
  | 'post-scripts'
  | 'complete';

/** Human labels for the stages, in install order. */
export const STAGE_LABELS: Readonly<Record<InstallStage, string>> = {
  booting: 'Booting the installer',
  'starting-installer': 'Starting installer',
  'setting-up': 'Setting up the installation environment',
  storage: 'Configuring storage',
  'pre-install': 'Running pre-installation scripts',
  'installing-software': 'Installing software',
  'configuring-system': 'Configuring the installed system',
  'post-scripts': 'Running post-installation scripts',
  complete: 'Installation complete',
};

export type ProgressEvent =
  | { type: 'stage'; stage: InstallStage; label: string }
  | { type: 'download'; percent: number; text: string }
  | { type: 'package'; name: string; done: number; total: number }
  | { type: 'success'; vmName: string }
  | { type: 'failure'; detail: string }
  | { type: 'waiting-for-input'; prompt: string };

export interface InstallProgressState {
  stage: InstallStage;
  packagesDone: number;
  packagesTotal: number;
  lastPackage: string | undefined;
  downloadPercent: number | undefined;
  /** Set when `VMP-INSTALL-OK <the expected vm name>` was seen. */
  succeeded: boolean;
  /** Set when `VMP-INSTALL-FAILED` was seen: the detail after the marker (may be ''). */
  failure: string | undefined;
  /** Set when the installer stopped at an interactive prompt. */
  waitingForInput: string | undefined;
  /** The last non-empty lines, for error messages. */
  recentLines: string[];
}

interface StageRule {
  re: RegExp;
  stage: InstallStage;
}

const STAGE_RULES: readonly StageRule[] = [
  { re: /^Starting installer, one moment/, stage: 'starting-installer' },
  { re: /^anaconda \S+ for .+ started\.?$/, stage: 'starting-installer' },
  { re: /^Setting up the installation environment\b/, stage: 'setting-up' },
  { re: /^Configuring storage\b/, stage: 'storage' },
  { re: /^Running pre-installation (scripts|tasks)\b/, stage: 'pre-install' },
  { re: /^Starting package installation process\b/, stage: 'installing-software' },
  { re: /^Downloading packages\b/, stage: 'installing-software' },
  { re: /^Preparing transaction from installation source\b/, stage: 'installing-software' },
  { re: /^Performing post-installation setup tasks\b/, stage: 'configuring-system' },
  { re: /^Configuring installed system\b/, stage: 'configuring-system' },
  { re: /^Running post-installation scripts\b/, stage: 'post-scripts' },
  { re: /^Installation complete\b/, stage: 'complete' },
];

const STAGE_ORDER: readonly InstallStage[] = Object.keys(STAGE_LABELS) as InstallStage[];

const PACKAGE_RE = /^Installing (\S+) \((\d+)\/(\d+)\)$/;
const DOWNLOAD_RE = /^Downloading \d+ RPMs?, .*\((\d{1,3})%\) done\.?$/;
const PROMPT_RES: readonly RegExp[] = [
  /^Please make a selection from the above\b/,
  /Please respond '?yes'? or '?no'?/i,
  /^Press ENTER to (quit|continue)\b/i,
  /^Installation complete\. Press ENTER to quit/,
];
// Anaconda's TUI interleaves "." progress ticks; VT100 escapes come from the kernel/systemd.
// eslint-disable-next-line no-control-regex
const ANSI_RE = /\x1b(\[[0-9;?]*[A-Za-z]|[()][0-9A-Za-z]|[=>c78])/g;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\x00-\x08\x0b-\x1f\x7f]/g;
const RECENT_LINES = 20;

export function cleanConsoleLine(raw: string): string {
  const noAnsi = raw.replace(ANSI_RE, '');
  // A carriage return redraws the line: what follows the last one is what shows.
  const afterCr = noAnsi.includes('\r')
    ? (noAnsi
        .split('\r')
        .filter((part) => part.trim() !== '')
        .pop() ?? '')
    : noAnsi;
  return afterCr
    .replace(CONTROL_RE, '')
    .trim()
    .replace(/^\.+\s*/, '')
    .replace(/\s*\.{2,}$/, '');
}

export class InstallProgressParser {
  private pending = '';
  private readonly state: InstallProgressState = {
    stage: 'booting',
    packagesDone: 0,
    packagesTotal: 0,
    lastPackage: undefined,
    downloadPercent: undefined,
    succeeded: false,
    failure: undefined,
    waitingForInput: undefined,
    recentLines: [],
  };

  /** @param vmName only `VMP-INSTALL-OK <vmName>` counts as this VM's success. */
  constructor(private readonly vmName: string) {}

  /** Feeds more console text; returns the events its complete lines produced. */
  push(text: string): ProgressEvent[] {
    const lines = (this.pending + text).split('\n');
    this.pending = lines.pop() ?? '';
    // A prompt has no newline: it waits on the same line for an answer.
    const events = lines.flatMap((line) => this.line(line));
    const promptLine = cleanConsoleLine(this.pending);
    if (
      promptLine &&
      this.state.waitingForInput === undefined &&
      PROMPT_RES.some((re) => re.test(promptLine))
    ) {
      this.state.waitingForInput = promptLine;
      events.push({ type: 'waiting-for-input', prompt: promptLine });
    }
    return events;
  }

  /** Flushes a final unterminated line (call when the log stops growing). */
  end(): ProgressEvent[] {
    const rest = this.pending;
    this.pending = '';
    return rest ? this.line(rest) : [];
  }

  snapshot(): InstallProgressState {
    return { ...this.state, recentLines: [...this.state.recentLines] };
  }

  private line(raw: string): ProgressEvent[] {
    const line = cleanConsoleLine(raw);
    if (line === '' || /^\.*$/.test(line)) return [];
    this.state.recentLines.push(line);
    if (this.state.recentLines.length > RECENT_LINES) this.state.recentLines.shift();

    const ok = new RegExp(`^${INSTALL_OK_MARKER} (\\S+)$`).exec(line);
    if (ok) {
      if (ok[1] !== this.vmName || this.state.succeeded) return [];
      this.state.succeeded = true;
      return [{ type: 'success', vmName: ok[1]! }];
    }
    const failed = new RegExp(`^${INSTALL_FAILED_MARKER}(?:\\s+(.*))?$`).exec(line);
    if (failed) {
      if (this.state.failure !== undefined) return [];
      // Our kickstart names the VM first ("VMP-INSTALL-FAILED <vm> %post line 12"); the rest is the detail.
      const detail = failed[1] ?? '';
      this.state.failure =
        detail === this.vmName
          ? ''
          : detail.startsWith(`${this.vmName} `)
            ? detail.slice(this.vmName.length + 1)
            : detail;
      return [{ type: 'failure', detail: this.state.failure }];
    }
    if (PROMPT_RES.some((re) => re.test(line))) {
      if (this.state.waitingForInput !== undefined) return [];
      this.state.waitingForInput = line;
      return [{ type: 'waiting-for-input', prompt: line }];
    }
    const pkg = PACKAGE_RE.exec(line);
    if (pkg) {
      const events = this.enter('installing-software');
      this.state.packagesDone = Number(pkg[2]);
      this.state.packagesTotal = Number(pkg[3]);
      this.state.lastPackage = pkg[1];
      events.push({
        type: 'package',
        name: pkg[1]!,
        done: this.state.packagesDone,
        total: this.state.packagesTotal,
      });
      return events;
    }
    const download = DOWNLOAD_RE.exec(line);
    if (download) {
      const events = this.enter('installing-software');
      this.state.downloadPercent = Math.min(100, Number(download[1]));
      events.push({ type: 'download', percent: this.state.downloadPercent, text: line });
      return events;
    }
    const rule = STAGE_RULES.find((r) => r.re.test(line));
    return rule ? this.enter(rule.stage) : [];
  }

  /** Stages only move forward: a repeated or late message never rewinds the display. */
  private enter(stage: InstallStage): ProgressEvent[] {
    if (STAGE_ORDER.indexOf(stage) <= STAGE_ORDER.indexOf(this.state.stage)) return [];
    this.state.stage = stage;
    return [{ type: 'stage', stage, label: STAGE_LABELS[stage] }];
  }
}

/** Parses a whole console log at once (e.g. for `vm-provisioner` to explain a failed install). */
export function parseInstallLog(text: string, vmName: string): InstallProgressState {
  const parser = new InstallProgressParser(vmName);
  parser.push(text);
  parser.end();
  return parser.snapshot();
}
