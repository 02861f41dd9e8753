/**
 * MQTT 5 properties (OASIS MQTT 5.0 §2.2.2): the variable byte integer, every property identifier with
 * its type and the packets it may appear in, and their decoding and encoding. Malformed bytes are
 * `MqttError.BadLength`/`BadUtf8`/`BadRemainingLength` (reason 0x81); a duplicate, a property in the
 * wrong packet or a value out of range is `MqttError.BadProperty` (reason 0x82, §2.2.2.2).
 */
import { MqttError, type Properties } from "./packets.js";
import type { Reader } from "./parse.js";
import { utf8Length, writeUtf8 } from "./utf8.js";

const BYTE = 1;
const U16 = 2;
const U32 = 3;
const VBI = 4;
const STR = 5;
const BIN = 6;
const PAIR = 7;

/** Pseudo packet type of the will properties in CONNECT (0 is reserved as a packet type). */
export const WILL = 0;

const P = 1 << 3; // PUBLISH
const W = 1 << WILL;
const C = 1 << 1; // CONNECT
const CA = 1 << 2; // CONNACK
const ACKS = (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7); // PUBACK..PUBCOMP
const SA = 1 << 9;
const UA = 1 << 11;
const D = 1 << 14;
const AU = 1 << 15;
const S = 1 << 8;
const ALL = 0xffff;

/** id → [name, type, packets (bit per type number), 0/1 only]. Indexed by identifier; holes are undefined. */
type Entry = readonly [keyof Properties, number, number, boolean];
const TABLE: readonly (Entry | undefined)[] = (() => {
  const t: (Entry | undefined)[] = [];
  t[0x01] = ["payloadFormatIndicator", BYTE, P | W, true];
  t[0x02] = ["messageExpiryInterval", U32, P | W, false];
  t[0x03] = ["contentType", STR, P | W, false];
  t[0x08] = ["responseTopic", STR, P | W, false];
  t[0x09] = ["correlationData", BIN, P | W, false];
  t[0x0b] = ["subscriptionIdentifier", VBI, P | S, false];
  t[0x11] = ["sessionExpiryInterval", U32, C | CA | D, false];
  t[0x12] = ["assignedClientIdentifier", STR, CA, false];
  t[0x13] = ["serverKeepAlive", U16, CA, false];
  t[0x15] = ["authenticationMethod", STR, C | CA | AU, false];
  t[0x16] = ["authenticationData", BIN, C | CA | AU, false];
  t[0x17] = ["requestProblemInformation", BYTE, C, true];
  t[0x18] = ["willDelayInterval", U32, W, false];
  t[0x19] = ["requestResponseInformation", BYTE, C, true];
  t[0x1a] = ["responseInformation", STR, CA, false];
  t[0x1c] = ["serverReference", STR, CA | D, false];
  t[0x1f] = ["reasonString", STR, CA | ACKS | SA | UA | D | AU, false];
  t[0x21] = ["receiveMaximum", U16, C | CA, false];
  t[0x22] = ["topicAliasMaximum", U16, C | CA, false];
  t[0x23] = ["topicAlias", U16, P, false];
  t[0x24] = ["maximumQoS", BYTE, CA, true];
  t[0x25] = ["retainAvailable", BYTE, CA, true];
  t[0x26] = ["userProperties", PAIR, ALL, false];
  t[0x27] = ["maximumPacketSize", U32, C | CA, false];
  t[0x28] = ["wildcardSubscriptionAvailable", BYTE, CA, true];
  t[0x29] = ["subscriptionIdentifiersAvailable", BYTE, CA, true];
  t[0x2a] = ["sharedSubscriptionAvailable", BYTE, CA, true];
  return Object.freeze(t);
})();

/** Property name → [identifier, entry] (for the encoder, which walks only the properties present). */
const BY_NAME: Readonly<Record<string, readonly [number, Entry]>> = Object.freeze(
  Object.fromEntries(TABLE.flatMap((e, id) => (e === undefined ? [] : [[e[0], [id, e] as const]]))),
);

/** Largest value of a variable byte integer (§1.5.5). */
export const MAX_VBI = 268435455;

/** Bytes of the variable byte integer `n` (§1.5.5). */
export function vbiLength(n: number): number {
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4;
}

/** Reads a variable byte integer (§1.5.5): at most 4 bytes, else malformed. */
export function readVbi(r: Reader): number {
  let n = 0;
  for (let i = 0; i < 4; i++) {
    const b = r.u8();
    n += (b & 0x7f) * 128 ** i;
    if ((b & 0x80) === 0) return n;
  }
  r.fail(MqttError.BadRemainingLength, "variable byte integer longer than 4 bytes (§1.5.5)");
  return 0;
}

export function writeVbi(buf: Uint8Array, pos: number, n: number): number {
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    buf[pos++] = b;
  } while (n > 0);
  return pos;
}

/**
 * Reads a property list (its length first) allowed in packet `type` (or {@link WILL}). Returns
 * undefined for an empty list or after a failure (then `r.err` is set).
 */
export function readProps(r: Reader, type: number): Properties | undefined {
  const len = readVbi(r);
  if (r.err) return undefined;
  if (len === 0) return undefined;
  const end = r.pos + len;
  if (end > r.end) return r.fail(MqttError.BadLength, "properties run past the packet"), undefined;
  const out: Record<string, unknown> = {};
  const outerEnd = r.end;
  r.end = end;
  while (r.pos < end && r.err === undefined) {
    const id = readVbi(r);
    const e = TABLE[id];
    if (e === undefined) {
      r.fail(MqttError.BadProperty, `unknown property 0x${id.toString(16)} (§2.2.2.2)`);
      break;
    }
    const [name, kind, mask, flag] = e;
    if ((mask & (1 << type)) === 0) {
      r.fail(MqttError.BadProperty, `property ${name} not allowed here (§2.2.2.2)`);
      break;
    }
    let v: unknown;
    switch (kind) {
      case BYTE: v = r.u8(); break;
      case U16: v = r.u16(); break;
      case U32: v = r.u16() * 65536 + r.u16(); break;
      case VBI: v = readVbi(r); break;
      case STR: v = r.str(); break;
      case BIN: v = r.bin(); break;
      default: v = [r.str(), r.str()];
    }
    if (r.err) break;
    if (flag && v !== 0 && v !== 1) r.fail(MqttError.BadProperty, `${name} must be 0 or 1`);
    else if ((name === "receiveMaximum" || name === "maximumPacketSize" || name === "subscriptionIdentifier") && v === 0) r.fail(MqttError.BadProperty, `${name} 0`);
    else if (kind === PAIR) ((out.userProperties ??= []) as [string, string][]).push(v as [string, string]);
    else if (name === "subscriptionIdentifier" && type === 3) ((out.subscriptionIdentifier ??= []) as number[]).push(v as number);
    else if (out[name] !== undefined) r.fail(MqttError.BadProperty, `${name} twice (§2.2.2.2)`);
    else out[name] = v;
  }
  r.end = outerEnd;
  if (r.err) return undefined;
  if (r.pos !== end) return r.fail(MqttError.BadLength, "property runs past its list"), undefined;
  return out as Properties;
}

function strBytes(s: string, what: string): number {
  const n = utf8Length(s);
  if (n < 0 || n > 0xffff) throw new RangeError(`${what} is not an MQTT string`);
  return n + 2;
}

function valueBytes(kind: number, v: unknown, name: string): number {
  switch (kind) {
    case BYTE: return 1;
    case U16: return 2;
    case U32: return 4;
    case VBI: return vbiLength(v as number);
    case STR: return strBytes(v as string, name);
    case BIN:
      if ((v as Uint8Array).length > 0xffff) throw new RangeError(`${name} longer than 65535 bytes`);
      return 2 + (v as Uint8Array).length;
    default: {
      const [k, val] = v as readonly [string, string];
      return strBytes(k, name) + strBytes(val, name);
    }
  }
}

function checkValue(kind: number, v: unknown, name: string, flag: boolean): void {
  const max = kind === BYTE ? (flag ? 1 : 2) : kind === U16 ? 0xffff : kind === U32 ? 0xffffffff : kind === VBI ? MAX_VBI : -1;
  if (max >= 0 && (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max)) throw new RangeError(`bad ${name} ${String(v)}`);
}

/**
 * Bytes of the property list `p` (its length prefix included), validating it for packet `type`.
 * @throws RangeError for a property not allowed in `type`, or a value out of range.
 */
export function propsLength(p: Properties | undefined, type: number): number {
  if (p === undefined) return 1;
  let n = 0;
  for (const key in p) {
    const found = BY_NAME[key];
    if (found === undefined) throw new RangeError(`unknown property ${key}`);
    const [name, kind, mask, flag] = found[1];
    const v = p[name];
    if (v === undefined) continue;
    if ((mask & (1 << type)) === 0) throw new RangeError(`property ${name} not allowed in packet type ${type}`);
    const list = kind === PAIR || (name === "subscriptionIdentifier" && Array.isArray(v)) ? (v as readonly unknown[]) : [v];
    for (const item of list) {
      checkValue(kind, item, name, flag);
      n += 1 + valueBytes(kind, item, name);
    }
  }
  return vbiLength(n) + n;
}

/** Writes the property list `p` (validated by {@link propsLength}) at `pos`; returns the position after it. */
export function writeProps(buf: Uint8Array, pos: number, p: Properties | undefined, total: number): number {
  let k = 1;
  while (vbiLength(total - k) !== k) k++;
  pos = writeVbi(buf, pos, total - k);
  if (p === undefined) return pos;
  for (const key in p) {
    const [id, e] = BY_NAME[key]!;
    const [name, kind] = e;
    const v = p[name];
    if (v === undefined) continue;
    const list = kind === PAIR || (name === "subscriptionIdentifier" && Array.isArray(v)) ? (v as readonly unknown[]) : [v];
    for (const item of list) {
      buf[pos++] = id;
      switch (kind) {
        case BYTE: buf[pos++] = item as number; break;
        case U16: buf[pos++] = (item as number) >> 8; buf[pos++] = (item as number) & 0xff; break;
        case U32: {
          const x = item as number;
          buf[pos++] = Math.floor(x / 0x1000000) & 0xff; buf[pos++] = (x >> 16) & 0xff; buf[pos++] = (x >> 8) & 0xff; buf[pos++] = x & 0xff;
          break;
        }
        case VBI: pos = writeVbi(buf, pos, item as number); break;
        case STR: pos = writeStr(buf, pos, item as string); break;
        case BIN: {
          const b = item as Uint8Array;
          buf[pos++] = b.length >> 8; buf[pos++] = b.length & 0xff; buf.set(b, pos); pos += b.length;
          break;
        }
        default: {
          const [k, val] = item as readonly [string, string];
          pos = writeStr(buf, writeStr(buf, pos, k), val);
        }
      }
    }
  }
  return pos;
}

/** Writes a UTF-8 string with its two-byte length (§1.5.4); returns the position after it. */
export function writeStr(buf: Uint8Array, pos: number, s: string): number {
  const end = writeUtf8(buf, pos + 2, s);
  const n = end - pos - 2;
  buf[pos] = n >> 8;
  buf[pos + 1] = n & 0xff;
  return end;
}
