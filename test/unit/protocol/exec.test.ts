import {
  decodeFrame,
  encodeMessage,
  execArgvProblem,
  FrameDecoder,
  MAX_EXEC_ARG_BYTES,
  MAX_EXEC_ARGS,
  MAX_EXEC_ARGV_BYTES,
  MAX_PAYLOAD_BY_CODE,
  MessageType,
  PROTOCOL_VERSION,
  EXEC_MIN_VERSION,
  EXEC_EXITED_MIN_VERSION,
} from '../../../src/protocol/index.js';

/** EXEC and EXEC_RESULT (docs/protocol.md): the bytes, the limits, and frames that break them. */

/** A raw EXEC frame from parts, so tests can build what our encoder refuses to. */
function rawExec(requestId: number, args: Buffer[], argc = args.length): Buffer {
  const head = Buffer.alloc(6);
  head.writeUInt32BE(requestId, 0);
  head.writeUInt16BE(argc, 4);
  const parts = args.map((a) => {
    const len = Buffer.alloc(2);
    len.writeUInt16BE(a.length, 0);
    return Buffer.concat([len, a]);
  });
  const payload = Buffer.concat([head, ...parts]);
  const header = Buffer.alloc(5);
  header.writeUInt32BE(payload.length, 0);
  header.writeUInt8(MessageType.EXEC, 4);
  return Buffer.concat([header, payload]);
}

const errorOf = (frame: Buffer): string => {
  const r = decodeFrame(frame);
  if (r.ok) throw new Error(`decoded: ${JSON.stringify(r.message)}`);
  return r.error.message;
};

describe('EXEC on the wire', () => {
  test('the documented example has the documented bytes', () => {
    const frame = encodeMessage({ type: 'exec', requestId: 7, argv: ['xterm', '-T', 'hi'] });
    expect(frame.toString('hex')).toBe(
      ['00000015', '30', '00000007', '0003', '0005', '787465726d', '0002', '2d54', '0002', '6869'].join(''),
    );
    expect(decodeFrame(frame)).toEqual({
      ok: true,
      message: { type: 'exec', requestId: 7, argv: ['xterm', '-T', 'hi'] },
    });
  });

  test('EXEC_RESULT carries status, pid and message', () => {
    const m = { type: 'exec-result', requestId: 9, status: 0, pid: 4242, message: '' } as const;
    const frame = encodeMessage(m);
    expect(frame.toString('hex')).toBe('0000000b' + '31' + '00000009' + '00' + '00001092' + '0000');
    expect(decodeFrame(frame)).toEqual({ ok: true, message: m });
  });

  test('this code speaks version 4 (RESUME); EXEC_EXITED came in 3, EXEC in 2; version 1 is still accepted', () => {
    expect(PROTOCOL_VERSION).toBe(4);
    expect(EXEC_MIN_VERSION).toBe(2);
    expect(EXEC_EXITED_MIN_VERSION).toBe(3);
  });

  test('the largest legal EXEC fits its type limit exactly', () => {
    const program = 'p'.repeat(255);
    const per = Math.floor((MAX_EXEC_ARGV_BYTES - 255) / (MAX_EXEC_ARGS - 1));
    const argv = [program, ...Array.from({ length: MAX_EXEC_ARGS - 1 }, () => 'a'.repeat(per))];
    const frame = encodeMessage({ type: 'exec', requestId: 1, argv });
    expect(frame.length - 5).toBeLessThanOrEqual(MAX_PAYLOAD_BY_CODE.get(MessageType.EXEC)!);
    expect(decodeFrame(frame).ok).toBe(true);
    expect(MAX_PAYLOAD_BY_CODE.get(MessageType.EXEC)).toBe(4 + 2 + 2 * MAX_EXEC_ARGS + MAX_EXEC_ARGV_BYTES);
  });
});

describe('execArgvProblem: the one rule for argv', () => {
  test.each([
    [['xterm'], null],
    [['/usr/bin/xterm', '-T', 'a title with spaces', ''], null],
    [['firefox', 'https://example.org/?q=a&b=$HOME;rm -rf ~'], null],
    [['flatpak', 'run', 'org.mozilla.firefox'], null],
    [['xterm', 'ünïcödé ✓'], null],
  ])('%j is accepted', (argv, expected) => {
    expect(execArgvProblem(argv)).toBe(expected);
  });

  test.each([
    [[], /argv is empty/],
    ['xterm -T hi', /must be a list/],
    [[42], /argv\[0\] is not a string/],
    [['xterm', 'a\0b'], /argv\[1\] contains a control character \(NUL included\)/],
    [['xterm', 'line\nbreak'], /control character/],
    [['xterm', 'del\x7f'], /control character/],
    [['xterm', 'c1\u0085'], /control character/],
    [['xterm', '\ud800'], /not well-formed Unicode/],
    [['sh -c x'], /argv\[0\] must be a program name/],
    [['../bin/sh'], /argv\[0\] must be a program name/],
    [['/usr/../bin/sh'], /argv\[0\] must be a program name/],
    [['bin/sh'], /argv\[0\] must be a program name/],
    [['-x'], /argv\[0\] must be a program name/],
    [[''], /argv\[0\] must be a program name/],
    [['x'.repeat(256)], /argv\[0\] must be a program name/],
    [Array.from({ length: MAX_EXEC_ARGS + 1 }, () => 'x'), /65 elements; the limit is 64/],
    [['xterm', 'a'.repeat(MAX_EXEC_ARG_BYTES + 1)], /argv\[1\] is 4097 bytes; the limit is 4096/],
    [
      ['xterm', ...Array.from({ length: 5 }, () => 'a'.repeat(4000))],
      /20005 bytes in all; the limit is 16384/,
    ],
  ])('%j is refused', (argv, why) => {
    expect(execArgvProblem(argv)).toMatch(why);
  });

  test('the encoder refuses what the rule refuses, so a proxy never sends it', () => {
    expect(() => encodeMessage({ type: 'exec', requestId: 1, argv: ['xterm', 'a\0b'] })).toThrow(
      /exec: argv\[1\] contains a control character/,
    );
    expect(() => encodeMessage({ type: 'exec', requestId: 1, argv: [] })).toThrow(/argv is empty/);
  });
});

describe('bad EXEC frames are protocol errors', () => {
  test('a NUL inside an element', () => {
    expect(errorOf(rawExec(1, [Buffer.from('xterm'), Buffer.from('a\0b')]))).toMatch(
      /exec: argv\[1\] contains a control character/,
    );
  });

  test('argc 0, and argc over the limit before any element is read', () => {
    expect(errorOf(rawExec(1, [], 0))).toMatch(/argc is 0; it must be 1 to 64/);
    expect(errorOf(rawExec(1, [Buffer.from('x')], 65))).toMatch(/argc is 65/);
    expect(errorOf(rawExec(1, [Buffer.from('x')], 0xffff))).toMatch(/argc is 65535/);
  });

  test('argc larger than the elements present is a truncation, not a read past the end', () => {
    expect(errorOf(rawExec(1, [Buffer.from('xterm')], 3))).toMatch(/truncated at argv\[1\]/);
  });

  test('an element over its limit, invalid UTF-8, and a shell string as the program', () => {
    expect(errorOf(rawExec(1, [Buffer.from('x'), Buffer.alloc(MAX_EXEC_ARG_BYTES + 1, 0x61)]))).toMatch(
      /argv\[1\] is 4097 bytes; the limit is 4096/,
    );
    expect(errorOf(rawExec(1, [Buffer.from('x'), Buffer.from([0xc0, 0x80])]))).toMatch(/not valid UTF-8/);
    expect(errorOf(rawExec(1, [Buffer.from('sh -c reboot')]))).toMatch(/argv\[0\] must be a program name/);
  });

  test('a header announcing more than the EXEC limit is refused from the header alone', () => {
    const header = Buffer.alloc(5);
    header.writeUInt32BE(MAX_PAYLOAD_BY_CODE.get(MessageType.EXEC)! + 1, 0);
    header.writeUInt8(MessageType.EXEC, 4);
    const decoder = new FrameDecoder();
    const [r] = decoder.push(header);
    expect(r).toMatchObject({ ok: false });
    expect(!r!.ok && r!.error.code).toBe(7);
    expect(decoder.pendingBytes).toBe(0);
  });
});

describe('EXEC_EXITED on the wire', () => {
  const raw = (payload: number[]): Buffer => {
    const header = Buffer.alloc(5);
    header.writeUInt32BE(payload.length, 0);
    header.writeUInt8(MessageType.EXEC_EXITED, 4);
    return Buffer.concat([header, Buffer.from(payload)]);
  };

  test('the documented example has the documented bytes: exec 7 exited with status 3', () => {
    const m = { type: 'exec-exited', requestId: 7, how: 0, code: 3 } as const;
    const frame = encodeMessage(m);
    expect(frame.toString('hex')).toBe('00000006' + '32' + '00000007' + '00' + '03');
    expect(decodeFrame(frame)).toEqual({ ok: true, message: m });
  });

  test('killed by signal 15', () => {
    const m = { type: 'exec-exited', requestId: 1, how: 1, code: 15 } as const;
    expect(decodeFrame(encodeMessage(m))).toEqual({ ok: true, message: m });
  });

  test.each([
    ['an unknown how', [0, 0, 0, 1, 2, 0], /how is 2/],
    ['signal 0', [0, 0, 0, 1, 1, 0], /code must be an integer from 1 to 255/],
    ['a short payload', [0, 0, 0, 1, 0], /./],
  ])('%s is refused', (_what, payload, message) => {
    expect(errorOf(raw(payload))).toMatch(message);
  });

  test('a longer frame than its 6 bytes is refused from its header', () => {
    expect(MAX_PAYLOAD_BY_CODE.get(MessageType.EXEC_EXITED)).toBe(6);
    expect(errorOf(raw([0, 0, 0, 1, 0, 0, 0]))).toMatch(/exceeds its 6-byte limit/);
  });

  test('the encoder refuses what the decoder would', () => {
    expect(() => encodeMessage({ type: 'exec-exited', requestId: 1, how: 0, code: 256 })).toThrow(/code/);
  });
});
