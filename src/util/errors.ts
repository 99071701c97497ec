/**
 * Typed errors shared by every layer. The CLI maps them to exit codes and
 * one-line messages; nothing else needs to know how a failure is shown.
 */

export class VmpError extends Error {
  /** Process exit code the CLI uses for this failure. */
  readonly exitCode: number = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad input from the user (flag, name, config file): exit 2, nothing written. */
export class InputError extends VmpError {
  override readonly exitCode: number = 2;
}

/** A named VM (or other object) does not exist. Exit 2, like bad input. */
export class NotFoundError extends VmpError {
  override readonly exitCode: number = 2;
}

/** Something already exists under that name. */
export class AlreadyExistsError extends VmpError {
  override readonly exitCode: number = 2;
}

/** An external service (libvirtd, Secret Service, proxy) cannot be reached. */
export class ServiceUnavailableError extends VmpError {}

/** An operation ran past its deadline and was abandoned. */
export class TimeoutError extends VmpError {}

/** The VM must be running for this and is not. */
export class NotRunningError extends VmpError {}

/** The VM must be shut off for this and is running. */
export class AlreadyRunningError extends VmpError {}

/** A hypervisor call failed for a reason no narrower class describes; keeps libvirt's message. */
export class HypervisorError extends VmpError {}

/** The user interrupted the operation (Ctrl+C); what it had made was removed. Exit 130, as shells report SIGINT. */
export class CancelledError extends VmpError {
  override readonly exitCode: number = 130;
}
