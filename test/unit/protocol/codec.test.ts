import fc from 'fast-check';
import {
  decodeFrame,
  encodeMessage,
  FrameDecoder,
  MAX_CLIPBOARD_BYTES,
  MAX_FRAME_PAYLOAD,
  MAX_PAYLOAD_BY_CODE,
  MAX_SNAPSHOT_WINDOWS,
  MAX_TITLE_BYTES,
  MessageType,
  ProtocolError,
  type DecodeResult,
  type Message,
  type WindowInfo,
} from '../../../src/protocol/index.js';
import { anyMessageArb, messageArbs, windowArb } from '../../support/protocol-arbitraries.js';

const header = (length: number, code: number): Buffer => {
  const b = Buffer.alloc(5);
  b.writeUInt32BE(length, 0);
  b.writeUInt8(code, 4);
  return b;
};

const okMessages = (results: DecodeResult[]): Message[] =>
  results.map((r) => {
    if (!r.ok) throw r.error;
    return r.message;
  });

const sampleWindow: WindowInfo = {
  id: 0x1a00003,
  x: -10,
  y: 20,
  width: 800,
  height: 600,
  overrideRedirect: false,
  mapped: true,
  parent: 0,
  transientFor: 0,
  title: 'Mozilla Firefox — Début',
  wmInstance: 'Navigator',
  wmClass: 'firefox',
};

describe('encodeMessage / decodeFrame round trip', () => {
  for (const [name, arb] of Object.entries(messageArbs)) {
    test(`every ${name} message survives encode then decode`, () => {
      fc.assert(
        fc.property(arb, (message) => {
          const frame = encodeMessage(message);
          expect(frame.readUInt32BE(0)).toBe(frame.length - 5);
          const result = decodeFrame(frame);
          expect(result).toEqual({ ok: true, message });
        }),
        { numRuns: 150 },
      );
    });
  }

  test('a known frame has the documented bytes (window-moved)', () => {
    const frame = encodeMessage({ type: 'window-moved', id: 0x01020304, x: -1, y: 256 });
    expect(frame.toString('hex')).toBe('0000000c12' + '01020304' + 'ffffffff' + '00000100');
  });

  test('a known frame has the documented bytes (ticket, resume)', () => {
    const ticket = Buffer.alloc(32, 0xab);
    expect(encodeMessage({ type: 'ticket', ticket }).toString('hex')).toBe('0000002007' + 'ab'.repeat(32));
    const agentNonce = Buffer.alloc(32, 0x11);
    const mac = Buffer.alloc(32, 0x22);
    const hello = { minVersion: 1, maxVersion: 4, vmName: 'fx', agentVersion: 'a', agentNonce };
    const helloFrame = encodeMessage({ type: 'hello', ...hello });
    const resumeFrame = encodeMessage({ type: 'resume', ...hello, mac });
    // RESUME is HELLO's payload (magic first) with the 32-byte MAC after it, under type 0x08.
    expect(resumeFrame.readUInt32BE(0)).toBe(helloFrame.readUInt32BE(0) + 32);
    expect(resumeFrame[4]).toBe(0x08);
    expect(resumeFrame.subarray(5, helloFrame.length).equals(helloFrame.subarray(5))).toBe(true);
    expect(resumeFrame.subarray(helloFrame.length).equals(mac)).toBe(true);
    expect(resumeFrame.subarray(5, 9).toString('ascii')).toBe('VMPW');
  });

  test('the largest legal RESUME fits its type limit exactly', () => {
    const frame = encodeMessage({
      type: 'resume',
      minVersion: 1,
      maxVersion: 4,
      vmName: 'a'.repeat(63),
      agentVersion: 'v'.repeat(64),
      agentNonce: Buffer.alloc(32),
      mac: Buffer.alloc(32),
    });
    expect(frame.length - 5).toBe(MAX_PAYLOAD_BY_CODE.get(MessageType.RESUME)!);
    expect(decodeFrame(frame).ok).toBe(true);
  });

  test('a known frame has the documented bytes (window-created)', () => {
    const frame = encodeMessage({ type: 'window-created', window: { ...sampleWindow, title: 'é' } });
    const expected =
      '00000036' + // payload length 54
      '10' + // WINDOW_CREATED
      '01a00003' + // id
      'fffffff6' + // x = -10
      '00000014' + // y = 20
      '00000320' + // width 800
      '00000258' + // height 600
      '00' + // override-redirect
      '01' + // mapped
      '00000000' + // parent
      '00000000' + // transient-for
      '0002c3a9' + // title "é"
      '0009' +
      Buffer.from('Navigator').toString('hex') +
      '0007' +
      Buffer.from('firefox').toString('hex');
    expect(frame.toString('hex')).toBe(expected);
  });
});

describe('encodeMessage refuses messages outside the limits', () => {
  test.each<[string, Message]>([
    ['a title over 1024 bytes', { type: 'title-changed', id: 1, title: 'x'.repeat(MAX_TITLE_BYTES + 1) }],
    ['window id 0', { type: 'window-destroyed', id: 0 }],
    ['a negative width', { type: 'window-resized', id: 1, width: -1, height: 1 }],
    ['a fractional x', { type: 'window-moved', id: 1, x: 1.5, y: 0 }],
    [
      'clipboard data over 256 KiB',
      {
        type: 'clipboard-data',
        requestId: 1,
        mimeType: 'text/plain',
        data: Buffer.alloc(MAX_CLIPBOARD_BYTES + 1),
      },
    ],
    [
      'a bad VM name',
      {
        type: 'hello',
        minVersion: 1,
        maxVersion: 1,
        vmName: 'Bad_Name',
        agentVersion: '1',
        agentNonce: Buffer.alloc(32),
      },
    ],
    ['a short nonce', { type: 'challenge', version: 1, proxyNonce: Buffer.alloc(31) }],
    ['a lone surrogate', { type: 'title-changed', id: 1, title: 'a\ud800b' }],
    [
      'too many windows in a snapshot',
      { type: 'window-list', focused: 0, windows: Array(MAX_SNAPSHOT_WINDOWS + 1).fill(sampleWindow) },
    ],
  ])('%s', (_what, message) => {
    expect(() => encodeMessage(message)).toThrow(ProtocolError);
  });

  test('a full snapshot of the largest windows still fits in one frame', () => {
    const big: WindowInfo = {
      ...sampleWindow,
      title: 'é'.repeat(512),
      wmInstance: 'i'.repeat(256),
      wmClass: 'c'.repeat(256),
    };
    const frame = encodeMessage({
      type: 'window-list',
      focused: 1,
      windows: Array(MAX_SNAPSHOT_WINDOWS).fill(big),
    });
    expect(frame.length - 5).toBeLessThanOrEqual(MAX_FRAME_PAYLOAD);
    const result = decodeFrame(frame);
    expect(result.ok && result.message.type === 'window-list' && result.message.windows.length).toBe(
      MAX_SNAPSHOT_WINDOWS,
    );
  });
});

describe('FrameDecoder over arbitrary chunking', () => {
  test('any sequence of messages split at any points decodes to the same sequence', () => {
    fc.assert(
      fc.property(
        fc.array(anyMessageArb, { minLength: 1, maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 50 }),
        (messages, cuts) => {
          const stream = Buffer.concat(messages.map(encodeMessage));
          const decoder = new FrameDecoder();
          const out: Message[] = [];
          let at = 0;
          let i = 0;
          while (at < stream.length) {
            const size = cuts[i++ % cuts.length]!;
            out.push(...okMessages(decoder.push(stream.subarray(at, at + size))));
            at += size;
          }
          expect(out).toEqual(messages);
          expect(decoder.pendingBytes).toBe(0);
          expect(decoder.end()).toEqual([]);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('one byte at a time works too', () => {
    const messages: Message[] = [
      { type: 'window-created', window: sampleWindow },
      { type: 'focus-changed', id: sampleWindow.id },
      { type: 'heartbeat', seq: 7 },
    ];
    const stream = Buffer.concat(messages.map(encodeMessage));
    const decoder = new FrameDecoder();
    const out: Message[] = [];
    for (const byte of stream) out.push(...okMessages(decoder.push(Buffer.from([byte]))));
    expect(out).toEqual(messages);
  });
});

describe('FrameDecoder never trusts a length field', () => {
  test('an oversize length is rejected from the header alone, without waiting for or buffering the payload', () => {
    const decoder = new FrameDecoder();
    const results = decoder.push(header(0xffffffff, MessageType.WINDOW_LIST));
    expect(results).toHaveLength(1);
    expect(results[0]!.ok).toBe(false);
    expect(!results[0]!.ok && results[0]!.error.message).toMatch(/exceeds the 1048576-byte limit/);
    expect(decoder.pendingBytes).toBe(0);
  });

  test('a length just over 1 MiB is refused; exactly the limit of a type is waited for', () => {
    const over = new FrameDecoder().push(header(MAX_FRAME_PAYLOAD + 1, MessageType.WINDOW_LIST));
    expect(over[0]!.ok).toBe(false);
    const atLimit = new FrameDecoder();
    expect(atLimit.push(header(MAX_FRAME_PAYLOAD, MessageType.WINDOW_LIST))).toEqual([]);
    expect(atLimit.pendingBytes).toBe(5);
  });

  test('per-type limits are tighter: a 2 KiB heartbeat or a 300 KiB clipboard frame is refused at once', () => {
    const hb = new FrameDecoder().push(header(2048, MessageType.HEARTBEAT));
    expect(!hb[0]!.ok && hb[0]!.error.code).toBe(7);
    const clip = new FrameDecoder().push(header(300 * 1024, MessageType.CLIPBOARD_DATA));
    expect(!clip[0]!.ok && clip[0]!.error.message).toMatch(/clipboard-data frame of 307200 bytes exceeds/);
  });

  test('an inner length larger than the frame is a truncation error, not a read past the end', () => {
    // title-changed with a title length of 1000 but only 3 bytes of title.
    const payload = Buffer.concat([Buffer.from([0, 0, 0, 1, 0x03, 0xe8]), Buffer.from('abc')]);
    const result = decodeFrame(Buffer.concat([header(payload.length, MessageType.TITLE_CHANGED), payload]));
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error.message).toMatch(/truncated at title/);
  });

  test('a snapshot claiming 65535 windows is refused before reading them', () => {
    const payload = Buffer.from([0, 0, 0, 0, 0xff, 0xff]);
    const result = decodeFrame(Buffer.concat([header(payload.length, MessageType.WINDOW_LIST), payload]));
    expect(!result.ok && result.error.message).toMatch(/65535 windows; the limit is 512/);
  });

  test('unknown types, trailing bytes, bad booleans, invalid UTF-8 and bad magic are errors', () => {
    const cases: Buffer[] = [
      Buffer.concat([header(0, 0x7f)]),
      Buffer.concat([header(5, MessageType.HEARTBEAT), Buffer.alloc(5)]),
      (() => {
        const f = encodeMessage({ type: 'window-created', window: sampleWindow });
        f[5 + 20] = 2; // override-redirect flag
        return f;
      })(),
      Buffer.concat([header(8, MessageType.TITLE_CHANGED), Buffer.from([0, 0, 0, 1, 0, 2, 0xc3, 0x28])]),
      (() => {
        const f = encodeMessage({
          type: 'hello',
          minVersion: 1,
          maxVersion: 1,
          vmName: 'vm',
          agentVersion: '',
          agentNonce: Buffer.alloc(32),
        });
        f[5] = 0x48; // 'H' instead of 'V'
        return f;
      })(),
    ];
    for (const frame of cases) {
      const result = decodeFrame(frame);
      expect(result.ok).toBe(false);
      const streamed = new FrameDecoder().push(frame);
      expect(streamed.at(-1)?.ok).toBe(false);
    }
  });

  test('after an error the decoder stays failed and returns nothing more', () => {
    const decoder = new FrameDecoder();
    const first = decoder.push(header(0, 0x7f));
    expect(first[0]!.ok).toBe(false);
    expect(decoder.push(encodeMessage({ type: 'heartbeat', seq: 1 }))).toEqual([]);
    expect(decoder.failed).toBeInstanceOf(ProtocolError);
  });

  test('a stream that ends mid-frame reports it', () => {
    const decoder = new FrameDecoder();
    const frame = encodeMessage({ type: 'heartbeat', seq: 1 });
    expect(decoder.push(frame.subarray(0, 6))).toEqual([]);
    const end = decoder.end();
    expect(!end[0]!.ok && end[0]!.error.message).toMatch(/ended inside a frame/);
  });
});

describe('fuzz: random and damaged bytes', () => {
  const check = (bytes: Uint8Array, cuts: number[]): void => {
    const decoder = new FrameDecoder();
    let at = 0;
    let i = 0;
    let sawError = false;
    while (at < bytes.length) {
      const size = cuts[i++ % cuts.length]!;
      const results = decoder.push(bytes.subarray(at, at + size));
      for (const [k, r] of results.entries()) {
        expect(sawError).toBe(false);
        if (!r.ok) {
          expect(r.error).toBeInstanceOf(ProtocolError);
          expect(k).toBe(results.length - 1);
          sawError = true;
        }
      }
      at += size;
      // Bounded buffering: never more than the largest frame plus one chunk.
      expect(decoder.pendingBytes).toBeLessThanOrEqual(5 + MAX_FRAME_PAYLOAD + size);
    }
    decoder.end();
  };

  test('random bytes never throw, hang or over-buffer', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 2048 }),
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 10 }),
        (bytes, cuts) => check(bytes, cuts),
      ),
      { numRuns: 2000 },
    );
  });

  test('random bytes behind a valid header of every known type never throw', () => {
    const codes = Object.values(MessageType);
    fc.assert(
      fc.property(fc.constantFrom(...codes), fc.uint8Array({ maxLength: 600 }), (code, body) => {
        const result = decodeFrame(Buffer.concat([header(body.length, code), Buffer.from(body)]));
        if (!result.ok) expect(result.error).toBeInstanceOf(ProtocolError);
        else
          expect(encodeMessage(result.message)).toEqual(
            Buffer.concat([header(body.length, code), Buffer.from(body)]),
          );
      }),
      { numRuns: 3000 },
    );
  });

  test('valid frames with one byte flipped or cut short decode or fail cleanly', () => {
    fc.assert(
      fc.property(
        anyMessageArb,
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        fc.nat(),
        (message, where, value, cut) => {
          const frame = Buffer.from(encodeMessage(message));
          frame[where % frame.length] = value;
          check(frame, [1 + (cut % 64)]);
          const truncated = frame.subarray(0, cut % frame.length);
          const r = decodeFrame(truncated);
          expect(r.ok).toBe(false);
        },
      ),
      { numRuns: 1500 },
    );
  });

  test('window snapshots decode the same from any chunking', () => {
    fc.assert(
      fc.property(
        fc.array(windowArb, { maxLength: 30 }),
        fc.integer({ min: 1, max: 500 }),
        (windows, size) => {
          const frame = encodeMessage({ type: 'window-list', focused: 0, windows });
          const decoder = new FrameDecoder();
          const out: Message[] = [];
          for (let at = 0; at < frame.length; at += size)
            out.push(...okMessages(decoder.push(frame.subarray(at, at + size))));
          expect(out).toEqual([{ type: 'window-list', focused: 0, windows }]);
        },
      ),
      { numRuns: 100 },
    );
  });
});
