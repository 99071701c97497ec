import type { CreateEvent } from '../service/create.js';
import { STAGE_LABELS, type InstallStage } from '../install/index.js';

/**
 * Shows `create`'s progress. On a terminal: one status line redrawn in place
 * (a bar for downloads, a spinner with the stage and package count during the
 * install). Otherwise (a pipe, a log, the tests): plain lines, one per step,
 * per finished download and per stage, package counts every 10%.
 */

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const BAR_WIDTH = 30;

export interface ProgressOutput {
  write(text: string): void;
  isTTY: boolean;
  columns?: number;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

export function progressBar(done: number, total: number, width = BAR_WIDTH): string {
  const ratio = total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(ratio * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.floor(ratio * 100)).padStart(3)}%`;
}

export class CreateProgress {
  private status = '';
  private spinnerAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private stage: InstallStage = 'booting';
  private packages = { done: 0, total: 0 };
  private lastPackageDecile = -1;
  private installStartedAt = 0;
  private downloadShown = new Set<string>();

  constructor(private readonly out: ProgressOutput) {}

  handle(event: CreateEvent): void {
    switch (event.type) {
      case 'step':
        this.line(event.message);
        break;
      case 'download': {
        const { file, receivedBytes, totalBytes } = event.progress;
        if (file === 'treeinfo') break;
        const label = file === 'kernel' ? 'vmlinuz' : 'initrd.img';
        if (this.out.isTTY) {
          const size =
            totalBytes !== undefined
              ? `${formatBytes(receivedBytes)} / ${formatBytes(totalBytes)}`
              : formatBytes(receivedBytes);
          this.setStatus(`  ${label.padEnd(10)} ${progressBar(receivedBytes, totalBytes ?? 0)} ${size}`);
        } else if (
          totalBytes !== undefined &&
          receivedBytes === totalBytes &&
          !this.downloadShown.has(label)
        ) {
          this.downloadShown.add(label);
          this.line(`  downloaded ${label} (${formatBytes(totalBytes)})`);
        }
        break;
      }
      case 'media':
        this.line(
          event.media.downloaded
            ? `  installer verified against the tree's checksums and cached in ${event.media.dir}`
            : `  installer taken from the cache (${event.media.dir}); nothing downloaded`,
        );
        break;
      case 'install-started':
        this.installStartedAt = Date.now();
        this.line(`  console log: ${event.logPath}`);
        if (this.out.isTTY) {
          this.timer = setInterval(() => this.redrawInstall(), 120);
          this.timer.unref();
        }
        this.redrawInstall();
        break;
      case 'install-progress': {
        const e = event.event;
        if (e.type === 'stage') {
          this.stage = e.stage;
          if (!this.out.isTTY) this.line(`  ${STAGE_LABELS[e.stage]}`);
        } else if (e.type === 'package') {
          this.packages = { done: e.done, total: e.total };
          const decile = Math.floor((10 * e.done) / Math.max(1, e.total));
          if (!this.out.isTTY && decile !== this.lastPackageDecile) {
            this.lastPackageDecile = decile;
            this.line(`  installed ${e.done}/${e.total} packages`);
          }
        } else if (e.type === 'success') {
          this.line(`  installer reported success for ${e.vmName}`);
        } else if (e.type === 'failure') {
          this.line(`  installer reported failure: ${e.detail}`);
        } else if (e.type === 'waiting-for-input') {
          this.line(`  installer stopped at a prompt: ${e.prompt}`);
        }
        this.redrawInstall();
        break;
      }
      case 'rollback':
        this.stopSpinner();
        this.line(`Failed: removing what was made (${event.reason})`);
        break;
      case 'rollback-step':
        this.line(
          event.error ? `  could not remove ${event.what}: ${event.error}` : `  removed ${event.what}`,
        );
        break;
    }
  }

  /** Text that must appear between status redraws (e.g. the --verbose console log). */
  passthrough(text: string): void {
    this.clearStatus();
    this.out.write(text);
    this.drawStatus();
  }

  /** Writes a message on its own line (stderr-worthy notices go through here too, to keep the status line intact). */
  line(text: string): void {
    this.clearStatus();
    this.out.write(`${text}\n`);
    this.drawStatus();
  }

  finish(): void {
    this.stopSpinner();
    this.clearStatus();
    this.status = '';
  }

  private stopSpinner(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clearStatus();
    this.status = '';
  }

  private redrawInstall(): void {
    if (!this.out.isTTY || this.installStartedAt === 0) return;
    this.spinnerAt = (this.spinnerAt + 1) % SPINNER.length;
    const elapsed = Math.floor((Date.now() - this.installStartedAt) / 1000);
    const clock = `${Math.floor(elapsed / 60)}:${String(elapsed % 60).padStart(2, '0')}`;
    const pkgs =
      this.packages.total > 0
        ? ` ${progressBar(this.packages.done, this.packages.total, 20)} ${this.packages.done}/${this.packages.total} packages`
        : '';
    this.setStatus(`  ${SPINNER[this.spinnerAt]} ${STAGE_LABELS[this.stage]}${pkgs} (${clock})`);
  }

  private setStatus(text: string): void {
    if (!this.out.isTTY) return;
    const width = (this.out.columns ?? 80) - 1;
    this.status = text.length > width ? text.slice(0, width) : text;
    this.out.write(`\r\x1b[2K${this.status}`);
  }

  private clearStatus(): void {
    if (this.out.isTTY && this.status) this.out.write('\r\x1b[2K');
  }

  private drawStatus(): void {
    if (this.out.isTTY && this.status) this.out.write(this.status);
  }
}
