/** The MQTT 3.1.1 / 5 / 3.1 generator: one packet to one exactly-sized byte array, refusing what the decoder would refuse. */
import { MAX_REMAINING_LENGTH, SUBACK_FAILURE, type Packet, type ProtocolVersion, type QoS } from "./packets.js";
import { propsLength, writeProps, writeStr, writeVbi, WILL } from "./props.js";
import { isValidTopicFilter, isValidTopicName } from "./topic.js";
import { utf8Length, writeUtf8 } from "./utf8.js";

const TYPE_NUMBER = Object.freeze({
  connect: 1,
  connack: 2,
  publish: 3,
  puback: 4,
  pubrec: 5,
  pubrel: 6,
  pubcomp: 7,
  subscribe: 8,
  suback: 9,
  unsubscribe: 10,
  unsuback: 11,
  pingreq: 12,
  pingresp: 13,
  disconnect: 14,
  auth: 15,
} as const);

/** Bytes the variable-length encoding of `n` takes (§2.2.3). */
export function remainingLengthBytes(n: number): number {
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4;
}

/** Writes the Remaining Length `n` at `pos` (§2.2.3, a variable byte integer); returns the position after it. */
export const writeRemainingLength: (buf: Uint8Array, pos: number, n: number) => number = writeVbi;

function strLen(s: string, what: string): number {
  const n = utf8Length(s);
  if (n < 0) throw new RangeError(`${what} is not an MQTT string (lone surrogate or U+0000, §1.5.3)`);
  if (n > 0xffff) throw new RangeError(`${what} longer than 65535 bytes`);
  return n + 2;
}

function binLen(b: Uint8Array, what: string): number {
  if (b.length > 0xffff) throw new RangeError(`${what} longer than 65535 bytes`);
  return b.length + 2;
}

function checkId(id: number | undefined): number {
  if (id === undefined || !Number.isInteger(id) || id < 1 || id > 0xffff) throw new RangeError(`bad packet id ${id}`);
  return id;
}

function checkQos(q: number, what: string): QoS {
  if (q !== 0 && q !== 1 && q !== 2) throw new RangeError(`bad ${what} QoS ${q}`);
  return q;
}

function topicLen(t: string, filter: boolean): number {
  if (!(filter ? isValidTopicFilter(t) : isValidTopicName(t))) throw new RangeError(`bad topic ${filter ? "filter" : "name"} "${t}"`);
  return strLen(t, "topic");
}

/** Whether an MQTT 5 ack can leave out its reason code and properties (§3.4.2.1). */
function shortAck(p: { readonly reasonCode?: number; readonly properties?: unknown }): boolean {
  return (p.reasonCode === undefined || p.reasonCode === 0) && p.properties === undefined;
}

function checkReason(code: number | undefined): void {
  if (code !== undefined && (!Number.isInteger(code) || code < 0 || code > 0xff)) throw new RangeError(`bad reason code ${code}`);
}

/** Remaining Length of `p`, validating it on the way. */
function bodyLength(p: Packet, v: ProtocolVersion): number {
  const v5 = v === 5;
  switch (p.cmd) {
    case "connect": {
      if (p.keepalive < 0 || p.keepalive > 0xffff || !Number.isInteger(p.keepalive)) throw new RangeError("bad keepalive");
      if (p.password !== undefined && p.username === undefined && !v5) throw new RangeError("password without username (§3.1.2.9)");
      let n = (v === 3 ? 8 : 6) + 1 + 1 + 2 + strLen(p.clientId, "client id") + (v5 ? propsLength(p.properties, 1) : 0);
      if (p.will) {
        checkQos(p.will.qos, "will");
        n += topicLen(p.will.topic, false) + binLen(p.will.payload, "will payload") + (v5 ? propsLength(p.will.properties, WILL) : 0);
      }
      if (p.username !== undefined) n += strLen(p.username, "username");
      if (p.password !== undefined) n += binLen(p.password, "password");
      return n;
    }
    case "connack":
      if (!Number.isInteger(p.returnCode) || p.returnCode < 0 || p.returnCode > (v5 ? 0xff : 5)) throw new RangeError("bad CONNACK code");
      return 2 + (v5 ? propsLength(p.properties, 2) : 0);
    case "publish": {
      checkQos(p.qos, "PUBLISH");
      if (p.qos === 0 && p.dup) throw new RangeError("DUP on QoS 0 (§3.3.1.1)");
      if (p.qos === 0 && p.packetId !== undefined) throw new RangeError("packet id on QoS 0 (§2.3.1)");
      if (p.qos > 0) checkId(p.packetId);
      const topic = v5 && p.topic === "" && p.properties?.topicAlias !== undefined ? 2 : topicLen(p.topic, false);
      return topic + (p.qos > 0 ? 2 : 0) + p.payload.length + (v5 ? propsLength(p.properties, 3) : 0);
    }
    case "puback":
    case "pubrec":
    case "pubrel":
    case "pubcomp":
      checkId(p.packetId);
      checkReason(p.reasonCode);
      if (!v5 || shortAck(p)) return 2;
      return 3 + (p.properties === undefined ? 0 : propsLength(p.properties, TYPE_NUMBER[p.cmd]));
    case "unsuback":
      checkId(p.packetId);
      if (!v5) return 2;
      for (const c of p.reasonCodes ?? []) checkReason(c);
      return 2 + propsLength(p.properties, 11) + (p.reasonCodes?.length ?? 0);
    case "disconnect":
    case "auth":
      checkReason(p.reasonCode);
      if (!v5) {
        if (p.cmd === "auth") throw new RangeError("AUTH is MQTT 5 only");
        return 0;
      }
      if (shortAck(p)) return 0;
      return 1 + (p.properties === undefined ? 0 : propsLength(p.properties, TYPE_NUMBER[p.cmd]));
    case "subscribe": {
      checkId(p.packetId);
      if (p.subscriptions.length === 0) throw new RangeError("SUBSCRIBE without a filter (§3.8.3)");
      let n = 2 + (v5 ? propsLength(p.properties, 8) : 0);
      for (const s of p.subscriptions) {
        checkQos(s.qos, "requested");
        n += topicLen(s.filter, true) + 1;
      }
      return n;
    }
    case "suback":
      checkId(p.packetId);
      if (p.granted.length === 0) throw new RangeError("SUBACK without a code (§3.9.3)");
      for (const g of p.granted) if (v5 ? g > 2 && (g < 0x80 || g > 0xff) : g !== SUBACK_FAILURE && checkQos(g, "granted") < 0) throw new RangeError(`bad SUBACK code ${g}`);
      return 2 + p.granted.length + (v5 ? propsLength(p.properties, 9) : 0);
    case "unsubscribe": {
      checkId(p.packetId);
      if (p.filters.length === 0) throw new RangeError("UNSUBSCRIBE without a filter (§3.10.3)");
      let n = 2 + (v5 ? propsLength(p.properties, 10) : 0);
      for (const f of p.filters) n += topicLen(f, true);
      return n;
    }
    default:
      return 0;
  }
}


function writeBin(buf: Uint8Array, pos: number, b: Uint8Array): number {
  buf[pos] = b.length >> 8;
  buf[pos + 1] = b.length & 0xff;
  buf.set(b, pos + 2);
  return pos + 2 + b.length;
}

function write16(buf: Uint8Array, pos: number, v: number): number {
  buf[pos] = v >> 8;
  buf[pos + 1] = v & 0xff;
  return pos + 2;
}

/**
 * Encodes one packet for protocol level `version` (a CONNECT carries its own; default 4).
 * @throws RangeError when the packet is not valid at that level (bad packet id, QoS, topic, string,
 * property, or a packet larger than the Remaining Length allows): the encoder never emits what a
 * decoder must refuse.
 */
export function encode(p: Packet, version: ProtocolVersion = 4): Uint8Array {
  const v = p.cmd === "connect" ? (p.version ?? 4) : version;
  const v5 = v === 5;
  const length = bodyLength(p, v);
  if (length > MAX_REMAINING_LENGTH) throw new RangeError(`packet body of ${length} bytes exceeds ${MAX_REMAINING_LENGTH}`);
  const buf = new Uint8Array(1 + remainingLengthBytes(length) + length);
  let flags = 0;
  if (p.cmd === "publish") flags = (p.dup ? 8 : 0) | (p.qos << 1) | (p.retain ? 1 : 0);
  else if (p.cmd === "pubrel" || p.cmd === "subscribe" || p.cmd === "unsubscribe") flags = 2;
  buf[0] = (TYPE_NUMBER[p.cmd] << 4) | flags;
  let pos = writeRemainingLength(buf, 1, length);
  switch (p.cmd) {
    case "connect": {
      pos = writeStr(buf, pos, v === 3 ? "MQIsdp" : "MQTT");
      buf[pos++] = v;
      let cf = p.cleanSession ? 0x02 : 0;
      if (p.will) cf |= 0x04 | (p.will.qos << 3) | (p.will.retain ? 0x20 : 0);
      if (p.password !== undefined) cf |= 0x40;
      if (p.username !== undefined) cf |= 0x80;
      buf[pos++] = cf;
      pos = write16(buf, pos, p.keepalive);
      if (v5) pos = writeProps(buf, pos, p.properties, propsLength(p.properties, 1));
      pos = writeStr(buf, pos, p.clientId);
      if (p.will) {
        if (v5) pos = writeProps(buf, pos, p.will.properties, propsLength(p.will.properties, WILL));
        pos = writeBin(buf, writeStr(buf, pos, p.will.topic), p.will.payload);
      }
      if (p.username !== undefined) pos = writeStr(buf, pos, p.username);
      if (p.password !== undefined) pos = writeBin(buf, pos, p.password);
      break;
    }
    case "connack":
      buf[pos++] = p.sessionPresent ? 1 : 0;
      buf[pos++] = p.returnCode;
      if (v5) writeProps(buf, pos, p.properties, propsLength(p.properties, 2));
      break;
    case "publish":
      pos = writeStr(buf, pos, p.topic);
      if (p.qos > 0) pos = write16(buf, pos, p.packetId!);
      if (v5) pos = writeProps(buf, pos, p.properties, propsLength(p.properties, 3));
      buf.set(p.payload, pos);
      break;
    case "puback":
    case "pubrec":
    case "pubrel":
    case "pubcomp":
      pos = write16(buf, pos, p.packetId);
      if (v5 && !shortAck(p)) {
        buf[pos++] = p.reasonCode ?? 0;
        if (p.properties !== undefined) writeProps(buf, pos, p.properties, propsLength(p.properties, TYPE_NUMBER[p.cmd]));
      }
      break;
    case "unsuback":
      pos = write16(buf, pos, p.packetId);
      if (v5) {
        pos = writeProps(buf, pos, p.properties, propsLength(p.properties, 11));
        for (const c of p.reasonCodes ?? []) buf[pos++] = c;
      }
      break;
    case "disconnect":
    case "auth":
      if (v5 && !shortAck(p)) {
        buf[pos++] = p.reasonCode ?? 0;
        if (p.properties !== undefined) writeProps(buf, pos, p.properties, propsLength(p.properties, TYPE_NUMBER[p.cmd]));
      }
      break;
    case "subscribe":
      pos = write16(buf, pos, p.packetId);
      if (v5) pos = writeProps(buf, pos, p.properties, propsLength(p.properties, 8));
      for (const s of p.subscriptions) {
        pos = writeStr(buf, pos, s.filter);
        buf[pos++] = s.qos | (v5 ? (s.nl ? 4 : 0) | (s.rap ? 8 : 0) | ((s.rh ?? 0) << 4) : 0);
      }
      break;
    case "suback":
      pos = write16(buf, pos, p.packetId);
      if (v5) pos = writeProps(buf, pos, p.properties, propsLength(p.properties, 9));
      for (const g of p.granted) buf[pos++] = g;
      break;
    case "unsubscribe":
      pos = write16(buf, pos, p.packetId);
      if (v5) pos = writeProps(buf, pos, p.properties, propsLength(p.properties, 10));
      for (const f of p.filters) pos = writeStr(buf, pos, f);
      break;
    default:
      break;
  }
  return buf;
}
