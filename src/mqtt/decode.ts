/**
 * The incremental MQTT 3.1.1 decoder: a resumable header → length → body state machine (after
 * mqtt-packet's `_parseHeader`/`_parseLength`/`_parsePayload`) that accepts any chunking, emits packets
 * in order, and turns malformed input into a typed {@link DecodeError} instead of an exception.
 */
import { MAX_PACKET_BYTES, MqttError, PACKET_TYPES, type DecodeError, type Packet, type ProtocolVersion } from "./packets.js";
import { parseBody, Reader } from "./parse.js";

const EMPTY = new Uint8Array(0);

/** Fragment buffers up to this size are kept for the next packet; larger ones are released. */
const RETAINED_BUFFER_BYTES = 1024;

/** Remaining Length of the packets whose length is fixed (§3.2, §3.4–3.7, §3.11–3.14), by type number. */
const FIXED_LENGTH: readonly number[] = Object.freeze([-1, -1, 2, -1, 2, 2, 2, 2, -1, -1, -1, 2, 0, 0, 0, -1]);

/** Fixed-header flags required by §2.2.2 (PUBLISH, 3, is checked separately). */
const REQUIRED_FLAGS: readonly number[] = Object.freeze([0, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0]);

/** Checks the first byte of a packet (§2.2.1, §2.2.2, §3.3.1). */
function checkHeader(first: number, version: ProtocolVersion): DecodeError | undefined {
  const type = first >> 4;
  const flags = first & 0x0f;
  if (PACKET_TYPES[type] === undefined || (type === 15 && version !== 5)) return { code: MqttError.BadPacketType, message: `reserved packet type ${type}` };
  if (type === 3) {
    const qos = (flags >> 1) & 3;
    if (qos === 3) return { code: MqttError.BadQos, message: "PUBLISH with QoS 3 (§3.3.1.2)" };
    if (qos === 0 && flags & 8) return { code: MqttError.BadFlags, message: "DUP set on a QoS 0 PUBLISH (§3.3.1.1)" };
  } else if (flags !== REQUIRED_FLAGS[type]) {
    return { code: MqttError.BadFlags, message: `${PACKET_TYPES[type]} with fixed-header flags ${flags} (§2.2.2)` };
  }
  return undefined;
}

export interface DecoderOptions {
  /** Called for each complete packet, in order. The packet and its arrays belong to the callee. */
  readonly onPacket: (packet: Packet) => void;
  /** Largest whole packet accepted, fixed header included. Default {@link MAX_PACKET_BYTES}. */
  readonly maxPacketBytes?: number;
  /** Protocol level of the packets before a CONNECT sets it (default 4). */
  readonly version?: ProtocolVersion;
}

const HEADER = 0;
const LENGTH = 1;
const BODY = 2;

/** Decodes a byte stream into packets; see the file comment. */
export class Decoder {
  /** Packets go to `onPacket` called as a method of the options object: a long-lived owner (a session) passes itself, no closure per connection. */
  readonly #sink: DecoderOptions;
  readonly #max: number;
  readonly #reader = new Reader();
  #state = HEADER;
  #first = 0;
  #length = 0;
  #lengthBytes = 0;
  #buf: Uint8Array = EMPTY;
  #have = 0;
  #error: DecodeError | undefined;
  #stopped = false;
  /**
   * The protocol level bodies are read with: set from each CONNECT decoded (the broker side), or by the
   * owner (a client side, which only sees the CONNACK).
   */
  version: ProtocolVersion;

  /** @throws TypeError without `onPacket`; RangeError for a `maxPacketBytes` below 2 or not an integer. */
  constructor(options: DecoderOptions) {
    if (typeof options?.onPacket !== "function") throw new TypeError("onPacket required");
    const max = options.maxPacketBytes ?? MAX_PACKET_BYTES;
    if (!Number.isInteger(max) || max < 2) throw new RangeError(`bad maxPacketBytes ${max}`);
    this.#sink = options;
    this.#max = max;
    this.version = options.version ?? 4;
  }

  /** The error that stopped the decoder, if any. */
  get error(): DecodeError | undefined {
    return this.#error;
  }

  /** Stops decoding: later pushes, and the rest of the current one, are ignored. Harmless twice. */
  stop(): void {
    this.#stopped = true;
    this.#buf = EMPTY;
  }

  /**
   * Consumes `bytes` (any chunking). Returns the error when the stream is malformed; the decoder then
   * stays failed and returns the same error for every later push. Never throws for bad input.
   * @throws whatever `onPacket` throws (the packet was consumed; the rest of the chunk is not).
   */
  push(bytes: Uint8Array): DecodeError | undefined {
    const n = bytes.length;
    let i = 0;
    while (i < n && this.#error === undefined && !this.#stopped) {
      if (this.#state === HEADER) {
        this.#first = bytes[i++]!;
        const bad = checkHeader(this.#first, this.version);
        if (bad) return this._fail(bad.code, bad.message);
        this.#state = LENGTH;
        this.#length = 0;
        this.#lengthBytes = 0;
      } else if (this.#state === LENGTH) {
        const b = bytes[i++]!;
        this.#length += (b & 0x7f) * 128 ** this.#lengthBytes;
        this.#lengthBytes++;
        if (b & 0x80) {
          if (this.#lengthBytes === 4) return this._fail(MqttError.BadRemainingLength, "Remaining Length longer than 4 bytes (§2.2.3)");
          continue;
        }
        this._lengthDone();
      } else {
        const want = this.#length - this.#have;
        if (this.#have === 0 && n - i >= want) {
          this._body(bytes, i, i + want); // the whole body is in this chunk: no copy
          i += want;
        } else {
          if (this.#buf.length < this.#length) this.#buf = new Uint8Array(this.#length);
          const take = Math.min(want, n - i);
          if (take < 16) {
            // Tiny fragments (slow links, 1-byte test chunking): a loop, not a subarray view per chunk.
            for (let k = 0; k < take; k++) this.#buf[this.#have + k] = bytes[i + k]!;
          } else {
            this.#buf.set(bytes.subarray(i, i + take), this.#have);
          }
          this.#have += take;
          i += take;
          if (this.#have === this.#length) {
            this._body(this.#buf, 0, this.#length);
            if (this.#buf.length > RETAINED_BUFFER_BYTES) this.#buf = EMPTY;
          }
        }
      }
    }
    return this.#error;
  }

  private _lengthDone(): void {
    const type = this.#first >> 4;
    const total = 1 + this.#lengthBytes + this.#length;
    if (total > this.#max) {
      this._fail(MqttError.TooLarge, `packet of ${total} bytes exceeds the limit of ${this.#max}`);
    } else if (FIXED_LENGTH[type]! >= 0 && FIXED_LENGTH[type] !== this.#length && (this.version !== 5 || type === 12 || type === 13 || (type !== 14 && this.#length < 2))) {
      this._fail(MqttError.BadLength, `${PACKET_TYPES[type]} with Remaining Length ${this.#length}`);
    } else if (this.#length === 0) {
      this._body(EMPTY, 0, 0);
    } else {
      this.#state = BODY;
      this.#have = 0;
    }
  }

  private _body(buf: Uint8Array, start: number, end: number): void {
    const r = this.#reader;
    r.reset(buf, start, end);
    const packet = parseBody(r, this.#first >> 4, this.#first & 0x0f, this.version);
    if (r.err === undefined && r.pos !== r.end) r.fail(MqttError.BadLength, "bytes left after the last field");
    const err = r.err;
    r.reset(EMPTY, 0, 0);
    this.#state = HEADER;
    this.#have = 0;
    if (err !== undefined || packet === undefined) {
      this._fail(err?.code ?? MqttError.BadLength, err?.message ?? "unparsable packet");
      return;
    }
    if (packet.cmd === "connect") this.version = packet.version ?? 4;
    this.#sink.onPacket(packet);
  }

  private _fail(code: MqttError, message: string): DecodeError {
    this.#error = { code, message };
    this.#buf = EMPTY;
    return this.#error;
  }
}
