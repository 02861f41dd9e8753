/**
 * Retained messages kept on flash across reboots, in their own FlashRing area (own ring tag),
 * encrypted at rest with a key derived from the device storage key (the audit log's), like the
 * outbound queue (src/outbound/flash-queue.ts):
 *
 *   SET   0x05 ‖ boot u32 ‖ AES-256-GCM(qos u8 ‖ topic length u16 ‖ topic ‖ payload)
 *   CLEAR 0x06 ‖ boot u32 ‖ AES-256-GCM(topic length u16 ‖ topic)
 *   SET5  0x07 ‖ boot u32 ‖ AES-256-GCM(qos u8 ‖ topic length u16 ‖ topic ‖ properties ‖ payload)
 *
 * SET5 keeps an MQTT 5 publisher's properties (user properties, content type, payload format, response
 * topic, correlation data) as the PUBLISH property list (MQTT 5.0 §2.2.2: a Variable Byte Integer
 * length, then the properties), so a v5 subscriber gets them after a reboot as before it. A message
 * with a Message Expiry Interval never comes here (the broker keeps it in RAM only).
 *
 * Nonce: ring seq u32 ‖ boot u32 ‖ "RT" ‖ 0 ‖ 1; AAD: the clear header ‖ ring seq, so a record moved,
 * altered or replayed fails authentication. Mount replays the ring in order (the last record of a topic
 * wins). A change is appended; when the ring lacks room, the oldest sector's still-live messages are
 * appended again (copied forward) and the sector is given up, so the ring never holds more than the
 * live set plus the changes since. A torn or unauthentic record is skipped and counted (`lost`): a
 * power cut loses at most the change being written, never the set.
 */
import type { Crypto, KeyStore, Random } from "../ports.js";
import { ErrorCode, PortcullisError } from "../errors.js";
import { FlashRing } from "../flash/ring.js";
import { readU32, writeU32 } from "../flash/ring-format.js";
import { storageKey } from "../audit/store.js";
import { concat, i2osp, tryUtf8, utf8 } from "../util/bytes.js";
import type { RetainedMessage } from "../mqtt/retained.js";
import type { Properties } from "../mqtt/packets.js";
import { propsLength, readProps, writeProps } from "../mqtt/props.js";
import { Reader } from "../mqtt/parse.js";

const SET = 0x05;
const CLEAR = 0x06;
const SET5 = 0x07;
/** MQTT packet type of PUBLISH: which properties the list may hold (props.ts). */
const PUBLISH = 3;
const HEAD = 1 + 4;
const TAG = 16;
/** The ring tag of the retained area (the audit log uses 0xA1, queue slots 0x10 + i). */
export const RETAINED_RING_TAG = 0x30;
/** Bytes of the retained area: 16 sectors, room for 16 KiB of live messages and their changes. */
export const RETAINED_AREA_BYTES = 16 * 4096;

export interface RetainedAtRest {
  readonly crypto: Crypto;
  readonly keys: KeyStore;
  readonly random: Random;
}

interface Live {
  readonly message: RetainedMessage;
  /** Ring seq of the record holding it. */
  ref: number;
}

export class RetainedFlash {
  readonly ring: FlashRing;
  readonly #crypto: Crypto;
  readonly #key: Uint8Array;
  readonly #boot: number;
  readonly #live = new Map<string, Live>();
  /** Records skipped at mount (torn, corrupt, unauthentic). */
  readonly lost: number;

  /**
   * Replays `ring` (already mounted). Bumps the area's boot counter before writing anything.
   * @throws the key store's errors.
   */
  constructor(ring: FlashRing, atRest: RetainedAtRest) {
    this.ring = ring;
    this.#crypto = atRest.crypto;
    const store = storageKey(atRest.keys, atRest.random);
    const prk = atRest.crypto.hkdfExtract(utf8("portcullis retained"), store);
    store.fill(0);
    this.#key = atRest.crypto.hkdfExpand(prk, utf8("retained v1"), 32);
    prk.fill(0);
    const v = atRest.keys.get("retained.boot");
    const boot = ((v && v.length === 4 ? readU32(v, 0) : 0) + 1) >>> 0;
    const b = new Uint8Array(4);
    writeU32(b, 0, boot);
    atRest.keys.set("retained.boot", b);
    this.#boot = boot;
    let lost = 0;
    for (const e of ring.entries()) {
      if (e.type === "gap") {
        lost += e.to - e.from + 1;
        continue;
      }
      if (!this._apply(e.seq, e.data)) lost++;
    }
    this.lost = lost;
  }

  /** The retained messages read back, oldest change first. */
  messages(): RetainedMessage[] {
    const out: RetainedMessage[] = [];
    for (const l of this.#live.values()) out.push(l.message);
    return out;
  }

  /**
   * Persists one change (a message stored or replaced, or a topic cleared). Resolves once durable.
   * @throws PortcullisError(Limit) when the record does not fit the ring even after compaction.
   */
  change(outcome: "stored" | "replaced" | "cleared", m: RetainedMessage): Promise<number> {
    const topic = utf8(m.topic);
    let rec: Uint8Array;
    if (outcome === "cleared") {
      if (!this.#live.has(m.topic)) return Promise.resolve(0);
      this.#live.delete(m.topic);
      rec = plain(CLEAR, concat(i2osp(topic.length, 2), topic));
    } else {
      rec = setRecord(m);
    }
    if (outcome !== "cleared") this.#live.delete(m.topic); // re-inserted last: the order is that of the changes
    const { seq, done } = this._append(rec);
    if (outcome !== "cleared") this.#live.set(m.topic, { message: m, ref: seq });
    return done;
  }

  private _append(rec: Uint8Array): { seq: number; done: Promise<number> } {
    const size = rec.length + 4 + TAG;
    if (size > this.ring.maxPayload) throw new PortcullisError(ErrorCode.Limit, `retained record of ${size} bytes exceeds ${this.ring.maxPayload}`);
    for (let guard = this.ring.sectors; !this.ring.canAppend(size) && guard > 0; guard--) this._compactOldest();
    if (!this.ring.canAppend(size)) throw new PortcullisError(ErrorCode.Limit, "retained area full");
    const seq = this.ring.nextSeq;
    return { seq, done: this.ring.append(this._reseal(rec)) };
  }

  /** Copies the oldest sector's live messages forward, then gives the sector up. */
  private _compactOldest(): void {
    const spans = this.ring.spans();
    const oldest = spans[0];
    if (oldest === undefined || spans.length < 2) return;
    for (const l of [...this.#live.values()]) {
      if (l.ref > oldest.lastSeq) continue;
      const rec = setRecord(l.message);
      if (!this.ring.canAppend(rec.length + 4 + TAG, 0)) return; // no room to copy: keep the sector
      const seq = this.ring.nextSeq;
      this.ring.append(this._reseal(rec), 0).catch(() => undefined); // a failure fails the ring: the next change reports it
      l.ref = seq;
    }
    this.ring.trimThrough(oldest.lastSeq);
  }

  private _reseal(plain: Uint8Array): Uint8Array {
    const seq = this.ring.nextSeq;
    const head = concat(plain.subarray(0, 1), i2osp(this.#boot, 4));
    return concat(head, this.#crypto.aesGcmSeal(this.#key, this._nonce(seq, this.#boot), plain.subarray(1), this._aad(head, seq)));
  }

  private _nonce(seq: number, boot: number): Uint8Array {
    const n = new Uint8Array(12);
    writeU32(n, 0, seq);
    writeU32(n, 4, boot);
    n.set([0x52, 0x54, 0, 1], 8);
    return n;
  }

  private _aad(head: Uint8Array, seq: number): Uint8Array {
    const a = new Uint8Array(head.length + 4);
    a.set(head);
    writeU32(a, head.length, seq);
    return a;
  }

  /** Applies one record at mount; false when it is unreadable. */
  private _apply(seq: number, d: Uint8Array): boolean {
    if (d.length < HEAD + TAG || (d[0] !== SET && d[0] !== CLEAR && d[0] !== SET5)) return false;
    const head = d.subarray(0, HEAD);
    const body = this.#crypto.aesGcmOpen(this.#key, this._nonce(seq, ((head[1]! << 24) | (head[2]! << 16) | (head[3]! << 8) | head[4]!) >>> 0), d.subarray(HEAD), this._aad(head, seq));
    if (body === undefined) return false;
    const off = d[0] === CLEAR ? 0 : 1;
    if (body.length < off + 2) return false;
    const n = ((body[off] ?? 0) << 8) | (body[off + 1] ?? 0);
    if (off + 2 + n > body.length) return false;
    const topic = tryUtf8(body.subarray(off + 2, off + 2 + n));
    if (topic === undefined || topic.length === 0) return false;
    this.#live.delete(topic);
    if (d[0] === CLEAR) return true;
    const qos = body[0]!;
    if (qos > 2) return false;
    let at = off + 2 + n;
    let properties: Properties | undefined;
    if (d[0] === SET5) {
      const r = new Reader();
      r.reset(body, at, body.length);
      properties = readProps(r, PUBLISH);
      if (r.err !== undefined || properties === undefined) return false;
      at = r.pos;
    }
    const payload = body.slice(at);
    if (payload.length === 0) return false;
    this.#live.set(topic, { message: properties === undefined ? { topic, payload, qos: qos as 0 | 1 | 2 } : { topic, payload, qos: qos as 0 | 1 | 2, properties }, ref: seq });
    return true;
  }
}

/** A record before sealing: type ‖ body (sealed by `_reseal` for the ring seq it gets). */
function plain(type: number, body: Uint8Array): Uint8Array {
  return concat(new Uint8Array([type]), body);
}

/** The record that stores `m`: SET, or SET5 when it has properties to keep. */
function setRecord(m: RetainedMessage): Uint8Array {
  const t = utf8(m.topic);
  const p = m.properties;
  if (p === undefined || Object.keys(p).length === 0) return plain(SET, concat(new Uint8Array([m.qos]), i2osp(t.length, 2), t, m.payload));
  const total = propsLength(p, PUBLISH);
  const list = new Uint8Array(total);
  writeProps(list, 0, p, total);
  return plain(SET5, concat(new Uint8Array([m.qos]), i2osp(t.length, 2), t, list, m.payload));
}
