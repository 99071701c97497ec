import fc from 'fast-check';
import type net from 'node:net';
import { AgentPort } from '../../../guest-agent/src/agent-port.js';
import { clip, portThenTcp, toWire, windowListFrame } from '../../../guest-agent/src/proxy-link.js';
import type { AgentLink } from '../../../guest-agent/src/agent.js';
import type { WindowInfo } from '../../../guest-agent/src/window-tracker.js';
import {
  decodeFrame,
  encodeHello,
  encodeMessage,
  MAX_TITLE_BYTES,
  prepareResume,
} from '../../../src/protocol/index.js';

const win = (over: Partial<WindowInfo> = {}): WindowInfo => ({
  id: 0x1a0000c,
  wmClass: 'XTerm',
  wmInstance: 'xterm',
  title: 'hello',
  transientFor: 0,
  x: -3,
  y: 51,
  width: 640,
  height: 480,
  ...over,
});

/** Every mapped message must survive the shared codec unchanged. */
const roundTrip = (m: ReturnType<typeof toWire>[number]) => {
  const r = decodeFrame(encodeMessage(m));
  if (!r.ok) throw r.error;
  return r.message;
};

describe('agent -> protocol message mapping', () => {
  test.each([
    ['created', { type: 'window-created' }],
    ['destroyed', { type: 'window-destroyed', id: 0x1a0000c }],
    ['moved', { type: 'window-moved', id: 0x1a0000c, x: -3, y: 51 }],
    ['resized', { type: 'window-resized', id: 0x1a0000c, width: 640, height: 480 }],
    ['focused', { type: 'focus-changed', id: 0x1a0000c }],
    ['unfocused', { type: 'focus-changed', id: 0 }],
    ['title', { type: 'title-changed', id: 0x1a0000c, title: 'hello' }],
  ] as const)('%s becomes %j and round-trips through the codec', (kind, expected) => {
    const [m] = toWire({ type: 'window-event', event: { kind, window: win() } });
    expect(m).toMatchObject(expected);
    expect(roundTrip(m!)).toEqual(m);
  });

  test('created carries the full WINDOW record of a managed top-level window', () => {
    const [m] = toWire({
      type: 'window-event',
      event: { kind: 'created', window: win({ transientFor: 7 }) },
    });
    expect(m).toEqual({
      type: 'window-created',
      window: {
        id: 0x1a0000c,
        x: -3,
        y: 51,
        width: 640,
        height: 480,
        overrideRedirect: false,
        mapped: true,
        parent: 0,
        transientFor: 7,
        title: 'hello',
        wmInstance: 'xterm',
        wmClass: 'XTerm',
      },
    });
  });

  test('over-long titles are cut at a character boundary so the codec accepts them', () => {
    const title = '€'.repeat(400) + 'x'.repeat(10); // 1210 bytes
    const [m] = toWire({ type: 'window-event', event: { kind: 'title', window: win({ title }) } });
    const t = (m as { title: string }).title;
    expect(Buffer.byteLength(t)).toBeLessThanOrEqual(MAX_TITLE_BYTES);
    expect(t).toBe('€'.repeat(341));
    expect(roundTrip(m!)).toEqual(m);
  });

  test('the window list keeps at most 512 windows and the focused id (0 for none)', () => {
    const windows = Array.from({ length: 600 }, (_, i) => win({ id: i + 1 }));
    const [m] = toWire({ type: 'window-list', windows, focused: null });
    expect(m).toMatchObject({ type: 'window-list', focused: 0 });
    expect((m as { windows: unknown[] }).windows).toHaveLength(512);
    expect(roundTrip(m!)).toEqual(m);
  });

  test('clipboard answers map to CLIPBOARD_DATA (UTF-8 text) and CLIPBOARD_RESULT status codes', () => {
    expect(toWire({ type: 'clipboard-content', requestId: 9, text: 'ü' })).toEqual([
      { type: 'clipboard-data', requestId: 9, mimeType: 'text/plain;charset=utf-8', data: Buffer.from('ü') },
    ]);
    const codes = (['ok', 'refused', 'empty', 'too-large', 'failed'] as const).map(
      (status) =>
        (toWire({ type: 'clipboard-result', requestId: 1, status, message: '' })[0] as { status: number })
          .status,
    );
    expect(codes).toEqual([0, 1, 2, 3, 4]);
  });

  test('clip never exceeds the byte budget and never splits a character', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 300 }),
        fc.integer({ min: 0, max: 400 }),
        (s, max) => {
          const out = clip(s, max);
          expect(Buffer.byteLength(out)).toBeLessThanOrEqual(max);
          expect(s.startsWith(out)).toBe(true);
          expect(Buffer.from(out, 'utf8').toString('utf8')).toBe(out);
        },
      ),
    );
  });
});

describe('portThenTcp: the virtio-serial port first, TCP when it fails', () => {
  const link = { closed: Promise.resolve() } as unknown as AgentLink;

  test('a port that answers is used, TCP never tried, the port kept', async () => {
    const calls: string[] = [];
    const got = await portThenTcp(
      async () => (calls.push('port'), link),
      async () => (calls.push('tcp'), link),
      () => calls.push('release'),
    );
    expect(got).toBe(link);
    expect(calls).toEqual(['port']);
  });

  test('a port whose host side never answers is let go and TCP used', async () => {
    const calls: string[] = [];
    const got = await portThenTcp(
      async () => {
        calls.push('port');
        throw new Error('connection closed during the handshake');
      },
      async () => (calls.push('tcp'), link),
      () => calls.push('release'),
    );
    expect(got).toBe(link);
    expect(calls).toEqual(['port', 'release', 'tcp']);
  });

  test('an attempt abandoned (the VM resumed again) lets the port go and tries no TCP', async () => {
    const calls: string[] = [];
    const controller = new AbortController();
    await expect(
      portThenTcp(
        async () => {
          calls.push('port');
          controller.abort();
          throw new Error('handshake with the port abandoned');
        },
        async () => (calls.push('tcp'), link),
        () => calls.push('release'),
        controller.signal,
      ),
    ).rejects.toThrow('handshake with the port abandoned');
    expect(calls).toEqual(['port', 'release']);
  });

  test('when both fail, the error names both', async () => {
    await expect(
      portThenTcp(
        async () => {
          throw new Error('connection closed during the handshake');
        },
        async () => {
          throw new Error('connect ENETUNREACH 10.0.2.2:9999');
        },
        () => undefined,
      ),
    ).rejects.toThrow('connection closed during the handshake; over TCP: connect ENETUNREACH 10.0.2.2:9999');
  });
});

describe('windowListFrame: the window list a resume sends behind its RESUME, encoded while idle', () => {
  /** A tracker stand-in: its windows and one listener, as WindowTracker gives them. */
  function fakeTracker(windows: WindowInfo[]) {
    let listener: ((event: never) => void) | undefined;
    let reads = 0;
    return {
      windows: () => {
        reads++;
        return windows;
      },
      focusedWindow: () => windows[0]?.id ?? null,
      onWindowEvent: (l: (event: never) => void) => {
        listener = l;
        return () => undefined;
      },
      change: (next: WindowInfo[]) => {
        windows = next;
        listener?.(undefined as never);
      },
      get reads() {
        return reads;
      },
    };
  }
  const listOf = (frame: Buffer) => {
    const r = decodeFrame(frame);
    if (!r.ok || r.message.type !== 'window-list') throw new Error('not a window list');
    return r.message;
  };

  test('encoded at once, handed out without encoding again, and encoded anew after a change', async () => {
    const tracker = fakeTracker([win({ id: 1, title: 'one' })]);
    const frame = windowListFrame(tracker);
    expect(tracker.reads).toBe(1);
    expect(listOf(frame()).windows.map((w) => w.title)).toEqual(['one']);
    expect(frame()).toBe(frame());
    expect(tracker.reads).toBe(1);
    tracker.change([win({ id: 1, title: 'one' }), win({ id: 2, title: 'two' })]);
    tracker.change([win({ id: 2, title: 'two' })]);
    // Asked before the idle re-encode: encoded there and then, never stale.
    expect(listOf(frame()).windows.map((w) => w.title)).toEqual(['two']);
    await new Promise((resolve) => setImmediate(resolve));
    expect(listOf(frame()).focused).toBe(2);
  });
});

describe('AgentPort.sendOpening: a resume writes the RESUME made ahead with the window list behind it, else the HELLO', () => {
  test('RESUME and list in one write, each once; then the HELLO; nothing when neither is made', async () => {
    const writes: Buffer[] = [];
    const socket = { destroyed: false, write: (b: Buffer) => writes.push(b) } as unknown as net.Socket;
    const port = new AgentPort('/nonexistent');
    (port as unknown as { socket: net.Socket }).socket = socket;
    const secret = Buffer.alloc(32, 7);
    const resume = prepareResume('vm-a', 'test', secret, 4, Buffer.alloc(32, 9));
    const list = encodeMessage({ type: 'window-list', focused: 0, windows: [] });
    port.prepareHello(Buffer.alloc(32, 1), (n) => encodeHello('vm-a', 'test', n));
    port.keepResume(resume);
    expect(port.sendOpening(() => list)).toBe(true);
    expect(writes).toEqual([Buffer.concat([resume.frame, list])]);
    expect(port.takeSentOpening(socket)).toEqual({ kind: 'resume', resume });
    expect(port.takeSentOpening(socket)).toBeUndefined();
    expect(port.sendOpening(() => list)).toBe(true);
    expect(decodeFrame(writes[1]!)).toMatchObject({ ok: true, message: { type: 'hello', vmName: 'vm-a' } });
    expect(port.takeSentOpening(socket)).toEqual({ kind: 'hello', nonce: Buffer.alloc(32, 1) });
    expect(port.sendOpening(() => list)).toBe(false);
    expect(writes).toHaveLength(2);
  });
});
