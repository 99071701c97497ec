/** Sent in HELLO (free text, for the proxy's logs). Keep in step with package.json's version. */
export const AGENT_VERSION = 'vm-guest-agent 0.1.0';
