/**
 * vm-guest-agent: runs inside each VM as a systemd user unit. Watches the X11
 * session, streams window events to the host proxy, serves clipboard requests,
 * starts the commands the host asks for (`vm-provisioner run`), takes the
 * files it sends (`open`, `copy-to-vm`).
 * Settings: docs/guest-interface.md (agent.conf / VMP_* environment).
 *
 * Exit codes: 0 on SIGTERM/SIGINT, 2 for a bad config or secret (restarting
 * cannot help), 1 when the X session went away (systemd restarts the unit).
 */
import { MAX_CLIPBOARD_BYTES } from '../../src/protocol/index.js';
import { GuestAgent } from './agent.js';
import { AGENT_PORT, AgentPort, agentPortPresent } from './agent-port.js';
import { Backoff } from './backoff.js';
import { X11Clipboard } from './clipboard.js';
import { ConfigError, loadAgentConfig, readSecret } from './config.js';
import { SessionExec } from './exec.js';
import { defaultFileLocations } from './files.js';
import { connectProxyLink, portThenTcp, windowListFrame } from './proxy-link.js';
import { AGENT_VERSION } from './version.js';
import { WindowTracker } from './window-tracker.js';
import { applyIdentity, awaitIdentity, CLONE_BACKOFF } from './identity.js';
import { WAKE_PORT, watchWake } from './wake.js';
import { XConn } from './xconn.js';

const log = (line: string): void => {
  process.stderr.write(`vm-guest-agent: ${line}\n`);
};

/**
 * The unit starts with the user manager, before the X session is surely up (or
 * before the display manager has written ~/.Xauthority): wait for the display,
 * polling often at first, since at boot it is usually a matter of moments.
 * Only a new kind of failure is logged, so a VM whose X never comes up does
 * not fill the journal.
 */
async function connectX(display: string): Promise<XConn> {
  const backoff = new Backoff({ initialMs: 100, maxMs: 2000, factor: 2, jitter: 0.2 });
  let lastFailure = '';
  for (;;) {
    try {
      return await XConn.connect(display);
    } catch (err) {
      const failure = (err as Error).message;
      if (failure !== lastFailure) log(`${failure}; waiting for the X display`);
      lastFailure = failure;
      await new Promise((r) => setTimeout(r, backoff.next()));
    }
  }
}

async function main(): Promise<number> {
  let config;
  let secret: Buffer | undefined;
  try {
    config = loadAgentConfig(process.env);
    // A clone source's secret is in every clone's memory: it is never used, so not even read.
    if (!config.awaitIdentity) secret = readSecret(config.secretFile);
  } catch (err) {
    if (err instanceof ConfigError) {
      log(`error: ${err.message}`);
      return 2;
    }
    throw err;
  }
  let cfg = config;
  const conn = await connectX(cfg.display);
  const tracker = await WindowTracker.start(conn, (err) => log(`X: ${err.message}`));
  const clipboard = await X11Clipboard.create(conn, MAX_CLIPBOARD_BYTES);
  if (cfg.awaitIdentity) {
    // The ready state every clone is restored from: idle here until the host names this clone.
    log('clone source: waiting for an identity on the wake channel; connecting nowhere until then');
    const identity = await awaitIdentity(WAKE_PORT, log);
    await applyIdentity(identity, log);
    cfg = { ...cfg, vmName: identity.name };
    secret = Buffer.from(identity.secret, 'hex');
    log(`identity received: this clone is VM ${identity.name}`);
  }
  const key = secret!;
  // A VM made for a libvirt on its host has the port; one made before, or on a remote host, uses TCP.
  const serialPort = agentPortPresent() ? new AgentPort(AGENT_PORT) : undefined;
  const listFrame = serialPort ? windowListFrame(tracker) : undefined;
  const agent = new GuestAgent({
    singleLink: serialPort !== undefined,
    // The window list goes behind a RESUME in the same write: nothing has changed since the VM was saved.
    ...(serialPort && listFrame ? { onResume: () => void serialPort.sendOpening(listFrame) } : {}),
    ...(cfg.awaitIdentity ? { backoff: new Backoff(CLONE_BACKOFF) } : {}),
    tracker,
    clipboard,
    exec: new SessionExec(cfg.display),
    files: defaultFileLocations(),
    log,
    connect: async (signal) => {
      const over = (port?: AgentPort) =>
        connectProxyLink({
          host: cfg.proxyHost,
          port: cfg.proxyPort,
          vmName: cfg.vmName,
          ...(port ? { serialPort: port } : {}),
          secret: key,
          agentVersion: AGENT_VERSION,
          log,
          ...(signal ? { signal } : {}),
        });
      if (!serialPort) return over();
      return portThenTcp(
        () => over(serialPort),
        () => over(),
        () => serialPort.close(),
        signal,
      );
    },
  });
  log(
    `${AGENT_VERSION} watching ${cfg.display} for VM ${cfg.vmName}, proxy ${serialPort ? `over ${serialPort.path}` : `${cfg.proxyHost}:${cfg.proxyPort}`}`,
  );
  agent.start();
  const wake = watchWake(() => agent.reconnectNow('the host says this VM has resumed'), log);
  return new Promise<number>((resolve) => {
    const finish = (code: number): void => {
      wake.stop();
      void agent.stop().then(() => {
        serialPort?.close();
        tracker.stop();
        conn.close();
        resolve(code);
      });
    };
    conn.onClose((err) => {
      log(`X connection to ${cfg.display} lost${err ? `: ${err.message}` : ''}`);
      finish(1);
    });
    process.once('SIGTERM', () => finish(0));
    process.once('SIGINT', () => finish(0));
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`error: ${(err as Error).message ?? String(err)}`);
    process.exit(1);
  },
);
