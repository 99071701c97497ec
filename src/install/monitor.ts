import { followFile } from './log-follower.js';
import { InstallProgressParser, type InstallProgressState, type ProgressEvent } from './progress.js';

/**
 * Watches one unattended install: follows the serial console log, feeds the
 * progress parser, and decides the outcome. The caller owns the domain: it
 * tells us when the domain has stopped (`domainStopped`), and destroys it
 * when we return anything but a power-off after success.
 */

export type InstallStatus = 'succeeded' | 'failed' | 'timed-out' | 'cancelled';

export interface InstallOutcome {
  status: InstallStatus;
  /** One line for the user; for a failure it names the cause. */
  message: string;
  /** True when the domain had powered off by itself when we returned. */
  domainStopped: boolean;
  progress: InstallProgressState;
}

export interface MonitorOptions {
  /** The serial console log the install domain writes. */
  logPath: string;
  vmName: string;
  /** Settles when the install domain has shut off (the installer powers off at the end). */
  domainStopped: Promise<unknown>;
  onEvent?: (event: ProgressEvent) => void;
  /** Give up after this long. Default: 2 hours. */
  timeoutMs?: number;
  /** Cancel (e.g. Ctrl+C): returns status 'cancelled'. */
  signal?: AbortSignal;
  pollIntervalMs?: number;
}

export async function monitorInstall(options: MonitorOptions): Promise<InstallOutcome> {
  const parser = new InstallProgressParser(options.vmName);
  const follow = new AbortController();
  let reason: 'stopped' | 'timeout' | 'cancelled' | 'verdict' | undefined;
  const stop = (why: typeof reason): void => {
    reason ??= why;
    follow.abort();
  };
  const timeoutMs = options.timeoutMs ?? 2 * 60 * 60 * 1000;
  const timer = setTimeout(() => stop('timeout'), timeoutMs);
  const onCancel = (): void => stop('cancelled');
  if (options.signal?.aborted) onCancel();
  options.signal?.addEventListener('abort', onCancel, { once: true });
  void options.domainStopped.then(
    () => stop('stopped'),
    () => stop('stopped'),
  );

  const emit = (events: ProgressEvent[]): void => {
    for (const event of events) {
      options.onEvent?.(event);
      // Failure or a prompt no one will answer: no point waiting for a power-off.
      if (event.type === 'failure' || event.type === 'waiting-for-input') stop('verdict');
    }
  };
  try {
    for await (const chunk of followFile(options.logPath, {
      signal: follow.signal,
      pollIntervalMs: options.pollIntervalMs,
    })) {
      emit(parser.push(chunk));
    }
    emit(parser.end());
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onCancel);
  }

  const progress = parser.snapshot();
  const domainStopped = reason === 'stopped';
  const lastLine = progress.recentLines.at(-1);
  const context = lastLine ? ` (last console line: ${JSON.stringify(lastLine)})` : '';
  if (progress.failure !== undefined) {
    return {
      status: 'failed',
      message: `the installer reported failure${progress.failure ? `: ${progress.failure}` : ''}`,
      domainStopped,
      progress,
    };
  }
  if (reason === 'cancelled')
    return { status: 'cancelled', message: 'the install was cancelled', domainStopped, progress };
  if (progress.succeeded) {
    return { status: 'succeeded', message: 'installation complete', domainStopped, progress };
  }
  if (progress.waitingForInput !== undefined) {
    return {
      status: 'failed',
      message: `the installer stopped at a prompt (the kickstart is incomplete): ${JSON.stringify(progress.waitingForInput)}`,
      domainStopped,
      progress,
    };
  }
  if (reason === 'timeout') {
    return {
      status: 'timed-out',
      message: `the install did not finish within ${+(timeoutMs / 1000).toFixed(1)} s${context}`,
      domainStopped,
      progress,
    };
  }
  return {
    status: 'failed',
    message: `the installer powered off without reporting success, during "${progress.stage}"${context}`,
    domainStopped,
    progress,
  };
}
