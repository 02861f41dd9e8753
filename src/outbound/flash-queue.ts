/**
 * The durable outbound queue on the audit log's flash ring (src/flash/ring.ts), in its own region and
 * with its own ring tag, encrypted at rest (SPEC.md "Queue records", format 2):
 *
 *   ITEM     0x03 ‖ seq u64 ‖ enqueuedAt u64 (ms) ‖ boot u32 ‖ AES-256-GCM(topic length u16 ‖ topic ‖ payload)
 *   CONSUMED 0x04 ‖ through u64 ‖ cause u8 (0 ack, 1 overflow, 2 ttl, 3 purge, 4 corrupt) ‖ boot u32 ‖ GCM tag
 *
 * The key is derived from the device storage key (the audit log's) per slot; the nonce is the ring
 * seq ‖ the queue's boot counter ‖ "PQ" ‖ slot ‖ 1, and the clear header, slot and ring seq are the
 * AAD, so an item moved, altered or replayed fails authentication. A message is durable once its ITEM
 * is programmed and gone once a CONSUMED record at or above its seq is. Mount replays the ring: what
 * was queued and not consumed comes back; a torn, corrupt or unauthentic record is reported lost.
 */
import type { Clock, Crypto, KeyStore, Random } from "../ports.js";
import { ErrorCode, PortcullisError } from "../errors.js";
import { FlashRing, ringFull } from "../flash/ring.js";
import { readU32, writeU32 } from "../flash/ring-format.js";
import { storageKey } from "../audit/store.js";
import { concat, i2osp, tryUtf8, utf8 } from "../util/bytes.js";
import { QueueBase, REF, type DropCause, type IndexEntry, type QueueDrop, type QueueItem, type QueueTerms } from "./queue.js";
import { NumberRows } from "../util/number-rows.js";

const ITEM = 0x03;
const CONSUMED = 0x04;
const CAUSES: readonly (DropCause | "ack")[] = Object.freeze(["ack", "overflow", "ttl", "purge", "corrupt"]);
/** Clear header of an ITEM: type, seq, enqueuedAt, boot. */
const ITEM_HEAD = 1 + 8 + 8 + 4;
const TAG = 16;
/** Bytes an ITEM adds to topic + payload: header, topic length, GCM tag. */
const ITEM_OVERHEAD = ITEM_HEAD + 2 + TAG;
const CONSUMED_HEAD = 1 + 8 + 1 + 4;
const CONSUMED_SIZE = CONSUMED_HEAD + TAG;

/** What the queue needs to keep its items encrypted at rest. */
export interface QueueAtRest {
  readonly crypto: Crypto;
  /** Holds the storage key (shared with the audit log) and the queue's boot counter. */
  readonly keys: KeyStore;
  /** Creates the storage key on first use. */
  readonly random: Random;
  /** The queue's slot (0–255): part of its key, nonces and AAD. */
  readonly slot: number;
  /** Drops found outside push/expire/purge (an item that fails authentication when read back). */
  readonly onDrop?: (d: QueueDrop) => void;
  /**
   * Bytes of sealed records written in this boot kept in RAM until sent, so the uplink does not read
   * each one back from flash (a sector read and scan, and a flush of the ring's group commit). Default
   * DEFAULT_RECENT_BYTES; 0 reads every message back from flash.
   */
  readonly recentBytes?: number;
}

/** RAM for the sealed records not yet sent (about a window of 200-byte messages on the Node board). */
export const DEFAULT_RECENT_BYTES = 16 * 1024;

function u64(b: Uint8Array, at: number): number {
  let v = 0;
  for (let i = at; i < at + 8; i++) v = v * 256 + (b[i] ?? 0);
  return v;
}

function be32(b: Uint8Array, at: number): number {
  return (((b[at] ?? 0) << 24) | ((b[at + 1] ?? 0) << 16) | ((b[at + 2] ?? 0) << 8) | (b[at + 3] ?? 0)) >>> 0;
}

/** The slot's key, nonces and boot counter. */
class Sealer {
  readonly boot: number;
  readonly #crypto: Crypto;
  readonly #key: Uint8Array;
  readonly #slot: number;

  constructor(a: QueueAtRest) {
    if (!Number.isInteger(a.slot) || a.slot < 0 || a.slot > 255) throw new PortcullisError(ErrorCode.BadOption, "queue slot must be 0..255");
    this.#crypto = a.crypto;
    this.#slot = a.slot;
    const store = storageKey(a.keys, a.random);
    const prk = a.crypto.hkdfExtract(utf8("portcullis queue"), store);
    store.fill(0);
    this.#key = a.crypto.hkdfExpand(prk, utf8(`queue v2 slot ${a.slot}`), 32);
    prk.fill(0);
    // A boot counter of its own, bumped before anything is written: a torn record's ring seq is
    // reused only after a remount, so (key, nonce) never repeats (NIST SP 800-38D §8.2.1).
    const name = `queue.boot.${a.slot}`;
    const v = a.keys.get(name);
    const boot = ((v && v.length === 4 ? readU32(v, 0) : 0) + 1) >>> 0;
    const b = new Uint8Array(4);
    writeU32(b, 0, boot);
    a.keys.set(name, b);
    this.boot = boot;
  }

  private _nonce(ringSeq: number, boot: number): Uint8Array {
    const n = new Uint8Array(12);
    writeU32(n, 0, ringSeq);
    writeU32(n, 4, boot);
    n.set([0x50, 0x51, this.#slot, 1], 8);
    return n;
  }

  private _aad(head: Uint8Array, ringSeq: number): Uint8Array {
    const a = new Uint8Array(head.length + 5);
    a.set(head);
    a[head.length] = this.#slot;
    writeU32(a, head.length + 1, ringSeq);
    return a;
  }

  /** The record for ring seq `ringSeq`: `head` (ending in this boot's counter) ‖ sealed body. */
  seal(ringSeq: number, head: Uint8Array, body: Uint8Array): Uint8Array {
    return concat(head, this.#crypto.aesGcmSeal(this.#key, this._nonce(ringSeq, this.boot), body, this._aad(head, ringSeq)));
  }

  /** The body of a record whose clear header is `headLength` bytes, or undefined when unauthentic. */
  open(ringSeq: number, d: Uint8Array, headLength: number): Uint8Array | undefined {
    if (d.length < headLength + TAG) return undefined;
    const head = d.subarray(0, headLength);
    return this.#crypto.aesGcmOpen(this.#key, this._nonce(ringSeq, be32(head, headLength - 4)), d.subarray(headLength), this._aad(head, ringSeq));
  }
}

/**
 * Replays a mounted ring into the queue's starting state. Records the ring could not read back or
 * that fail authentication are reported once as a "corrupt" drop, unless a later consumption record
 * covers them (they were dropped before); `count` is in ring records and `fromSeq`/`toSeq` give the
 * ring's sequence range, since the message numbers inside are unreadable.
 */
function replay(ring: FlashRing, s: Sealer): { items: NumberRows; nextSeq: number; lost?: QueueDrop } {
  const items = new NumberRows(4);
  let through = 0;
  let nextSeq = 1;
  /** Unreadable ring records, each with the lowest message seq it could have held. */
  const bad: { from: number; to: number; minSeq: number }[] = [];
  for (const e of ring.entries()) {
    if (e.type === "gap") {
      bad.push({ from: e.from, to: e.to, minSeq: nextSeq });
      continue;
    }
    const d = e.data;
    if (d[0] === ITEM && s.open(e.seq, d, ITEM_HEAD) !== undefined) {
      const seq = u64(d, 1);
      items.push(seq, d.length - ITEM_OVERHEAD, u64(d, 9), e.seq);
      nextSeq = Math.max(nextSeq, seq + 1);
    } else if (d[0] === CONSUMED && d.length === CONSUMED_SIZE && s.open(e.seq, d, CONSUMED_HEAD) !== undefined) {
      through = Math.max(through, u64(d, 1));
      nextSeq = Math.max(nextSeq, through + 1);
    } else bad.push({ from: e.seq, to: e.seq, minSeq: nextSeq });
  }
  items.keepAbove(through);
  const lost = bad.filter((b) => b.minSeq > through);
  const first = lost[0];
  const last = lost[lost.length - 1];
  if (!first || !last) return { items, nextSeq };
  let count = 0;
  for (const b of lost) count += b.to - b.from + 1;
  return { items, nextSeq, lost: { cause: "corrupt", count, bytes: 0, fromSeq: first.from, toSeq: last.to } };
}

/** A queue that survives reboot and power loss, on a FlashRing, encrypted at rest. */
export class FlashQueue extends QueueBase {
  readonly ring: FlashRing;
  readonly #s: Sealer;
  /** Ring seq of the newest ITEM on flash (replayed or stored); 0 when none. */
  #newestRef: number;
  /** Sealed records written in this boot and not yet handed out, by ring seq (oldest first). */
  readonly #recent = new Map<number, Uint8Array>();
  #recentBytes = 0;
  readonly #recentMax: number;

  /**
   * Replays `ring` (already mounted) and continues from it. Bumps the slot's boot counter.
   * @throws PortcullisError(BadOption) on bad terms or slot; the key store's errors.
   */
  constructor(ring: FlashRing, terms: QueueTerms, clock: Clock, atRest: QueueAtRest) {
    const s = new Sealer(atRest);
    const r = replay(ring, s);
    super(terms, clock, r, atRest.onDrop);
    this.ring = ring;
    this.#s = s;
    this.#newestRef = r.items.length > 0 ? r.items.get(r.items.length - 1, REF) : 0;
    this.#recentMax = atRest.recentBytes ?? DEFAULT_RECENT_BYTES;
  }

  protected maxItem(): number {
    return this.ring.maxPayload - ITEM_OVERHEAD;
  }

  /**
   * Room now, and a free sector left after it: a consumption record must always find room, and only
   * consumption records may take the last free sector (the trim after them frees sectors again).
   */
  protected fits(size: number): boolean {
    return this.ring.canAppend(ITEM_OVERHEAD + size) && this.ring.freeSectors >= 1;
  }

  /** After consuming everything before `nextKept`, would whole sectors free up enough room? */
  protected override fitsAfterDropping(nextKept: IndexEntry | undefined, size: number): boolean {
    if (this.fits(size)) return true;
    const keepFrom = nextKept?.ref ?? this.ring.nextSeq;
    const spans = this.ring.spans();
    let freed = 0;
    for (let i = 0; i < spans.length - 1; i++) if ((spans[i]?.lastSeq ?? Infinity) < keepFrom) freed++;
    // canAppend with keep = every sector is true only when the head itself has room.
    if (!this.ring.canAppend(CONSUMED_SIZE, this.ring.sectors)) return this.ring.freeSectors - 1 + freed >= 1;
    return this.ring.freeSectors + freed - 1 >= 1;
  }

  protected store(item: QueueItem): { ref: number; durable: Promise<void> } {
    const topic = utf8(item.topic);
    const head = concat(new Uint8Array([ITEM]), i2osp(item.seq, 8), i2osp(item.enqueuedAt, 8), i2osp(this.#s.boot, 4));
    const ref = this.ring.nextSeq;
    const rec = this.#s.seal(ref, head, concat(i2osp(topic.length, 2), topic, item.payload));
    const durable = this.ring.append(rec);
    // Written (or waiting for the ring's group commit, which a trim flushes first): no trim may
    // retire the sector that holds it, so the sequence continues past it after a remount.
    this.#newestRef = ref;
    if (rec.length <= this.#recentMax) {
      this.#recent.set(ref, rec);
      this.#recentBytes += rec.length;
      for (const [k, v] of this.#recent) {
        if (this.#recentBytes <= this.#recentMax) break;
        this.#recent.delete(k);
        this.#recentBytes -= v.length;
      }
    }
    return { ref, durable: durable.then(() => undefined) };
  }

  protected load(e: IndexEntry): { topic: string; payload: Uint8Array } | undefined {
    // Handed out once from RAM (the record as sealed); a resend reads it back from flash.
    const cached = this.#recent.get(e.ref);
    if (cached) {
      this.#recent.delete(e.ref);
      this.#recentBytes -= cached.length;
    }
    const d = cached ?? this.ring.read(e.ref);
    if (!d || d[0] !== ITEM || u64(d, 1) !== e.seq) return undefined;
    const body = this.#s.open(e.ref, d, ITEM_HEAD);
    if (!body || body.length < 2) return undefined;
    const topicLen = ((body[0] ?? 0) << 8) | (body[1] ?? 0);
    if (2 + topicLen > body.length) return undefined;
    const topic = tryUtf8(body.subarray(2, 2 + topicLen));
    return topic === undefined ? undefined : { topic, payload: body.slice(2 + topicLen) };
  }

  protected consume(through: number, cause: DropCause | "ack", next: IndexEntry | undefined): Promise<void> {
    const code = CAUSES.indexOf(cause);
    if (code < 0) throw new PortcullisError(ErrorCode.BadOption, `unknown cause ${cause}`);
    const keepFrom = next?.ref ?? this.ring.nextSeq;
    for (const [k, v] of this.#recent) {
      if (k >= keepFrom) break;
      this.#recent.delete(k);
      this.#recentBytes -= v.length;
    }
    if (!this.ring.canAppend(CONSUMED_SIZE, 0)) {
      // No room even for the consumption record (a ring left full by an older layout or a cut):
      // give up the sectors wholly below the oldest kept message first, but never the one holding
      // the newest ITEM, so a remount still continues the sequence past every message.
      this.ring.trimThrough(Math.min(keepFrom, this.#newestRef || keepFrom) - 1);
      if (!this.ring.canAppend(CONSUMED_SIZE, 0)) throw ringFull(`no room for a consumption record (${this.ring.freeSectors} free sectors)`);
    }
    const head = concat(new Uint8Array([CONSUMED]), i2osp(through, 8), new Uint8Array([code]), i2osp(this.#s.boot, 4));
    const rec = this.#s.seal(this.ring.nextSeq, head, new Uint8Array(0));
    // The reserve sectors exist for this: a consumption record must always get through.
    const recSeq = this.ring.nextSeq;
    const durable = this.ring.append(rec, 0);
    // A trim makes this record durable before any sector goes (the ring syncs first unless it already
    // is), so it runs only when a whole sector is to be retired; otherwise the record shares the
    // ring's group commit.
    const trim = (): void => {
      const spans = this.ring.spans();
      if (spans.length > 1 && (spans[0]?.lastSeq ?? Infinity) < keepFrom) this.ring.trimThrough(keepFrom - 1, recSeq);
    };
    if (cause !== "ack") {
      // A drop frees its sectors now, before the push that needs the room goes on.
      trim();
      return durable.then(() => undefined);
    }
    // An ack's sectors go once its record is durable.
    return durable.then(trim);
  }
}
