/**
 * Names our domain XML uses that readers of it (src/libvirt/inspect.ts) need
 * too, apart from the generator so that reading a domain does not load it.
 */

/** Our metadata namespace: a domain carrying `<vmp:vm>` in it was made by vm-provisioner. */
export const VMP_XML_NAMESPACE = 'https://vm-provisioner.invalid/xmlns/1';
export const VMP_XML_PREFIX = 'vmp';

/** The virtio-serial port the host uses to tell the guest agent that its VM has just resumed. */
export const WAKE_CHANNEL_NAME = 'org.vm-provisioner.wake.0';

/** The virtio-serial port the host's xpra client reaches the guest's seamless display bridge through (docs/seamless.md). */
export const DISPLAY_CHANNEL_NAME = 'org.vm-provisioner.display.0';

/** The virtio-serial port the guest agent's link to the proxy runs over (docs/protocol.md, "Transport"). */
export const AGENT_CHANNEL_NAME = 'org.vm-provisioner.agent.0';

/** The libvirt network that network mode `default` attaches to (libvirt's own NAT network). */
export const DEFAULT_MODE_NETWORK = 'default';
