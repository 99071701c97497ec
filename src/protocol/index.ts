/**
 * The window protocol shared by the guest agent and the host proxy. Uses only
 * node: built-ins so the agent can bundle it for Node 18. See docs/protocol.md.
 */
export * from './messages.js';
export {
  ProtocolError,
  BadMagicError,
  encodeMessage,
  decodePayload,
  decodeFrame,
  checkDeclaredLength,
  asProtocolError,
  execArgvProblem,
  fileNameProblem,
  type DecodeResult,
} from './codec.js';
export { FrameDecoder } from './frame-decoder.js';
export { heartbeatSchedule, type HeartbeatSchedule } from './heartbeat.js';
export * from './auth.js';
export {
  AgentClient,
  encodeHello,
  prepareResume,
  type AgentClientOptions,
  type AgentClientEvents,
  type PreparedResume,
} from './agent-client.js';
