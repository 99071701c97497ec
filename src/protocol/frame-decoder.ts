import {
  asProtocolError,
  checkDeclaredLength,
  decodePayload,
  ProtocolError,
  type DecodeResult,
} from './codec.js';
import { FRAME_HEADER_BYTES } from './messages.js';

/**
 * Turns an arbitrarily chunked byte stream into messages.
 *
 * The header is validated (known type, length within the type's limit) as soon
 * as its 5 bytes arrive, before any payload is buffered, so a lying length
 * never makes it wait for or allocate more than the type's limit. After the
 * first error the stream cannot be resynchronised: the decoder stays failed
 * and the caller closes the connection.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failure: ProtocolError | undefined;

  /** Bytes held waiting for the rest of a frame (bounded by the largest legal frame). */
  get pendingBytes(): number {
    return this.buffered;
  }

  get failed(): ProtocolError | undefined {
    return this.failure;
  }

  /**
   * Feeds bytes; returns every message completed by them, in order. An error
   * result is always last, and later calls return nothing.
   */
  push(chunk: Uint8Array): DecodeResult[] {
    if (this.failure) return [];
    if (chunk.length === 0) return [];
    this.chunks.push(
      Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length),
    );
    this.buffered += chunk.length;
    const results: DecodeResult[] = [];
    try {
      this.drain(results);
    } catch (err) {
      this.fail(asProtocolError(err), results);
    }
    return results;
  }

  /** Call at end of stream: a partial frame left over is an error. */
  end(): DecodeResult[] {
    if (this.failure || this.buffered === 0) return [];
    const results: DecodeResult[] = [];
    this.fail(new ProtocolError(`connection ended inside a frame (${this.buffered} bytes pending)`), results);
    return results;
  }

  private fail(error: ProtocolError, results: DecodeResult[]): void {
    this.failure = error;
    this.chunks = [];
    this.buffered = 0;
    results.push({ ok: false, error });
  }

  private drain(results: DecodeResult[]): void {
    while (this.buffered >= FRAME_HEADER_BYTES) {
      const header = this.peek(FRAME_HEADER_BYTES);
      const length = header.readUInt32BE(0);
      const code = header.readUInt8(4);
      checkDeclaredLength(code, length);
      const total = FRAME_HEADER_BYTES + length;
      if (this.buffered < total) return;
      const frame = this.take(total);
      results.push({ ok: true, message: decodePayload(code, frame.subarray(FRAME_HEADER_BYTES)) });
    }
  }

  /** The first n buffered bytes, joining chunks only as far as needed. */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first;
    const joined = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [joined];
    return joined;
  }

  private take(n: number): Buffer {
    let first = this.chunks[0]!;
    if (first.length < n) {
      first = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [first];
    }
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}
