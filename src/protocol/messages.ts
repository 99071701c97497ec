/**
 * The window protocol's message types and limits. docs/protocol.md is the
 * normative description; this file must agree with it byte for byte.
 *
 * Only node: built-ins may be used anywhere in src/protocol: the guest agent
 * bundles this module for Node 18 inside the VM.
 */

/** Highest protocol version this code speaks, and the lowest it still accepts. */
export const PROTOCOL_VERSION = 4;
export const MIN_PROTOCOL_VERSION = 1;
/** The first version with EXEC and EXEC_RESULT (version 1 is the same protocol without them). */
export const EXEC_MIN_VERSION = 2;
/** The first version with the file messages (0x40-0x47: `open`, `copy-to-vm`, writeback). */
export const FILE_MIN_VERSION = 3;
/** The first version with EXEC_EXITED: the agent tells when a command it started has exited. */
export const EXEC_EXITED_MIN_VERSION = 3;
/** The first version with TICKET and RESUME: an agent comes back from a resume without a challenge. */
export const RESUME_MIN_VERSION = 4;

/** The TCP port agents connect to on the host. */
export const DEFAULT_PROXY_PORT = 9999;

/** `VMPW`: first four payload bytes of HELLO, so a stray client is recognised at once. */
export const HELLO_MAGIC = 0x564d5057;

/** Frame header: u32 payload length, u8 message type. */
export const FRAME_HEADER_BYTES = 5;
/** Largest payload of any frame (1 MiB). */
export const MAX_FRAME_PAYLOAD = 1024 * 1024;
/** Largest clipboard content in CLIPBOARD_DATA (256 KiB). */
export const MAX_CLIPBOARD_BYTES = 256 * 1024;
/** String limits, in UTF-8 bytes. */
export const MAX_VM_NAME_BYTES = 63;
export const MAX_AGENT_VERSION_BYTES = 64;
export const MAX_TITLE_BYTES = 1024;
export const MAX_CLASS_BYTES = 256;
export const MAX_MIME_BYTES = 255;
export const MAX_ERROR_MESSAGE_BYTES = 1024;
/** Most windows one WINDOW_LIST may carry. */
export const MAX_SNAPSHOT_WINDOWS = 512;
/** Nonces and HMAC-SHA256 tags are 32 bytes. */
export const NONCE_BYTES = 32;
export const MAC_BYTES = 32;

/** EXEC limits: how many argv elements, how long each (UTF-8 bytes), and all of them together. */
export const MAX_EXEC_ARGS = 64;
export const MAX_EXEC_ARG_BYTES = 4096;
export const MAX_EXEC_ARGV_BYTES = 16384;
/**
 * EXEC's program (argv[0]): a bare name looked up on the agent's PATH, or an
 * absolute path whose segments are such names (so no `.` or `..`), at most 255 bytes.
 */
export const EXEC_PROGRAM_PATTERN = /^(?:(?:\/[A-Za-z0-9_][A-Za-z0-9_.+-]*)+|[A-Za-z0-9_][A-Za-z0-9_.+-]*)$/;
export const MAX_EXEC_PROGRAM_BYTES = 255;
/** What no EXEC argument may contain: NUL, the other C0 controls, DEL and the C1 controls. */
// eslint-disable-next-line no-control-regex
export const EXEC_FORBIDDEN_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** Largest file `open` and `copy-to-vm` send, and the largest version a writeback returns (64 MiB). */
export const MAX_FILE_BYTES = 64 * 1024 * 1024;
/** Largest FILE_DATA / WRITEBACK_DATA chunk (256 KiB). */
export const MAX_FILE_CHUNK_BYTES = 256 * 1024;
/** Longest file name (one path segment) and longest guest path a FILE_RESULT reports, in UTF-8 bytes. */
export const MAX_FILE_NAME_BYTES = 255;
export const MAX_GUEST_PATH_BYTES = 4096;
/** SHA-256 digests in FILE_END and WRITEBACK_END. */
export const SHA256_BYTES = 32;

/** Same grammar as a VM name everywhere else (src/spec/validate.ts): a hostname label. */
export const VM_NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Wire codes of every message type. */
export const MessageType = {
  HELLO: 0x01,
  CHALLENGE: 0x02,
  AUTH: 0x03,
  WELCOME: 0x04,
  ERROR: 0x05,
  HEARTBEAT: 0x06,
  TICKET: 0x07,
  RESUME: 0x08,
  WINDOW_CREATED: 0x10,
  WINDOW_DESTROYED: 0x11,
  WINDOW_MOVED: 0x12,
  WINDOW_RESIZED: 0x13,
  FOCUS_CHANGED: 0x14,
  TITLE_CHANGED: 0x15,
  WINDOW_MAPPED: 0x16,
  WINDOW_UNMAPPED: 0x17,
  WINDOW_LIST: 0x18,
  CLIPBOARD_REQUEST: 0x20,
  CLIPBOARD_DATA: 0x21,
  CLIPBOARD_RESULT: 0x22,
  EXEC: 0x30,
  EXEC_RESULT: 0x31,
  FILE_BEGIN: 0x40,
  FILE_DATA: 0x41,
  FILE_END: 0x42,
  FILE_RESULT: 0x43,
  FILE_CLOSE: 0x44,
  WRITEBACK_BEGIN: 0x45,
  WRITEBACK_DATA: 0x46,
  WRITEBACK_END: 0x47,
  EXEC_EXITED: 0x32,
} as const;
export type MessageTypeCode = (typeof MessageType)[keyof typeof MessageType];

/** Codes carried by ERROR before the sender closes the connection. */
export const ErrorCode = {
  PROTOCOL_ERROR: 1,
  UNSUPPORTED_VERSION: 2,
  AUTH_FAILED: 3,
  HEARTBEAT_TIMEOUT: 4,
  REPLACED: 5,
  SHUTTING_DOWN: 6,
  FRAME_TOO_LARGE: 7,
  INTERNAL: 8,
} as const;
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Outcome codes of CLIPBOARD_RESULT. */
export const ClipboardStatus = {
  OK: 0,
  REFUSED: 1,
  EMPTY: 2,
  TOO_LARGE: 3,
  FAILED: 4,
} as const;
/** Outcome codes of EXEC_RESULT. */
export const ExecStatus = {
  STARTED: 0,
  REFUSED: 1,
  FAILED: 2,
} as const;
/** What a FILE_BEGIN asks the agent to do with the file. */
export const FileKind = {
  /** copy-to-vm: a new file in ~/Incoming/host/, never overwriting one. */
  COPY: 1,
  /** open: a read-only copy in a fresh directory, opened with xdg-open. */
  OPEN: 2,
  /** open --writeback: a writable copy, watched, each saved version sent back. */
  OPEN_WRITEBACK: 3,
} as const;
export type FileKindValue = (typeof FileKind)[keyof typeof FileKind];
/** Outcome codes of FILE_RESULT. */
export const FileStatus = {
  OK: 0,
  REFUSED: 1,
  FAILED: 2,
} as const;

/** How a command of EXEC_EXITED ended: its own exit (status 0-255) or a signal (its number). */
export const ExecEnd = {
  EXITED: 0,
  SIGNALLED: 1,
} as const;
export type ExecEndValue = (typeof ExecEnd)[keyof typeof ExecEnd];
export type ExecStatusValue = (typeof ExecStatus)[keyof typeof ExecStatus];

export type ClipboardStatusValue = (typeof ClipboardStatus)[keyof typeof ClipboardStatus];

/** Everything the proxy knows about one guest window (cf. Qubes' MSG_CREATE/MSG_CONFIGURE/MSG_WMNAME/MSG_WMCLASS). */
export interface WindowInfo {
  /** X11 window id in the guest; 0 is never a window. */
  id: number;
  x: number;
  y: number;
  width: number;
  height: number;
  /** X11 override-redirect (menus, tooltips): not managed by the window manager. */
  overrideRedirect: boolean;
  /** Whether the window is currently mapped (visible). */
  mapped: boolean;
  /** Parent window id, 0 for a top-level window (child of the root). */
  parent: number;
  /** WM_TRANSIENT_FOR (dialog owner), 0 for none. */
  transientFor: number;
  title: string;
  /** WM_CLASS instance and class parts. */
  wmInstance: string;
  wmClass: string;
}

export interface HelloMessage {
  type: 'hello';
  minVersion: number;
  maxVersion: number;
  vmName: string;
  agentVersion: string;
  /** 32 random bytes from the agent; the proxy's proof covers them. */
  agentNonce: Buffer;
}
export interface ChallengeMessage {
  type: 'challenge';
  /** The version the proxy chose; both sides speak it from here on. */
  version: number;
  proxyNonce: Buffer;
}
export interface AuthMessage {
  type: 'auth';
  mac: Buffer;
}
export interface WelcomeMessage {
  type: 'welcome';
  /** The proxy's own HMAC, proving it knows the secret too. */
  mac: Buffer;
  /** How often each side sends HEARTBEAT; silence for 3 intervals closes the connection. */
  heartbeatIntervalMs: number;
}
/** The proxy's nonce for the agent's next session, sent after WELCOME (version 4 on); good for one RESUME. */
export interface TicketMessage {
  type: 'ticket';
  ticket: Buffer;
}
/**
 * A HELLO and its proof in one frame, from an agent holding a ticket (version 4 on): the MAC covers the
 * ticket in place of a CHALLENGE's nonce, at the version of the session that issued it.
 */
export interface ResumeMessage {
  type: 'resume';
  minVersion: number;
  maxVersion: number;
  vmName: string;
  agentVersion: string;
  agentNonce: Buffer;
  mac: Buffer;
}
export interface ErrorMessage {
  type: 'error';
  code: number;
  message: string;
}
export interface HeartbeatMessage {
  type: 'heartbeat';
  seq: number;
}
export interface WindowCreatedMessage {
  type: 'window-created';
  window: WindowInfo;
}
export interface WindowDestroyedMessage {
  type: 'window-destroyed';
  id: number;
}
export interface WindowMovedMessage {
  type: 'window-moved';
  id: number;
  x: number;
  y: number;
}
export interface WindowResizedMessage {
  type: 'window-resized';
  id: number;
  width: number;
  height: number;
}
export interface FocusChangedMessage {
  type: 'focus-changed';
  /** 0 when no guest window has the focus. */
  id: number;
}
export interface TitleChangedMessage {
  type: 'title-changed';
  id: number;
  title: string;
}
export interface WindowMappedMessage {
  type: 'window-mapped';
  id: number;
}
export interface WindowUnmappedMessage {
  type: 'window-unmapped';
  id: number;
}
export interface WindowListMessage {
  type: 'window-list';
  /** Focused window id, 0 for none. */
  focused: number;
  windows: WindowInfo[];
}
export interface ClipboardRequestMessage {
  type: 'clipboard-request';
  requestId: number;
}
export interface ClipboardDataMessage {
  type: 'clipboard-data';
  requestId: number;
  mimeType: string;
  data: Buffer;
}
export interface ClipboardResultMessage {
  type: 'clipboard-result';
  requestId: number;
  status: number;
  message: string;
}
export interface ExecMessage {
  type: 'exec';
  requestId: number;
  /** The command, argv[0] first: never a shell string (see EXEC in docs/protocol.md). */
  argv: string[];
}
export interface ExecResultMessage {
  type: 'exec-result';
  requestId: number;
  status: number;
  /** The started process's id in the guest; 0 unless status is STARTED. */
  pid: number;
  message: string;
}
export interface ExecExitedMessage {
  type: 'exec-exited';
  /** The requestId of the EXEC that started the command (its exec id). */
  requestId: number;
  /** ExecEnd: EXITED or SIGNALLED. */
  how: number;
  /** The exit status (0-255) or the signal number (1-255). */
  code: number;
}

export interface FileBeginMessage {
  type: 'file-begin';
  transferId: number;
  kind: FileKindValue;
  /** Exactly how many bytes the FILE_DATA frames will carry (≤ MAX_FILE_BYTES). */
  size: number;
  /** The file's name in the guest: one path segment (fileNameProblem). */
  name: string;
}
export interface FileDataMessage {
  type: 'file-data';
  transferId: number;
  data: Buffer;
}
export interface FileEndMessage {
  type: 'file-end';
  transferId: number;
  /** SHA-256 of all the transfer's bytes. */
  sha256: Buffer;
}
export interface FileResultMessage {
  type: 'file-result';
  transferId: number;
  status: number;
  /** The opener's pid for OPEN and OPEN_WRITEBACK; 0 otherwise. */
  pid: number;
  /** Where the file is in the guest; empty unless status is OK. */
  path: string;
  message: string;
}
export interface FileCloseMessage {
  type: 'file-close';
  transferId: number;
}
export interface WritebackBeginMessage {
  type: 'writeback-begin';
  transferId: number;
  size: number;
}
export interface WritebackDataMessage {
  type: 'writeback-data';
  transferId: number;
  data: Buffer;
}
export interface WritebackEndMessage {
  type: 'writeback-end';
  transferId: number;
  sha256: Buffer;
}

export type Message =
  | HelloMessage
  | ChallengeMessage
  | AuthMessage
  | WelcomeMessage
  | ErrorMessage
  | HeartbeatMessage
  | TicketMessage
  | ResumeMessage
  | WindowCreatedMessage
  | WindowDestroyedMessage
  | WindowMovedMessage
  | WindowResizedMessage
  | FocusChangedMessage
  | TitleChangedMessage
  | WindowMappedMessage
  | WindowUnmappedMessage
  | WindowListMessage
  | ClipboardRequestMessage
  | ClipboardDataMessage
  | ClipboardResultMessage
  | ExecMessage
  | ExecResultMessage
  | FileBeginMessage
  | FileDataMessage
  | FileEndMessage
  | FileResultMessage
  | FileCloseMessage
  | WritebackBeginMessage
  | WritebackDataMessage
  | WritebackEndMessage
  | ExecExitedMessage;

export type MessageName = Message['type'];

/** Window events: what an agent sends after the handshake to describe its windows. */
export type WindowEventMessage =
  | WindowCreatedMessage
  | WindowDestroyedMessage
  | WindowMovedMessage
  | WindowResizedMessage
  | FocusChangedMessage
  | TitleChangedMessage
  | WindowMappedMessage
  | WindowUnmappedMessage
  | WindowListMessage;

export const WINDOW_EVENT_TYPES: ReadonlySet<MessageName> = new Set<MessageName>([
  'window-created',
  'window-destroyed',
  'window-moved',
  'window-resized',
  'focus-changed',
  'title-changed',
  'window-mapped',
  'window-unmapped',
  'window-list',
]);

export function isWindowEvent(message: Message): message is WindowEventMessage {
  return WINDOW_EVENT_TYPES.has(message.type);
}

/** Name <-> wire code. */
export const MESSAGE_CODES: Readonly<Record<MessageName, MessageTypeCode>> = {
  hello: MessageType.HELLO,
  challenge: MessageType.CHALLENGE,
  auth: MessageType.AUTH,
  welcome: MessageType.WELCOME,
  error: MessageType.ERROR,
  heartbeat: MessageType.HEARTBEAT,
  ticket: MessageType.TICKET,
  resume: MessageType.RESUME,
  'window-created': MessageType.WINDOW_CREATED,
  'window-destroyed': MessageType.WINDOW_DESTROYED,
  'window-moved': MessageType.WINDOW_MOVED,
  'window-resized': MessageType.WINDOW_RESIZED,
  'focus-changed': MessageType.FOCUS_CHANGED,
  'title-changed': MessageType.TITLE_CHANGED,
  'window-mapped': MessageType.WINDOW_MAPPED,
  'window-unmapped': MessageType.WINDOW_UNMAPPED,
  'window-list': MessageType.WINDOW_LIST,
  'clipboard-request': MessageType.CLIPBOARD_REQUEST,
  'clipboard-data': MessageType.CLIPBOARD_DATA,
  'clipboard-result': MessageType.CLIPBOARD_RESULT,
  exec: MessageType.EXEC,
  'exec-result': MessageType.EXEC_RESULT,
  'file-begin': MessageType.FILE_BEGIN,
  'file-data': MessageType.FILE_DATA,
  'file-end': MessageType.FILE_END,
  'file-result': MessageType.FILE_RESULT,
  'file-close': MessageType.FILE_CLOSE,
  'writeback-begin': MessageType.WRITEBACK_BEGIN,
  'writeback-data': MessageType.WRITEBACK_DATA,
  'writeback-end': MessageType.WRITEBACK_END,
  'exec-exited': MessageType.EXEC_EXITED,
};

/** The file messages, each only valid on a link of version FILE_MIN_VERSION or later. */
export const FILE_MESSAGE_TYPES: ReadonlySet<MessageName> = new Set<MessageName>([
  'file-begin',
  'file-data',
  'file-end',
  'file-result',
  'file-close',
  'writeback-begin',
  'writeback-data',
  'writeback-end',
]);

export const MESSAGE_NAMES: ReadonlyMap<number, MessageName> = new Map(
  Object.entries(MESSAGE_CODES).map(([name, code]) => [code, name as MessageName]),
);

/** Fixed-size part of a WindowInfo on the wire: 7 u32/i32 + 2 flag bytes + 3 u16 string lengths. */
const WINDOW_INFO_FIXED = 7 * 4 + 2 + 3 * 2;
export const MAX_WINDOW_INFO_BYTES = WINDOW_INFO_FIXED + MAX_TITLE_BYTES + 2 * MAX_CLASS_BYTES;

/**
 * Largest payload each message type can legitimately have. The frame decoder
 * rejects a header announcing more before reading (or allocating) the payload.
 */
export const MAX_PAYLOAD_BY_CODE: ReadonlyMap<number, number> = new Map<number, number>([
  [MessageType.HELLO, 4 + 2 + 2 + 2 + MAX_VM_NAME_BYTES + 2 + MAX_AGENT_VERSION_BYTES + NONCE_BYTES],
  [MessageType.CHALLENGE, 2 + NONCE_BYTES],
  [MessageType.AUTH, MAC_BYTES],
  [MessageType.WELCOME, MAC_BYTES + 4],
  [MessageType.ERROR, 2 + 2 + MAX_ERROR_MESSAGE_BYTES],
  [MessageType.HEARTBEAT, 4],
  [MessageType.TICKET, NONCE_BYTES],
  [
    MessageType.RESUME,
    4 + 2 + 2 + 2 + MAX_VM_NAME_BYTES + 2 + MAX_AGENT_VERSION_BYTES + NONCE_BYTES + MAC_BYTES,
  ],
  [MessageType.WINDOW_CREATED, MAX_WINDOW_INFO_BYTES],
  [MessageType.WINDOW_DESTROYED, 4],
  [MessageType.WINDOW_MOVED, 12],
  [MessageType.WINDOW_RESIZED, 12],
  [MessageType.FOCUS_CHANGED, 4],
  [MessageType.TITLE_CHANGED, 4 + 2 + MAX_TITLE_BYTES],
  [MessageType.WINDOW_MAPPED, 4],
  [MessageType.WINDOW_UNMAPPED, 4],
  [MessageType.WINDOW_LIST, MAX_FRAME_PAYLOAD],
  [MessageType.CLIPBOARD_REQUEST, 4],
  [MessageType.CLIPBOARD_DATA, 4 + 2 + MAX_MIME_BYTES + 4 + MAX_CLIPBOARD_BYTES],
  [MessageType.CLIPBOARD_RESULT, 4 + 1 + 2 + MAX_ERROR_MESSAGE_BYTES],
  [MessageType.EXEC, 4 + 2 + 2 * MAX_EXEC_ARGS + MAX_EXEC_ARGV_BYTES],
  [MessageType.EXEC_RESULT, 4 + 1 + 4 + 2 + MAX_ERROR_MESSAGE_BYTES],
  [MessageType.FILE_BEGIN, 4 + 1 + 4 + 2 + MAX_FILE_NAME_BYTES],
  [MessageType.FILE_DATA, 4 + 4 + MAX_FILE_CHUNK_BYTES],
  [MessageType.FILE_END, 4 + SHA256_BYTES],
  [MessageType.FILE_RESULT, 4 + 1 + 4 + 2 + MAX_GUEST_PATH_BYTES + 2 + MAX_ERROR_MESSAGE_BYTES],
  [MessageType.FILE_CLOSE, 4],
  [MessageType.WRITEBACK_BEGIN, 4 + 4],
  [MessageType.WRITEBACK_DATA, 4 + 4 + MAX_FILE_CHUNK_BYTES],
  [MessageType.WRITEBACK_END, 4 + SHA256_BYTES],
  [MessageType.EXEC_EXITED, 4 + 1 + 1],
]);
