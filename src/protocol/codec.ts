import {
  EXEC_FORBIDDEN_CHARS,
  EXEC_PROGRAM_PATTERN,
  ExecEnd,
  FRAME_HEADER_BYTES,
  HELLO_MAGIC,
  MAC_BYTES,
  MAX_AGENT_VERSION_BYTES,
  MAX_CLASS_BYTES,
  MAX_CLIPBOARD_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_EXEC_ARG_BYTES,
  MAX_EXEC_ARGS,
  MAX_EXEC_ARGV_BYTES,
  MAX_EXEC_PROGRAM_BYTES,
  MAX_FILE_BYTES,
  MAX_FILE_CHUNK_BYTES,
  MAX_FILE_NAME_BYTES,
  MAX_GUEST_PATH_BYTES,
  SHA256_BYTES,
  FileKind,
  type FileKindValue,
  MAX_FRAME_PAYLOAD,
  MAX_MIME_BYTES,
  MAX_PAYLOAD_BY_CODE,
  MAX_SNAPSHOT_WINDOWS,
  MAX_TITLE_BYTES,
  MAX_VM_NAME_BYTES,
  MESSAGE_CODES,
  MESSAGE_NAMES,
  MessageType,
  NONCE_BYTES,
  VM_NAME_PATTERN,
  type Message,
  type WindowInfo,
} from './messages.js';

/**
 * Encoding and decoding of single messages. Everything is big-endian; strings
 * are UTF-8 with a u16 byte length; byte strings have a u32 length. The
 * decoder checks every length against what is left and against the field's
 * limit before touching the bytes, so a lying length can only cause a
 * ProtocolError.
 */

/** A frame or message that breaks the protocol. `code` is the ERROR code to send before closing. */
export class ProtocolError extends Error {
  constructor(
    message: string,
    readonly code: number = 1,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/**
 * A HELLO whose magic is wrong: the peer is not a vm-provisioner agent at all
 * (a port scanner, an HTTP client), so it gets no ERROR frame, only a close.
 * Answering would tell a stranger what listens here.
 */
export class BadMagicError extends ProtocolError {
  constructor() {
    super('hello: bad magic (not a vm-provisioner agent)');
    this.name = 'BadMagicError';
  }
}

// With the u flag a valid surrogate pair is one code point, so this matches only lone halves.
const LONE_SURROGATE = /\p{Surrogate}/u;
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

class Writer {
  private readonly parts: Buffer[] = [];
  private size = 0;

  private push(buf: Buffer): void {
    this.parts.push(buf);
    this.size += buf.length;
  }
  u8(value: number, field: string): void {
    checkInt(value, 0, 0xff, field);
    this.push(Buffer.from([value]));
  }
  bool(value: boolean, field: string): void {
    if (typeof value !== 'boolean') throw new ProtocolError(`${field} must be a boolean`);
    this.push(Buffer.from([value ? 1 : 0]));
  }
  u16(value: number, field: string): void {
    checkInt(value, 0, 0xffff, field);
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16BE(value, 0);
    this.push(b);
  }
  u32(value: number, field: string): void {
    checkInt(value, 0, 0xffffffff, field);
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(value, 0);
    this.push(b);
  }
  i32(value: number, field: string): void {
    checkInt(value, -0x80000000, 0x7fffffff, field);
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(value, 0);
    this.push(b);
  }
  fixed(value: Buffer, length: number, field: string): void {
    if (!Buffer.isBuffer(value) || value.length !== length) {
      throw new ProtocolError(`${field} must be exactly ${length} bytes`);
    }
    this.push(value);
  }
  string(value: string, max: number, field: string): void {
    if (typeof value !== 'string') throw new ProtocolError(`${field} must be a string`);
    if (LONE_SURROGATE.test(value)) throw new ProtocolError(`${field} is not well-formed Unicode`);
    const bytes = Buffer.from(value, 'utf8');
    if (bytes.length > max) throw new ProtocolError(`${field} is ${bytes.length} bytes; the limit is ${max}`);
    this.u16(bytes.length, field);
    this.push(bytes);
  }
  bytes(value: Buffer, max: number, field: string): void {
    if (!Buffer.isBuffer(value)) throw new ProtocolError(`${field} must be a Buffer`);
    if (value.length > max) throw new ProtocolError(`${field} is ${value.length} bytes; the limit is ${max}`);
    this.u32(value.length, field);
    this.push(value);
  }
  finish(typeCode: number): Buffer {
    const limit = MAX_PAYLOAD_BY_CODE.get(typeCode) ?? MAX_FRAME_PAYLOAD;
    if (this.size > limit) {
      throw new ProtocolError(`message is ${this.size} bytes; the limit for its type is ${limit}`, 7);
    }
    const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
    header.writeUInt32BE(this.size, 0);
    header.writeUInt8(typeCode, 4);
    return Buffer.concat([header, ...this.parts], FRAME_HEADER_BYTES + this.size);
  }
}

function checkInt(value: number, min: number, max: number, field: string): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ProtocolError(`${field} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
}

/** EXEC_EXITED: `how` is EXITED (status 0-255) or SIGNALLED (signal 1-255; 0 is no signal). */
function checkExecEnd(how: number, code: number): void {
  if (how !== ExecEnd.EXITED && how !== ExecEnd.SIGNALLED) {
    throw new ProtocolError(`exec-exited: how is ${String(how)}; it must be 0 (exited) or 1 (signalled)`);
  }
  checkInt(code, how === ExecEnd.SIGNALLED ? 1 : 0, 255, 'exec-exited code');
}

class Reader {
  private offset = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}

  private take(n: number, field: string): number {
    if (n > this.buf.length - this.offset) {
      throw new ProtocolError(
        `${this.what}: truncated at ${field} (needs ${n} bytes, ${this.remaining()} left)`,
      );
    }
    const at = this.offset;
    this.offset += n;
    return at;
  }
  remaining(): number {
    return this.buf.length - this.offset;
  }
  u8(field: string): number {
    return this.buf.readUInt8(this.take(1, field));
  }
  bool(field: string): boolean {
    const v = this.u8(field);
    if (v > 1) throw new ProtocolError(`${this.what}: ${field} must be 0 or 1, got ${v}`);
    return v === 1;
  }
  u16(field: string): number {
    return this.buf.readUInt16BE(this.take(2, field));
  }
  u32(field: string): number {
    return this.buf.readUInt32BE(this.take(4, field));
  }
  i32(field: string): number {
    return this.buf.readInt32BE(this.take(4, field));
  }
  fixed(length: number, field: string): Buffer {
    const at = this.take(length, field);
    // A copy: the frame buffer may be shared with the next frames.
    return Buffer.from(this.buf.subarray(at, at + length));
  }
  string(max: number, field: string): string {
    const length = this.u16(field);
    if (length > max)
      throw new ProtocolError(`${this.what}: ${field} is ${length} bytes; the limit is ${max}`);
    const at = this.take(length, field);
    try {
      return utf8Decoder.decode(this.buf.subarray(at, at + length));
    } catch {
      throw new ProtocolError(`${this.what}: ${field} is not valid UTF-8`);
    }
  }
  bytes(max: number, field: string): Buffer {
    const length = this.u32(field);
    if (length > max)
      throw new ProtocolError(`${this.what}: ${field} is ${length} bytes; the limit is ${max}`);
    return this.fixed(length, field);
  }
  end(): void {
    if (this.remaining() !== 0) {
      throw new ProtocolError(`${this.what}: ${this.remaining()} unexpected trailing bytes`);
    }
  }
}

function checkWindowId(id: number, field: string, allowZero: boolean): void {
  checkInt(id, allowZero ? 0 : 1, 0xffffffff, field);
}

function writeWindow(w: Writer, win: WindowInfo): void {
  checkWindowId(win.id, 'window id', false);
  w.u32(win.id, 'window id');
  w.i32(win.x, 'x');
  w.i32(win.y, 'y');
  w.u32(win.width, 'width');
  w.u32(win.height, 'height');
  w.bool(win.overrideRedirect, 'overrideRedirect');
  w.bool(win.mapped, 'mapped');
  w.u32(win.parent, 'parent');
  w.u32(win.transientFor, 'transientFor');
  w.string(win.title, MAX_TITLE_BYTES, 'title');
  w.string(win.wmInstance, MAX_CLASS_BYTES, 'wmInstance');
  w.string(win.wmClass, MAX_CLASS_BYTES, 'wmClass');
}

function readWindow(r: Reader): WindowInfo {
  const id = r.u32('window id');
  if (id === 0) throw new ProtocolError('window id 0 is not a window');
  return {
    id,
    x: r.i32('x'),
    y: r.i32('y'),
    width: r.u32('width'),
    height: r.u32('height'),
    overrideRedirect: r.bool('overrideRedirect'),
    mapped: r.bool('mapped'),
    parent: r.u32('parent'),
    transientFor: r.u32('transientFor'),
    title: r.string(MAX_TITLE_BYTES, 'title'),
    wmInstance: r.string(MAX_CLASS_BYTES, 'wmInstance'),
    wmClass: r.string(MAX_CLASS_BYTES, 'wmClass'),
  };
}

function checkVmName(name: string): void {
  if (typeof name !== 'string' || !VM_NAME_PATTERN.test(name)) {
    throw new ProtocolError(
      `VM name ${JSON.stringify(name)} is invalid: use 1-63 of a-z 0-9 and -, not starting or ending with -`,
    );
  }
}

/**
 * Why `argv` may not be sent in (or accepted from) an EXEC, or null when it
 * may: 1 to MAX_EXEC_ARGS elements, argv[0] a program name or an absolute
 * path of such names, no element with a control character (NUL included) or
 * over MAX_EXEC_ARG_BYTES, all together at most MAX_EXEC_ARGV_BYTES of UTF-8.
 * The proxy's control socket, the CLI and both ends of the link apply this one rule.
 */
export function execArgvProblem(argv: unknown): string | null {
  if (!Array.isArray(argv)) return 'argv must be a list of strings';
  if (argv.length === 0) return 'argv is empty: name a program';
  if (argv.length > MAX_EXEC_ARGS) return `argv has ${argv.length} elements; the limit is ${MAX_EXEC_ARGS}`;
  let total = 0;
  for (const [i, arg] of (argv as unknown[]).entries()) {
    if (typeof arg !== 'string') return `argv[${i}] is not a string`;
    if (LONE_SURROGATE.test(arg)) return `argv[${i}] is not well-formed Unicode`;
    const bytes = Buffer.byteLength(arg, 'utf8');
    if (bytes > MAX_EXEC_ARG_BYTES) return `argv[${i}] is ${bytes} bytes; the limit is ${MAX_EXEC_ARG_BYTES}`;
    if (EXEC_FORBIDDEN_CHARS.test(arg)) return `argv[${i}] contains a control character (NUL included)`;
    total += bytes;
  }
  if (total > MAX_EXEC_ARGV_BYTES)
    return `argv is ${total} bytes in all; the limit is ${MAX_EXEC_ARGV_BYTES}`;
  const program = argv[0] as string;
  if (Buffer.byteLength(program, 'utf8') > MAX_EXEC_PROGRAM_BYTES || !EXEC_PROGRAM_PATTERN.test(program)) {
    return (
      'argv[0] must be a program name or an absolute path of such names ' +
      `(A-Z a-z 0-9 _ . + -, not starting with . + or -, at most ${MAX_EXEC_PROGRAM_BYTES} bytes)`
    );
  }
  return null;
}

/**
 * Why `name` may not be a file's name in the guest, or null when it may: one
 * path segment of 1 to MAX_FILE_NAME_BYTES bytes of well-formed UTF-8, with no
 * `/`, no control character (NUL included), and not starting with `.` (so
 * never `.` or `..`, and never a hidden file). The CLI, the proxy and both
 * ends of the link apply this one rule; a name that breaks it is refused,
 * never rewritten.
 */
export function fileNameProblem(name: unknown): string | null {
  if (typeof name !== 'string') return 'the name must be a string';
  if (name === '') return 'the name is empty';
  if (LONE_SURROGATE.test(name)) return 'the name is not well-formed Unicode';
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_FILE_NAME_BYTES) return `the name is ${bytes} bytes; the limit is ${MAX_FILE_NAME_BYTES}`;
  if (EXEC_FORBIDDEN_CHARS.test(name)) return 'the name contains a control character (NUL included)';
  if (name.includes('/')) return "the name contains '/'";
  if (name.startsWith('.')) return "the name starts with '.'";
  return null;
}

const FILE_KINDS = new Set<number>(Object.values(FileKind));

function checkFileBegin(kind: number, size: number, name: string): void {
  if (!FILE_KINDS.has(kind)) throw new ProtocolError(`file-begin: unknown kind ${kind}`);
  if (size > MAX_FILE_BYTES) {
    throw new ProtocolError(`file-begin: size ${size} is over the ${MAX_FILE_BYTES}-byte limit`);
  }
  const problem = fileNameProblem(name);
  if (problem) throw new ProtocolError(`file-begin: ${problem}`);
}

/** Encodes one message as a complete frame (header + payload). Throws ProtocolError on an invalid message. */
export function encodeMessage(message: Message): Buffer {
  const w = new Writer();
  const code = MESSAGE_CODES[message.type];
  if (code === undefined) throw new ProtocolError(`unknown message type ${JSON.stringify(message.type)}`);
  switch (message.type) {
    case 'hello':
    case 'resume':
      // RESUME is HELLO's fields and a MAC (docs/protocol.md, "Resume").
      checkVmName(message.vmName);
      w.u32(HELLO_MAGIC, 'magic');
      w.u16(message.minVersion, 'minVersion');
      w.u16(message.maxVersion, 'maxVersion');
      if (message.minVersion > message.maxVersion) throw new ProtocolError('minVersion is above maxVersion');
      w.string(message.vmName, MAX_VM_NAME_BYTES, 'vmName');
      w.string(message.agentVersion, MAX_AGENT_VERSION_BYTES, 'agentVersion');
      w.fixed(message.agentNonce, NONCE_BYTES, 'agentNonce');
      if (message.type === 'resume') w.fixed(message.mac, MAC_BYTES, 'mac');
      break;
    case 'ticket':
      w.fixed(message.ticket, NONCE_BYTES, 'ticket');
      break;
    case 'challenge':
      w.u16(message.version, 'version');
      w.fixed(message.proxyNonce, NONCE_BYTES, 'proxyNonce');
      break;
    case 'auth':
      w.fixed(message.mac, MAC_BYTES, 'mac');
      break;
    case 'welcome':
      w.fixed(message.mac, MAC_BYTES, 'mac');
      checkInt(message.heartbeatIntervalMs, 1, 0xffffffff, 'heartbeatIntervalMs');
      w.u32(message.heartbeatIntervalMs, 'heartbeatIntervalMs');
      break;
    case 'error':
      w.u16(message.code, 'code');
      w.string(message.message, MAX_ERROR_MESSAGE_BYTES, 'message');
      break;
    case 'heartbeat':
      w.u32(message.seq, 'seq');
      break;
    case 'window-created':
      writeWindow(w, message.window);
      break;
    case 'window-destroyed':
    case 'window-mapped':
    case 'window-unmapped':
      checkWindowId(message.id, 'window id', false);
      w.u32(message.id, 'window id');
      break;
    case 'focus-changed':
      w.u32(message.id, 'window id');
      break;
    case 'window-moved':
      checkWindowId(message.id, 'window id', false);
      w.u32(message.id, 'window id');
      w.i32(message.x, 'x');
      w.i32(message.y, 'y');
      break;
    case 'window-resized':
      checkWindowId(message.id, 'window id', false);
      w.u32(message.id, 'window id');
      w.u32(message.width, 'width');
      w.u32(message.height, 'height');
      break;
    case 'title-changed':
      checkWindowId(message.id, 'window id', false);
      w.u32(message.id, 'window id');
      w.string(message.title, MAX_TITLE_BYTES, 'title');
      break;
    case 'window-list':
      if (!Array.isArray(message.windows) || message.windows.length > MAX_SNAPSHOT_WINDOWS) {
        throw new ProtocolError(`window-list carries at most ${MAX_SNAPSHOT_WINDOWS} windows`);
      }
      w.u32(message.focused, 'focused');
      w.u16(message.windows.length, 'window count');
      for (const win of message.windows) writeWindow(w, win);
      break;
    case 'clipboard-request':
      w.u32(message.requestId, 'requestId');
      break;
    case 'clipboard-data':
      w.u32(message.requestId, 'requestId');
      w.string(message.mimeType, MAX_MIME_BYTES, 'mimeType');
      w.bytes(message.data, MAX_CLIPBOARD_BYTES, 'clipboard data');
      break;
    case 'clipboard-result':
      w.u32(message.requestId, 'requestId');
      w.u8(message.status, 'status');
      w.string(message.message, MAX_ERROR_MESSAGE_BYTES, 'message');
      break;
    case 'exec': {
      const problem = execArgvProblem(message.argv);
      if (problem) throw new ProtocolError(`exec: ${problem}`);
      w.u32(message.requestId, 'requestId');
      w.u16(message.argv.length, 'argc');
      for (const arg of message.argv) w.string(arg, MAX_EXEC_ARG_BYTES, 'argv element');
      break;
    }
    case 'exec-result':
      w.u32(message.requestId, 'requestId');
      w.u8(message.status, 'status');
      w.u32(message.pid, 'pid');
      w.string(message.message, MAX_ERROR_MESSAGE_BYTES, 'message');
      break;
    case 'file-begin':
      checkInt(message.size, 0, MAX_FILE_BYTES, 'size');
      checkFileBegin(message.kind, message.size, message.name);
      w.u32(message.transferId, 'transferId');
      w.u8(message.kind, 'kind');
      w.u32(message.size, 'size');
      w.string(message.name, MAX_FILE_NAME_BYTES, 'name');
      break;
    case 'file-data':
    case 'writeback-data':
      w.u32(message.transferId, 'transferId');
      w.bytes(message.data, MAX_FILE_CHUNK_BYTES, 'data');
      break;
    case 'file-end':
    case 'writeback-end':
      w.u32(message.transferId, 'transferId');
      w.fixed(message.sha256, SHA256_BYTES, 'sha256');
      break;
    case 'file-result':
      w.u32(message.transferId, 'transferId');
      w.u8(message.status, 'status');
      w.u32(message.pid, 'pid');
      w.string(message.path, MAX_GUEST_PATH_BYTES, 'path');
      w.string(message.message, MAX_ERROR_MESSAGE_BYTES, 'message');
      break;
    case 'file-close':
      w.u32(message.transferId, 'transferId');
      break;
    case 'writeback-begin':
      checkInt(message.size, 0, MAX_FILE_BYTES, 'size');
      w.u32(message.transferId, 'transferId');
      w.u32(message.size, 'size');
      break;
    case 'exec-exited':
      checkExecEnd(message.how, message.code);
      w.u32(message.requestId, 'requestId');
      w.u8(message.how, 'how');
      w.u8(message.code, 'code');
      break;
    default: {
      const never: never = message;
      throw new ProtocolError(`unknown message ${JSON.stringify(never)}`);
    }
  }
  return w.finish(code);
}

/**
 * Decodes the payload of one frame whose type code is `code`. Throws
 * ProtocolError (and nothing else) on any malformed input.
 */
export function decodePayload(code: number, payload: Buffer): Message {
  const name = MESSAGE_NAMES.get(code);
  if (name === undefined)
    throw new ProtocolError(`unknown message type 0x${code.toString(16).padStart(2, '0')}`);
  const limit = MAX_PAYLOAD_BY_CODE.get(code) ?? MAX_FRAME_PAYLOAD;
  if (payload.length > limit) {
    throw new ProtocolError(`${name}: payload is ${payload.length} bytes; the limit is ${limit}`, 7);
  }
  const r = new Reader(payload, name);
  let message: Message;
  switch (code) {
    case MessageType.HELLO:
    case MessageType.RESUME: {
      const magic = r.u32('magic');
      if (magic !== HELLO_MAGIC) throw new BadMagicError();
      const minVersion = r.u16('minVersion');
      const maxVersion = r.u16('maxVersion');
      if (minVersion > maxVersion) throw new ProtocolError(`${name}: minVersion is above maxVersion`);
      const vmName = r.string(MAX_VM_NAME_BYTES, 'vmName');
      checkVmName(vmName);
      const hello = {
        minVersion,
        maxVersion,
        vmName,
        agentVersion: r.string(MAX_AGENT_VERSION_BYTES, 'agentVersion'),
        agentNonce: r.fixed(NONCE_BYTES, 'agentNonce'),
      };
      message =
        code === MessageType.HELLO
          ? { type: 'hello', ...hello }
          : { type: 'resume', ...hello, mac: r.fixed(MAC_BYTES, 'mac') };
      break;
    }
    case MessageType.TICKET:
      message = { type: 'ticket', ticket: r.fixed(NONCE_BYTES, 'ticket') };
      break;
    case MessageType.CHALLENGE:
      message = {
        type: 'challenge',
        version: r.u16('version'),
        proxyNonce: r.fixed(NONCE_BYTES, 'proxyNonce'),
      };
      break;
    case MessageType.AUTH:
      message = { type: 'auth', mac: r.fixed(MAC_BYTES, 'mac') };
      break;
    case MessageType.WELCOME: {
      const mac = r.fixed(MAC_BYTES, 'mac');
      const heartbeatIntervalMs = r.u32('heartbeatIntervalMs');
      if (heartbeatIntervalMs === 0) throw new ProtocolError('welcome: heartbeatIntervalMs must not be 0');
      message = { type: 'welcome', mac, heartbeatIntervalMs };
      break;
    }
    case MessageType.ERROR:
      message = { type: 'error', code: r.u16('code'), message: r.string(MAX_ERROR_MESSAGE_BYTES, 'message') };
      break;
    case MessageType.HEARTBEAT:
      message = { type: 'heartbeat', seq: r.u32('seq') };
      break;
    case MessageType.WINDOW_CREATED:
      message = { type: 'window-created', window: readWindow(r) };
      break;
    case MessageType.WINDOW_DESTROYED:
    case MessageType.WINDOW_MAPPED:
    case MessageType.WINDOW_UNMAPPED: {
      const id = r.u32('window id');
      if (id === 0) throw new ProtocolError(`${name}: window id 0 is not a window`);
      message = { type: name as 'window-destroyed' | 'window-mapped' | 'window-unmapped', id };
      break;
    }
    case MessageType.FOCUS_CHANGED:
      message = { type: 'focus-changed', id: r.u32('window id') };
      break;
    case MessageType.WINDOW_MOVED: {
      const id = r.u32('window id');
      if (id === 0) throw new ProtocolError(`${name}: window id 0 is not a window`);
      message = { type: 'window-moved', id, x: r.i32('x'), y: r.i32('y') };
      break;
    }
    case MessageType.WINDOW_RESIZED: {
      const id = r.u32('window id');
      if (id === 0) throw new ProtocolError(`${name}: window id 0 is not a window`);
      message = { type: 'window-resized', id, width: r.u32('width'), height: r.u32('height') };
      break;
    }
    case MessageType.TITLE_CHANGED: {
      const id = r.u32('window id');
      if (id === 0) throw new ProtocolError(`${name}: window id 0 is not a window`);
      message = { type: 'title-changed', id, title: r.string(MAX_TITLE_BYTES, 'title') };
      break;
    }
    case MessageType.WINDOW_LIST: {
      const focused = r.u32('focused');
      const count = r.u16('window count');
      if (count > MAX_SNAPSHOT_WINDOWS) {
        throw new ProtocolError(`window-list: ${count} windows; the limit is ${MAX_SNAPSHOT_WINDOWS}`);
      }
      const windows: WindowInfo[] = [];
      for (let i = 0; i < count; i++) windows.push(readWindow(r));
      message = { type: 'window-list', focused, windows };
      break;
    }
    case MessageType.CLIPBOARD_REQUEST:
      message = { type: 'clipboard-request', requestId: r.u32('requestId') };
      break;
    case MessageType.CLIPBOARD_DATA:
      message = {
        type: 'clipboard-data',
        requestId: r.u32('requestId'),
        mimeType: r.string(MAX_MIME_BYTES, 'mimeType'),
        data: r.bytes(MAX_CLIPBOARD_BYTES, 'clipboard data'),
      };
      break;
    case MessageType.CLIPBOARD_RESULT:
      message = {
        type: 'clipboard-result',
        requestId: r.u32('requestId'),
        status: r.u8('status'),
        message: r.string(MAX_ERROR_MESSAGE_BYTES, 'message'),
      };
      break;
    case MessageType.EXEC: {
      const requestId = r.u32('requestId');
      const argc = r.u16('argc');
      // Checked before reading: a claimed count never drives a loop past the limit.
      if (argc === 0 || argc > MAX_EXEC_ARGS) {
        throw new ProtocolError(`exec: argc is ${argc}; it must be 1 to ${MAX_EXEC_ARGS}`);
      }
      const argv: string[] = [];
      for (let i = 0; i < argc; i++) argv.push(r.string(MAX_EXEC_ARG_BYTES, `argv[${i}]`));
      const problem = execArgvProblem(argv);
      if (problem) throw new ProtocolError(`exec: ${problem}`);
      message = { type: 'exec', requestId, argv };
      break;
    }
    case MessageType.EXEC_RESULT:
      message = {
        type: 'exec-result',
        requestId: r.u32('requestId'),
        status: r.u8('status'),
        pid: r.u32('pid'),
        message: r.string(MAX_ERROR_MESSAGE_BYTES, 'message'),
      };
      break;
    case MessageType.FILE_BEGIN: {
      const transferId = r.u32('transferId');
      const kind = r.u8('kind');
      const size = r.u32('size');
      const fileName = r.string(MAX_FILE_NAME_BYTES, 'name');
      checkFileBegin(kind, size, fileName);
      message = { type: 'file-begin', transferId, kind: kind as FileKindValue, size, name: fileName };
      break;
    }
    case MessageType.FILE_DATA:
    case MessageType.WRITEBACK_DATA:
      message = {
        type: name as 'file-data' | 'writeback-data',
        transferId: r.u32('transferId'),
        data: r.bytes(MAX_FILE_CHUNK_BYTES, 'data'),
      };
      break;
    case MessageType.FILE_END:
    case MessageType.WRITEBACK_END:
      message = {
        type: name as 'file-end' | 'writeback-end',
        transferId: r.u32('transferId'),
        sha256: r.fixed(SHA256_BYTES, 'sha256'),
      };
      break;
    case MessageType.FILE_RESULT:
      message = {
        type: 'file-result',
        transferId: r.u32('transferId'),
        status: r.u8('status'),
        pid: r.u32('pid'),
        path: r.string(MAX_GUEST_PATH_BYTES, 'path'),
        message: r.string(MAX_ERROR_MESSAGE_BYTES, 'message'),
      };
      break;
    case MessageType.FILE_CLOSE:
      message = { type: 'file-close', transferId: r.u32('transferId') };
      break;
    case MessageType.WRITEBACK_BEGIN: {
      const transferId = r.u32('transferId');
      const size = r.u32('size');
      if (size > MAX_FILE_BYTES) {
        throw new ProtocolError(`writeback-begin: size ${size} is over the ${MAX_FILE_BYTES}-byte limit`);
      }
      message = { type: 'writeback-begin', transferId, size };
      break;
    }
    case MessageType.EXEC_EXITED: {
      const requestId = r.u32('requestId');
      const how = r.u8('how');
      const exitCode = r.u8('code');
      checkExecEnd(how, exitCode);
      message = { type: 'exec-exited', requestId, how, code: exitCode };
      break;
    }
    default:
      throw new ProtocolError(`unknown message type 0x${code.toString(16)}`);
  }
  r.end();
  return message;
}

/** Result of decoding: never throws past the API. */
export type DecodeResult = { ok: true; message: Message } | { ok: false; error: ProtocolError };

/** Decodes exactly one complete frame held in `frame`; anything else is an error result. */
export function decodeFrame(frame: Buffer): DecodeResult {
  try {
    if (frame.length < FRAME_HEADER_BYTES) throw new ProtocolError('frame shorter than its 5-byte header');
    const length = frame.readUInt32BE(0);
    const code = frame.readUInt8(4);
    checkDeclaredLength(code, length);
    if (frame.length !== FRAME_HEADER_BYTES + length) {
      throw new ProtocolError(
        `frame declares ${length} payload bytes but holds ${frame.length - FRAME_HEADER_BYTES}`,
      );
    }
    return { ok: true, message: decodePayload(code, frame.subarray(FRAME_HEADER_BYTES)) };
  } catch (err) {
    return { ok: false, error: asProtocolError(err) };
  }
}

/** Validates a frame header before any payload byte is read. */
export function checkDeclaredLength(code: number, length: number): void {
  const name = MESSAGE_NAMES.get(code);
  if (name === undefined)
    throw new ProtocolError(`unknown message type 0x${code.toString(16).padStart(2, '0')}`);
  if (length > MAX_FRAME_PAYLOAD) {
    throw new ProtocolError(`frame of ${length} bytes exceeds the ${MAX_FRAME_PAYLOAD}-byte limit`, 7);
  }
  const limit = MAX_PAYLOAD_BY_CODE.get(code) ?? MAX_FRAME_PAYLOAD;
  if (length > limit)
    throw new ProtocolError(`${name} frame of ${length} bytes exceeds its ${limit}-byte limit`, 7);
}

export function asProtocolError(err: unknown): ProtocolError {
  if (err instanceof ProtocolError) return err;
  // Any other exception here is a decoder bug; report it as a protocol error rather than crash the caller.
  return new ProtocolError(`malformed frame (${err instanceof Error ? err.message : String(err)})`);
}
