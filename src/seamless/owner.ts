import { agentSocketPath } from '../proxy/agent-socket.js';
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

/**
 * The options of a new VM's domain XML (src/render/domain-xml.ts) that only
 * a libvirt on this host can use: the display socket's owner, and the
 * proxy's socket for the agent's virtio-serial link.
 */
export function displayOwnerOption(uri: string): {
  displayOwner?: { uid: number; gid: number };
  agentSocket?: string;
} {
  const owner = localDisplayOwner(uri);
  return owner ? { displayOwner: owner, agentSocket: agentSocketPath(owner.uid) } : {};
}
