/**
 * The incremental MQTT 3.1.1 decoder: a resumable header → length → body state machine (after
 * mqtt-packet's `_parseHeader`/`_parseLength`/`_parsePayload`) that accepts any chunking, emits packets
 * in order, and turns malformed input into a typed {@link DecodeError} instead of an exception.
 */
import {
  MAX_PACKET_BYTES,
  MqttError,
  PACKET_TYPES,
  PROTOCOL_LEVEL,
  SUBACK_FAILURE,
  type ConnackCode,
  type DecodeError,
  type Packet,
  type QoS,
  type Subscription,
  type Will,
} from "./packets.js";
import { decodeUtf8 } from "./utf8.js";
import { isValidTopicFilter, isValidTopicName } from "./topic.js";

const EMPTY = new Uint8Array(0);

/** Fragment buffers up to this size are kept for the next packet; larger ones are released. */
const RETAINED_BUFFER_BYTES = 1024;

/** Remaining Length of the packets whose length is fixed (§3.2, §3.4–3.7, §3.11–3.14), by type number. */
const FIXED_LENGTH: readonly number[] = [-1, -1, 2, -1, 2, 2, 2, 2, -1, -1, -1, 2, 0, 0, 0, -1];

/** Fixed-header flags required by §2.2.2 (PUBLISH, 3, is checked separately). */
const REQUIRED_FLAGS: readonly number[] = [0, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0];

/**
 * A plain Uint8Array copy of `buf[start, end)`. Not `buf.slice`: a host may pass a subclass whose
 * `slice` returns a view (node's Buffer does), and the input is only valid during `push`.
 */
function copy(buf: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  out.set(buf.subarray(start, end));
  return out;
}

/** A cursor over one packet body. Failures set `err` once and park the cursor at the end. */
class Reader {
  buf: Uint8Array = EMPTY;
  pos = 0;
  end = 0;
  err: DecodeError | undefined = undefined;

  reset(buf: Uint8Array, pos: number, end: number): void {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    this.err = undefined;
  }
  fail(code: MqttError, message: string): void {
    if (this.err === undefined) this.err = { code, message };
    this.pos = this.end;
  }
  u8(): number {
    if (this.pos >= this.end) {
      this.fail(MqttError.BadLength, "packet ends inside a field");
      return 0;
    }
    return this.buf[this.pos++]!;
  }
  u16(): number {
    return (this.u8() << 8) | this.u8();
  }
  packetId(): number {
    const id = this.u16();
    if (id === 0 && this.err === undefined) this.fail(MqttError.BadPacketId, "packet identifier 0 (§2.3.1)");
    return id;
  }
  #span(): number {
    const n = this.u16();
    if (this.pos + n > this.end) {
      this.fail(MqttError.BadLength, "string or binary field runs past the packet");
      return -1;
    }
    return n;
  }
  str(): string {
    const n = this.#span();
    if (n < 0) return "";
    const s = decodeUtf8(this.buf, this.pos, this.pos + n);
    this.pos += n;
    if (s === undefined) {
      this.fail(MqttError.BadUtf8, "string is not well-formed UTF-8 or contains U+0000 (§1.5.3)");
      return "";
    }
    return s;
  }
  /** A copy: the input array is only valid during `push`. */
  bin(): Uint8Array {
    const n = this.#span();
    if (n < 0) return EMPTY;
    this.pos += n;
    return copy(this.buf, this.pos - n, this.pos);
  }
  rest(): Uint8Array {
    const out = copy(this.buf, this.pos, this.end);
    this.pos = this.end;
    return out;
  }
  topicName(): string {
    const t = this.str();
    if (this.err === undefined && !isValidTopicName(t)) this.fail(MqttError.BadTopic, "topic name empty or with a wildcard (§4.7)");
    return t;
  }
  topicFilter(): string {
    const f = this.str();
    if (this.err === undefined && !isValidTopicFilter(f)) this.fail(MqttError.BadTopic, "malformed topic filter (§4.7.1)");
    return f;
  }
}

function parseConnect(r: Reader): Packet | undefined {
  const name = r.str();
  const level = r.u8();
  if (r.err) return undefined;
  if (name === "MQIsdp") return r.fail(MqttError.UnsupportedProtocolLevel, `MQTT 3.1 (level ${level})`), undefined;
  if (name !== "MQTT") return r.fail(MqttError.BadProtocolName, "protocol name is not MQTT (§3.1.2.1)"), undefined;
  if (level !== PROTOCOL_LEVEL) return r.fail(MqttError.UnsupportedProtocolLevel, `protocol level ${level}, only 4`), undefined;
  const flags = r.u8();
  const willFlag = (flags & 0x04) !== 0;
  const willQos = (flags >> 3) & 3;
  const willRetain = (flags & 0x20) !== 0;
  const hasPassword = (flags & 0x40) !== 0;
  const hasUsername = (flags & 0x80) !== 0;
  if (flags & 0x01) r.fail(MqttError.BadConnectFlags, "reserved connect flag set (§3.1.2.3)");
  else if (!willFlag && (willQos !== 0 || willRetain)) r.fail(MqttError.BadConnectFlags, "will QoS/retain without will flag (§3.1.2.6)");
  else if (willQos === 3) r.fail(MqttError.BadQos, "will QoS 3 (§3.1.2.6)");
  else if (hasPassword && !hasUsername) r.fail(MqttError.BadConnectFlags, "password without username (§3.1.2.9)");
  const keepalive = r.u16();
  const clientId = r.str();
  let will: Will | undefined;
  if (willFlag) {
    const topic = r.topicName();
    will = { topic, payload: r.bin(), qos: willQos as QoS, retain: willRetain };
  }
  const username = hasUsername ? r.str() : undefined;
  const password = hasPassword ? r.bin() : undefined;
  if (r.err) return undefined;
  return {
    cmd: "connect",
    clientId,
    cleanSession: (flags & 0x02) !== 0,
    keepalive,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(will !== undefined ? { will } : {}),
  };
}

function parsePublish(r: Reader, flags: number): Packet | undefined {
  const qos = ((flags >> 1) & 3) as QoS;
  const topic = r.topicName();
  const packetId = qos > 0 ? r.packetId() : 0;
  const payload = r.rest();
  if (r.err) return undefined;
  const base = { cmd: "publish", topic, payload, qos, retain: (flags & 1) !== 0, dup: (flags & 8) !== 0 } as const;
  return qos > 0 ? { ...base, packetId } : base;
}

function parseSubscribe(r: Reader): Packet | undefined {
  const packetId = r.packetId();
  const subscriptions: Subscription[] = [];
  while (r.pos < r.end) {
    const filter = r.topicFilter();
    const options = r.u8();
    if (options & 0xfc) r.fail(MqttError.BadFlags, "reserved subscription option bits set (§3.8.3.1)");
    else if ((options & 3) === 3) r.fail(MqttError.BadQos, "requested QoS 3 (§3.8.3.1)");
    subscriptions.push({ filter, qos: (options & 3) as QoS });
  }
  if (r.err) return undefined;
  if (subscriptions.length === 0) return r.fail(MqttError.NoTopics, "SUBSCRIBE without a topic filter (§3.8.3)"), undefined;
  return { cmd: "subscribe", packetId, subscriptions };
}

function parseUnsubscribe(r: Reader): Packet | undefined {
  const packetId = r.packetId();
  const filters: string[] = [];
  while (r.pos < r.end) filters.push(r.topicFilter());
  if (r.err) return undefined;
  if (filters.length === 0) return r.fail(MqttError.NoTopics, "UNSUBSCRIBE without a topic filter (§3.10.3)"), undefined;
  return { cmd: "unsubscribe", packetId, filters };
}

function parseSuback(r: Reader): Packet | undefined {
  const packetId = r.packetId();
  const granted: (QoS | typeof SUBACK_FAILURE)[] = [];
  while (r.pos < r.end) {
    const code = r.u8();
    if (code > 2 && code !== SUBACK_FAILURE) r.fail(MqttError.BadReturnCode, `SUBACK return code ${code} (§3.9.3)`);
    granted.push(code as QoS);
  }
  if (r.err) return undefined;
  if (granted.length === 0) return r.fail(MqttError.NoTopics, "SUBACK without a return code (§3.9.3)"), undefined;
  return { cmd: "suback", packetId, granted };
}

function parseConnack(r: Reader): Packet | undefined {
  const flags = r.u8();
  const code = r.u8();
  if (flags & 0xfe) r.fail(MqttError.BadFlags, "reserved CONNACK flag bits set (§3.2.2.1)");
  else if (code > 5) r.fail(MqttError.BadReturnCode, `CONNACK return code ${code} (§3.2.2.3)`);
  if (r.err) return undefined;
  return { cmd: "connack", sessionPresent: flags === 1, returnCode: code as ConnackCode };
}

function parseBody(r: Reader, type: number, flags: number): Packet | undefined {
  const cmd = PACKET_TYPES[type]!;
  switch (cmd) {
    case "connect":
      return parseConnect(r);
    case "connack":
      return parseConnack(r);
    case "publish":
      return parsePublish(r, flags);
    case "subscribe":
      return parseSubscribe(r);
    case "suback":
      return parseSuback(r);
    case "unsubscribe":
      return parseUnsubscribe(r);
    case "puback":
    case "pubrec":
    case "pubrel":
    case "pubcomp":
    case "unsuback": {
      const packetId = r.packetId();
      return r.err ? undefined : { cmd, packetId };
    }
    default:
      return { cmd };
  }
}

/** Checks the first byte of a packet (§2.2.1, §2.2.2, §3.3.1). */
function checkHeader(first: number): DecodeError | undefined {
  const type = first >> 4;
  const flags = first & 0x0f;
  if (PACKET_TYPES[type] === undefined) return { code: MqttError.BadPacketType, message: `reserved packet type ${type}` };
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
}

const HEADER = 0;
const LENGTH = 1;
const BODY = 2;

/** Decodes a byte stream into packets; see the file comment. */
export class Decoder {
  readonly #onPacket: (packet: Packet) => void;
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

  /** @throws TypeError without `onPacket`; RangeError for a `maxPacketBytes` below 2 or not an integer. */
  constructor(options: DecoderOptions) {
    if (typeof options?.onPacket !== "function") throw new TypeError("onPacket required");
    const max = options.maxPacketBytes ?? MAX_PACKET_BYTES;
    if (!Number.isInteger(max) || max < 2) throw new RangeError(`bad maxPacketBytes ${max}`);
    this.#onPacket = options.onPacket;
    this.#max = max;
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
   */
  push(bytes: Uint8Array): DecodeError | undefined {
    const n = bytes.length;
    let i = 0;
    while (i < n && this.#error === undefined && !this.#stopped) {
      if (this.#state === HEADER) {
        this.#first = bytes[i++]!;
        const bad = checkHeader(this.#first);
        if (bad) return this.#fail(bad.code, bad.message);
        this.#state = LENGTH;
        this.#length = 0;
        this.#lengthBytes = 0;
      } else if (this.#state === LENGTH) {
        const b = bytes[i++]!;
        this.#length += (b & 0x7f) * 128 ** this.#lengthBytes;
        this.#lengthBytes++;
        if (b & 0x80) {
          if (this.#lengthBytes === 4) return this.#fail(MqttError.BadRemainingLength, "Remaining Length longer than 4 bytes (§2.2.3)");
          continue;
        }
        this.#lengthDone();
      } else {
        const want = this.#length - this.#have;
        if (this.#have === 0 && n - i >= want) {
          this.#body(bytes, i, i + want); // the whole body is in this chunk: no copy
          i += want;
        } else {
          if (this.#buf.length < this.#length) this.#buf = new Uint8Array(this.#length);
          const take = Math.min(want, n - i);
          this.#buf.set(bytes.subarray(i, i + take), this.#have);
          this.#have += take;
          i += take;
          if (this.#have === this.#length) {
            this.#body(this.#buf, 0, this.#length);
            if (this.#buf.length > RETAINED_BUFFER_BYTES) this.#buf = EMPTY;
          }
        }
      }
    }
    return this.#error;
  }

  #lengthDone(): void {
    const type = this.#first >> 4;
    const total = 1 + this.#lengthBytes + this.#length;
    if (total > this.#max) {
      this.#fail(MqttError.TooLarge, `packet of ${total} bytes exceeds the limit of ${this.#max}`);
    } else if (FIXED_LENGTH[type]! >= 0 && FIXED_LENGTH[type] !== this.#length) {
      this.#fail(MqttError.BadLength, `${PACKET_TYPES[type]} with Remaining Length ${this.#length}`);
    } else if (this.#length === 0) {
      this.#body(EMPTY, 0, 0);
    } else {
      this.#state = BODY;
      this.#have = 0;
    }
  }

  #body(buf: Uint8Array, start: number, end: number): void {
    const r = this.#reader;
    r.reset(buf, start, end);
    const packet = parseBody(r, this.#first >> 4, this.#first & 0x0f);
    if (r.err === undefined && r.pos !== r.end) r.fail(MqttError.BadLength, "bytes left after the last field");
    const err = r.err;
    r.reset(EMPTY, 0, 0);
    this.#state = HEADER;
    this.#have = 0;
    if (err !== undefined || packet === undefined) {
      this.#fail(err?.code ?? MqttError.BadLength, err?.message ?? "unparsable packet");
      return;
    }
    this.#onPacket(packet);
  }

  #fail(code: MqttError, message: string): DecodeError {
    this.#error = { code, message };
    this.#buf = EMPTY;
    return this.#error;
  }
}
