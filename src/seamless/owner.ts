/**
 * Who should own a new VM's display socket (docs/seamless.md, "Transport"):
 * the user running the CLI, when libvirt runs on this host. On qemu:///system
 * QEMU's user would own it otherwise, and only root could attach. A remote
 * connection's sockets are on the other host, where our uid means nothing.
 */
export function localDisplayOwner(
  uri: string,
  ids: { uid?: () => number; gid?: () => number } = { uid: process.getuid, gid: process.getgid },
): { uid: number; gid: number } | undefined {
  const local = /^qemu(\+unix)?:\/\/\/(system|session)(\?.*)?$/.test(uri);
  if (!local || ids.uid === undefined || ids.gid === undefined) return undefined;
  return { uid: ids.uid(), gid: ids.gid() };
}

/** The `displayOwner` option of a new VM's domain XML (src/render/domain-xml.ts), when there is an owner to give. */
export function displayOwnerOption(uri: string): { displayOwner?: { uid: number; gid: number } } {
  const owner = localDisplayOwner(uri);
  return owner ? { displayOwner: owner } : {};
}
