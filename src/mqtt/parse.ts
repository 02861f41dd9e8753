/** Packet bodies, field by field (MQTT 3.1.1 §3.1–§3.14; MQTT 5.0 §3.1–§3.15 when `version` is 5), for the incremental decoder in `decode.ts`. */
import {
  MqttError,
  PACKET_TYPES,
  SUBACK_FAILURE,
  type DecodeError,
  type Packet,
  type Properties,
  type ProtocolVersion,
  type QoS,
  type Subscription,
  type Will,
} from "./packets.js";
import { decodeUtf8 } from "./utf8.js";
import { isValidTopicFilterBytes, isValidTopicNameBytes } from "./topic.js";
import { readProps, WILL } from "./props.js";

const EMPTY = new Uint8Array(0);

/**
 * A plain Uint8Array copy of `buf[start, end)`. Not `buf.slice`: a host may pass a subclass whose
 * `slice` returns a view (a Node buffer's does), and the input is only valid during `push`.
 */
function copy(buf: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  out.set(buf.subarray(start, end));
  return out;
}

/** A cursor over one packet body. Failures set `err` once and park the cursor at the end. */
export class Reader {
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
  private _span(): number {
    const n = this.u16();
    if (this.pos + n > this.end) {
      this.fail(MqttError.BadLength, "string or binary field runs past the packet");
      return -1;
    }
    return n;
  }
  str(): string {
    const n = this._span();
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
    const n = this._span();
    if (n < 0) return EMPTY;
    this.pos += n;
    return copy(this.buf, this.pos - n, this.pos);
  }
  rest(): Uint8Array {
    const out = copy(this.buf, this.pos, this.end);
    this.pos = this.end;
    return out;
  }
  /** A string checked on its bytes first (a topic name or filter, §4.7.1), so a bad one costs no string. */
  private _topic(filter: boolean): string {
    const at = this.pos + 2;
    const n = this.pos + 2 <= this.end ? (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]! : 0;
    if (at + n <= this.end && !(filter ? isValidTopicFilterBytes : isValidTopicNameBytes)(this.buf, at, at + n)) {
      this.fail(MqttError.BadTopic, filter ? "malformed topic filter (§4.7.1)" : "topic name empty or with a wildcard (§4.7)");
      return "";
    }
    return this.str();
  }
  topicName(): string {
    return this._topic(false);
  }
  topicFilter(): string {
    return this._topic(true);
  }
}

function parseConnect(r: Reader): Packet | undefined {
  const name = r.str();
  const level = r.u8();
  if (r.err) return undefined;
  if (name === "MQIsdp") {
    if (level !== 3) return r.fail(MqttError.UnsupportedProtocolLevel, `MQIsdp with level ${level}, only 3`), undefined;
  } else if (name !== "MQTT") {
    return r.fail(MqttError.BadProtocolName, "protocol name is not MQTT (§3.1.2.1)"), undefined;
  } else if (level !== 4 && level !== 5) {
    return r.fail(MqttError.UnsupportedProtocolLevel, `protocol level ${level}, only 4 or 5`), undefined;
  }
  const version = level as ProtocolVersion;
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
  const properties = version === 5 ? readProps(r, 1) : undefined;
  const clientId = r.str();
  let will: Will | undefined;
  if (willFlag) {
    const wp = version === 5 ? readProps(r, WILL) : undefined;
    const topic = r.topicName();
    will = { topic, payload: r.bin(), qos: willQos as QoS, retain: willRetain, ...(wp !== undefined ? { properties: wp } : {}) };
  }
  const username = hasUsername ? r.str() : undefined;
  const password = hasPassword ? r.bin() : undefined;
  if (r.err) return undefined;
  return {
    cmd: "connect",
    ...(version !== 4 ? { version } : {}),
    ...(properties !== undefined ? { properties } : {}),
    clientId,
    cleanSession: (flags & 0x02) !== 0,
    keepalive,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(will !== undefined ? { will } : {}),
  };
}

function parsePublish(r: Reader, flags: number, version: ProtocolVersion): Packet | undefined {
  const qos = ((flags >> 1) & 3) as QoS;
  if (version === 5) return parsePublish5(r, flags, qos);
  const topic = r.topicName();
  const packetId = qos > 0 ? r.packetId() : 0;
  const payload = r.rest();
  if (r.err) return undefined;
  const retain = (flags & 1) !== 0;
  // Two literals rather than a spread: this is the per-message path.
  if (qos === 0) return { cmd: "publish", topic, payload, qos, retain, dup: false };
  return { cmd: "publish", topic, payload, qos, retain, dup: (flags & 8) !== 0, packetId };
}

/**
 * MQTT 5 PUBLISH (§3.3.2): properties after the packet id; an empty topic is allowed only with a Topic
 * Alias (the session resolves it, §3.3.2.3.4).
 */
function parsePublish5(r: Reader, flags: number, qos: QoS): Packet | undefined {
  const empty = r.pos + 2 <= r.end && r.buf[r.pos] === 0 && r.buf[r.pos + 1] === 0;
  const topic = empty ? (r.pos += 2, "") : r.topicName();
  const packetId = qos > 0 ? r.packetId() : 0;
  const properties = readProps(r, 3);
  const payload = r.rest();
  if (r.err) return undefined;
  if (empty && properties?.topicAlias === undefined) return r.fail(MqttError.BadTopic, "empty topic without a topic alias (§3.3.2.1)"), undefined;
  const retain = (flags & 1) !== 0;
  const base = { cmd: "publish" as const, topic, payload, qos, retain, ...(properties !== undefined ? { properties } : {}) };
  if (qos === 0) return { ...base, dup: false };
  return { ...base, dup: (flags & 8) !== 0, packetId };
}

function parseSubscribe(r: Reader, version: ProtocolVersion): Packet | undefined {
  const packetId = r.packetId();
  const properties = version === 5 ? readProps(r, 8) : undefined;
  const subscriptions: Subscription[] = [];
  const reserved = version === 5 ? 0xc0 : 0xfc;
  while (r.pos < r.end) {
    const filter = r.topicFilter();
    const options = r.u8();
    if (options & reserved) r.fail(MqttError.BadFlags, "reserved subscription option bits set (§3.8.3.1)");
    else if ((options & 3) === 3) r.fail(MqttError.BadQos, "requested QoS 3 (§3.8.3.1)");
    else if ((options & 0x30) === 0x30) r.fail(MqttError.BadFlags, "retain handling 3 (MQTT 5.0 §3.8.3.1)");
    if (version === 5) {
      subscriptions.push({ filter, qos: (options & 3) as QoS, nl: (options & 4) !== 0, rap: (options & 8) !== 0, rh: ((options >> 4) & 3) as 0 | 1 | 2 });
    } else {
      subscriptions.push({ filter, qos: (options & 3) as QoS });
    }
  }
  if (r.err) return undefined;
  if (subscriptions.length === 0) return r.fail(MqttError.NoTopics, "SUBSCRIBE without a topic filter (§3.8.3)"), undefined;
  return { cmd: "subscribe", packetId, subscriptions, ...(properties !== undefined ? { properties } : {}) };
}

function parseUnsubscribe(r: Reader, version: ProtocolVersion): Packet | undefined {
  const packetId = r.packetId();
  const properties = version === 5 ? readProps(r, 10) : undefined;
  const filters: string[] = [];
  while (r.pos < r.end) filters.push(r.topicFilter());
  if (r.err) return undefined;
  if (filters.length === 0) return r.fail(MqttError.NoTopics, "UNSUBSCRIBE without a topic filter (§3.10.3)"), undefined;
  return { cmd: "unsubscribe", packetId, filters, ...(properties !== undefined ? { properties } : {}) };
}

function parseSuback(r: Reader, version: ProtocolVersion): Packet | undefined {
  const packetId = r.packetId();
  const properties = version === 5 ? readProps(r, 9) : undefined;
  const granted: number[] = [];
  while (r.pos < r.end) {
    const code = r.u8();
    if (code > 2 && (version === 5 ? code < 0x80 : code !== SUBACK_FAILURE)) r.fail(MqttError.BadReturnCode, `SUBACK return code ${code} (§3.9.3)`);
    granted.push(code);
  }
  if (r.err) return undefined;
  if (granted.length === 0) return r.fail(MqttError.NoTopics, "SUBACK without a return code (§3.9.3)"), undefined;
  return { cmd: "suback", packetId, granted, ...(properties !== undefined ? { properties } : {}) };
}

function parseConnack(r: Reader, version: ProtocolVersion): Packet | undefined {
  const flags = r.u8();
  const code = r.u8();
  const properties = version === 5 ? readProps(r, 2) : undefined;
  if (flags & 0xfe) r.fail(MqttError.BadFlags, "reserved CONNACK flag bits set (§3.2.2.1)");
  else if (version === 5 ? code !== 0 && code < 0x80 : code > 5) r.fail(MqttError.BadReturnCode, `CONNACK return code ${code} (§3.2.2.3)`);
  if (r.err) return undefined;
  return { cmd: "connack", sessionPresent: flags === 1, returnCode: code, ...(properties !== undefined ? { properties } : {}) };
}

/** MQTT 5 PUBACK/PUBREC/PUBREL/PUBCOMP (§3.4.2): reason code and properties may be left out. */
function parseAck5(r: Reader, cmd: "puback" | "pubrec" | "pubrel" | "pubcomp", type: number): Packet | undefined {
  const packetId = r.packetId();
  if (r.err) return undefined;
  if (r.pos === r.end) return { cmd, packetId };
  const reasonCode = r.u8();
  const properties = r.pos < r.end ? readProps(r, type) : undefined;
  if (r.err) return undefined;
  return { cmd, packetId, reasonCode, ...(properties !== undefined ? { properties } : {}) };
}

/** MQTT 5 DISCONNECT and AUTH (§3.14.2, §3.15.2): an empty body means reason 0x00. */
function parseReasoned(r: Reader, cmd: "disconnect" | "auth", type: number): Packet | undefined {
  if (r.pos === r.end) return { cmd };
  const reasonCode = r.u8();
  const properties = r.pos < r.end ? readProps(r, type) : undefined;
  if (r.err) return undefined;
  return { cmd, reasonCode, ...(properties !== undefined ? { properties } : {}) };
}

export function parseBody(r: Reader, type: number, flags: number, version: ProtocolVersion = 4): Packet | undefined {
  const cmd = PACKET_TYPES[type]!;
  switch (cmd) {
    case "connect":
      return parseConnect(r);
    case "connack":
      return parseConnack(r, version);
    case "publish":
      return parsePublish(r, flags, version);
    case "subscribe":
      return parseSubscribe(r, version);
    case "suback":
      return parseSuback(r, version);
    case "unsubscribe":
      return parseUnsubscribe(r, version);
    case "puback":
    case "pubrec":
    case "pubrel":
    case "pubcomp":
      if (version === 5) return parseAck5(r, cmd, type);
      return parseId(r, cmd);
    case "unsuback": {
      if (version !== 5) return parseId(r, cmd);
      const packetId = r.packetId();
      const properties = readProps(r, 11);
      const reasonCodes: number[] = [];
      while (r.pos < r.end) reasonCodes.push(r.u8());
      if (r.err) return undefined;
      return { cmd, packetId, reasonCodes, ...(properties !== undefined ? { properties } : {}) };
    }
    case "disconnect":
    case "auth":
      return version === 5 ? parseReasoned(r, cmd, type) : { cmd };
    default:
      return { cmd };
  }
}

function parseId(r: Reader, cmd: "puback" | "pubrec" | "pubrel" | "pubcomp" | "unsuback"): Packet | undefined {
  const packetId = r.packetId();
  return r.err ? undefined : { cmd, packetId };
}

/** Properties a broker may pass on with an application message (MQTT 5.0 §3.3.4): not the alias or subscription ids. */
export function forwardable(p: Properties | undefined): Properties | undefined {
  if (p === undefined || (p.topicAlias === undefined && p.subscriptionIdentifier === undefined)) return p;
  const { topicAlias: _a, subscriptionIdentifier: _s, ...rest } = p;
  for (const _ in rest) return rest;
  return undefined;
}

