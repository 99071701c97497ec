import { execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { ClipboardError, X11Clipboard } from '../../../guest-agent/src/clipboard.js';
import { XConn } from '../../../guest-agent/src/xconn.js';
import { describeWith, probeXDisplay } from '../../support/services.js';
import { XSession } from '../../support/xsession.js';

const execFileP = promisify(execFile);
const probe = probeXDisplay();
const LIMIT = 4 * 1024 * 1024;

describeWith(probe, 'guest-agent clipboard under Xvfb')(
  'X clipboard (real X server, xclip as the other client)',
  () => {
    let session: XSession;
    let conn: XConn;
    let clip: X11Clipboard;

    beforeAll(async () => {
      session = new XSession(probe.display);
      conn = await XConn.connect(probe.display);
      clip = await X11Clipboard.create(conn, LIMIT);
    });

    afterAll(async () => {
      await clip?.dispose();
      conn?.close();
      await session?.stop();
    });

    const xclipOut = async (): Promise<string> =>
      (
        await execFileP('xclip', ['-selection', 'clipboard', '-o'], {
          env: session.env,
          timeout: 10_000,
          maxBuffer: 64 * 1024 * 1024,
          encoding: 'utf8',
        })
      ).stdout;

    let owner: ChildProcess | undefined;

    /** Ends the xclip that owns the clipboard (if any) and waits until it has exited. */
    const stopOwner = async (): Promise<void> => {
      const child = owner;
      owner = undefined;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    };

    /**
     * xclip -quiet stays in the foreground as the owner, so the test can stop it
     * by PID. The previous owner is stopped first: while it lives, "someone owns
     * the clipboard" would be true before the new xclip has taken it over.
     */
    const xclipIn = async (text: string): Promise<void> => {
      await stopOwner();
      const child = session.spawn('xclip', ['-selection', 'clipboard', '-i', '-quiet'], 'pipe');
      owner = child;
      child.stdin?.end(text);
      await session.until(async () => {
        const { stdout } = await execFileP('xclip', ['-selection', 'clipboard', '-o', '-t', 'TARGETS'], {
          env: session.env,
          timeout: 5000,
        });
        return stdout.includes('UTF8_STRING') && !clip.ownsClipboard;
      }, 'xclip to own the clipboard');
    };

    test('text the agent writes is what another X client pastes', async () => {
      await clip.write('héllo from the host ✓\nline 2');
      expect(clip.ownsClipboard).toBe(true);
      expect(await xclipOut()).toBe('héllo from the host ✓\nline 2');
    });

    test('text another X client copies is what the agent reads, and it loses ownership', async () => {
      await xclipIn('copied in the guest ✓');
      expect(clip.ownsClipboard).toBe(false);
      expect(await clip.read()).toBe('copied in the guest ✓');
    });

    test('large values travel both ways (INCR on read, chunked properties on write)', async () => {
      const big = 'abcdefghij✓'.repeat(100_000); // 1.3 MB of UTF-8
      await xclipIn(big);
      const got = await clip.read();
      expect(got.length).toBe(big.length);
      expect(got === big).toBe(true);
      const big2 = 'Z'.repeat(1_000_000) + '✓';
      await clip.write(big2);
      const pasted = await xclipOut();
      expect(pasted.length).toBe(big2.length);
      expect(pasted === big2).toBe(true);
    });

    test('values over the limit are refused both ways', async () => {
      const small = await X11Clipboard.create(conn, 1000);
      try {
        await expect(small.write('x'.repeat(1001))).rejects.toThrow(/1001 bytes exceeds the 1000-byte limit/);
        await xclipIn('y'.repeat(5000));
        await expect(small.read()).rejects.toBeInstanceOf(ClipboardError);
      } finally {
        await small.dispose();
      }
    });
  },
);
