import fc from 'fast-check';
import {
  MAX_CLASS_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_EXEC_ARGS,
  MAX_FILE_BYTES,
  MAX_GUEST_PATH_BYTES,
  SHA256_BYTES,
  FileKind,
  MAX_TITLE_BYTES,
  NONCE_BYTES,
  MAC_BYTES,
  type HelloMessage,
  type Message,
  type WindowInfo,
} from '../../src/protocol/index.js';

/** fast-check generators for every protocol message, within the documented limits. */

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const id = fc.integer({ min: 1, max: 0xffffffff });
const i32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((a) => Buffer.from(a));

/** Unicode text whose UTF-8 encoding fits in `maxBytes`. */
const text = (maxBytes: number) =>
  fc
    .string({ unit: 'grapheme', maxLength: Math.min(maxBytes, 200) })
    .filter((s) => Buffer.byteLength(s, 'utf8') <= maxBytes);

/** Text with no control character (what an EXEC argument may hold). */
const argText = (maxBytes: number) =>
  // eslint-disable-next-line no-control-regex
  text(maxBytes).map((s) => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '_'));

export const vmNameArb = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/);

export const windowArb: fc.Arbitrary<WindowInfo> = fc.record({
  id,
  x: i32,
  y: i32,
  width: u32,
  height: u32,
  overrideRedirect: fc.boolean(),
  mapped: fc.boolean(),
  parent: u32,
  transientFor: u32,
  title: text(MAX_TITLE_BYTES),
  wmInstance: text(MAX_CLASS_BYTES),
  wmClass: text(MAX_CLASS_BYTES),
});

const helloArb: fc.Arbitrary<HelloMessage> = fc
  .record({
    minVersion: fc.integer({ min: 0, max: 0xffff }),
    span: fc.integer({ min: 0, max: 10 }),
    vmName: vmNameArb,
    agentVersion: text(64),
    agentNonce: bytes(NONCE_BYTES),
  })
  .filter((r) => r.minVersion + r.span <= 0xffff)
  .map((r) => ({
    type: 'hello' as const,
    minVersion: r.minVersion,
    maxVersion: r.minVersion + r.span,
    vmName: r.vmName,
    agentVersion: r.agentVersion,
    agentNonce: r.agentNonce,
  }));

export const messageArbs: Record<Message['type'], fc.Arbitrary<Message>> = {
  hello: helloArb,
  // RESUME is HELLO's fields and a MAC.
  resume: fc
    .tuple(helloArb, bytes(MAC_BYTES))
    .map(([hello, mac]) => ({ ...hello, type: 'resume' as const, mac })),
  ticket: fc.record({ type: fc.constant('ticket' as const), ticket: bytes(NONCE_BYTES) }),
  challenge: fc.record({
    type: fc.constant('challenge' as const),
    version: fc.integer({ min: 0, max: 0xffff }),
    proxyNonce: bytes(NONCE_BYTES),
  }),
  auth: fc.record({ type: fc.constant('auth' as const), mac: bytes(MAC_BYTES) }),
  welcome: fc.record({
    type: fc.constant('welcome' as const),
    mac: bytes(MAC_BYTES),
    heartbeatIntervalMs: fc.integer({ min: 1, max: 0xffffffff }),
  }),
  error: fc.record({
    type: fc.constant('error' as const),
    code: fc.integer({ min: 0, max: 0xffff }),
    message: text(MAX_ERROR_MESSAGE_BYTES),
  }),
  heartbeat: fc.record({ type: fc.constant('heartbeat' as const), seq: u32 }),
  'window-created': fc.record({ type: fc.constant('window-created' as const), window: windowArb }),
  'window-destroyed': fc.record({ type: fc.constant('window-destroyed' as const), id }),
  'window-moved': fc.record({ type: fc.constant('window-moved' as const), id, x: i32, y: i32 }),
  'window-resized': fc.record({ type: fc.constant('window-resized' as const), id, width: u32, height: u32 }),
  'focus-changed': fc.record({ type: fc.constant('focus-changed' as const), id: u32 }),
  'title-changed': fc.record({
    type: fc.constant('title-changed' as const),
    id,
    title: text(MAX_TITLE_BYTES),
  }),
  'window-mapped': fc.record({ type: fc.constant('window-mapped' as const), id }),
  'window-unmapped': fc.record({ type: fc.constant('window-unmapped' as const), id }),
  'window-list': fc.record({
    type: fc.constant('window-list' as const),
    focused: u32,
    windows: fc.array(windowArb, { maxLength: 20 }),
  }),
  'clipboard-request': fc.record({ type: fc.constant('clipboard-request' as const), requestId: u32 }),
  'clipboard-data': fc.record({
    type: fc.constant('clipboard-data' as const),
    requestId: u32,
    mimeType: text(255),
    data: fc.uint8Array({ maxLength: 4096 }).map((a) => Buffer.from(a)),
  }),
  'clipboard-result': fc.record({
    type: fc.constant('clipboard-result' as const),
    requestId: u32,
    status: fc.integer({ min: 0, max: 255 }),
    message: text(MAX_ERROR_MESSAGE_BYTES),
  }),
  exec: fc.record({
    type: fc.constant('exec' as const),
    requestId: u32,
    argv: fc
      .tuple(
        fc.stringMatching(
          /^(?:\/[A-Za-z0-9_][A-Za-z0-9_.+-]{0,20}){1,4}$|^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,30}$/,
        ),
        fc.array(argText(200), { maxLength: MAX_EXEC_ARGS - 1 }),
      )
      .map(([program, args]) => [program, ...args]),
  }),
  'exec-result': fc.record({
    type: fc.constant('exec-result' as const),
    requestId: u32,
    status: fc.integer({ min: 0, max: 255 }),
    pid: u32,
    message: text(MAX_ERROR_MESSAGE_BYTES),
  }),
  'file-begin': fc.record({
    type: fc.constant('file-begin' as const),
    transferId: u32,
    kind: fc.constantFrom(FileKind.COPY, FileKind.OPEN, FileKind.OPEN_WRITEBACK),
    size: fc.integer({ min: 0, max: MAX_FILE_BYTES }),
    // A file name: no '/', no control character, not starting with '.'.
    name: argText(200)
      .map((s) => s.replace(/\//g, '_').replace(/^\./, '_'))
      .filter((s) => s !== '' && Buffer.byteLength(s, 'utf8') <= 255),
  }),
  'file-data': fc.record({
    type: fc.constant('file-data' as const),
    transferId: u32,
    data: fc.uint8Array({ maxLength: 4096 }).map((a) => Buffer.from(a)),
  }),
  'file-end': fc.record({
    type: fc.constant('file-end' as const),
    transferId: u32,
    sha256: bytes(SHA256_BYTES),
  }),
  'file-result': fc.record({
    type: fc.constant('file-result' as const),
    transferId: u32,
    status: fc.integer({ min: 0, max: 255 }),
    pid: u32,
    path: text(MAX_GUEST_PATH_BYTES),
    message: text(MAX_ERROR_MESSAGE_BYTES),
  }),
  'file-close': fc.record({ type: fc.constant('file-close' as const), transferId: u32 }),
  'writeback-begin': fc.record({
    type: fc.constant('writeback-begin' as const),
    transferId: u32,
    size: fc.integer({ min: 0, max: MAX_FILE_BYTES }),
  }),
  'writeback-data': fc.record({
    type: fc.constant('writeback-data' as const),
    transferId: u32,
    data: fc.uint8Array({ maxLength: 4096 }).map((a) => Buffer.from(a)),
  }),
  'writeback-end': fc.record({
    type: fc.constant('writeback-end' as const),
    transferId: u32,
    sha256: bytes(SHA256_BYTES),
  }),
  'exec-exited': fc.oneof(
    fc.record({
      type: fc.constant('exec-exited' as const),
      requestId: u32,
      how: fc.constant(0),
      code: fc.integer({ min: 0, max: 255 }),
    }),
    fc.record({
      type: fc.constant('exec-exited' as const),
      requestId: u32,
      how: fc.constant(1),
      code: fc.integer({ min: 1, max: 255 }),
    }),
  ),
};

export const anyMessageArb: fc.Arbitrary<Message> = fc.oneof(...Object.values(messageArbs));
