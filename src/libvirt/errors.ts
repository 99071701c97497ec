import {
  AlreadyExistsError,
  AlreadyRunningError,
  HypervisorError,
  NotFoundError,
  NotRunningError,
  ServiceUnavailableError,
  type VmpError,
} from '../util/errors.js';

/**
 * libvirt reports failures as text (the binding gives no error codes; virsh
 * prints `error:` lines), so both backends classify by libvirt's message.
 * The message is kept whole; the class only decides the exit code and what
 * callers may catch.
 */
const RULES: Array<[RegExp, new (message: string, options?: { cause?: unknown }) => VmpError]> = [
  [
    // virsh's own lookup failure says only "failed to get domain 'x'" when the name is unknown.
    /Domain not found|no domain with matching|failed to get domain|snapshot not found|no domain snapshot with matching/i,
    NotFoundError,
  ],
  [/already exists|already defined/i, AlreadyExistsError],
  [/domain is not running|domain is not active/i, NotRunningError],
  [/domain is already (active|running)|Domain is already active/i, AlreadyRunningError],
  [
    /Failed to connect socket|failed to connect to the hypervisor|Cannot recv data|Cannot write data|End of file while reading data|no connection driver available|not connected|Connection reset|Broken pipe/i,
    ServiceUnavailableError,
  ],
];

/** Turns libvirt's message into the typed error; `operation` says what was being done. */
export function libvirtError(operation: string, libvirtMessage: string, cause?: unknown): VmpError {
  const message = `${operation}: ${libvirtMessage.trim().replace(/\s*\n\s*/g, '; ')}`;
  for (const [pattern, ErrorClass] of RULES) {
    if (pattern.test(libvirtMessage)) return new ErrorClass(message, { cause });
  }
  return new HypervisorError(message, { cause });
}

/** The libvirt message in virsh's stderr: its `error:` lines, most specific (last) first kept whole. */
export function virshMessage(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => line.replace(/^error:\s*/, ''));
  // virsh prints "failed to get domain 'x'" then libvirt's own reason; the reason says more.
  return lines.length > 0 ? lines[lines.length - 1]! : 'virsh failed without a message';
}
