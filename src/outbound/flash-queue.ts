/**
 * The durable outbound queue on the audit log's flash ring (src/flash/ring.ts), in its own region and
 * with its own ring tag. Two record types (SPEC.md "Outbound envelope", "Queue records"):
 *
 *   ITEM     0x01 ‖ seq u64 ‖ enqueuedAt u64 (ms) ‖ topic length u16 ‖ topic (UTF-8) ‖ payload
 *   CONSUMED 0x02 ‖ through u64 ‖ cause u8 (0 ack, 1 overflow, 2 ttl, 3 purge, 4 corrupt)
 *
 * A message is durable once its ITEM is programmed; it is gone once a CONSUMED record at or above its
 * seq is programmed. Whole sectors below the oldest kept message are then retired and erased by the
 * ring's idle eraser, so purged data does not linger. Mount replays the ring: what was queued and not
 * consumed before a reboot or power cut is queued again, and a torn or corrupt ITEM is reported lost.
 */
import type { Clock } from "../ports.js";
import { ErrorCode, PortcullisError } from "../errors.js";
import { FlashRing } from "../flash/ring.js";
import { concat, i2osp, utf8 as text } from "../util/bytes.js";
import { QueueBase, type DropCause, type IndexEntry, type QueueDrop, type QueueItem, type QueueTerms } from "./queue.js";

const ITEM = 0x01;
const CONSUMED = 0x02;
const CAUSES: readonly (DropCause | "ack")[] = Object.freeze(["ack", "overflow", "ttl", "purge", "corrupt"]);
const ITEM_HEAD = 1 + 8 + 8 + 2;
const CONSUMED_SIZE = 1 + 8 + 1;

function u64(b: Uint8Array, at: number): number {
  let v = 0;
  for (let i = at; i < at + 8; i++) v = v * 256 + (b[i] ?? 0);
  return v;
}

function decodeUtf8(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; ) {
    const c = b[i] ?? 0;
    const n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    let cp = n === 1 ? c : c & (0xff >> (n + 1));
    for (let k = 1; k < n; k++) cp = (cp << 6) | ((b[i + k] ?? 0) & 63);
    s += String.fromCodePoint(cp);
    i += n;
  }
  return s;
}

/**
 * Replays a mounted ring into the queue's starting state. Records the ring could not read back
 * (corrupt, not torn-at-tail) are reported once as a "corrupt" drop; `count` is in ring records and
 * `fromSeq`/`toSeq` give the ring's sequence range, since the message numbers inside are unreadable.
 */
function replay(ring: FlashRing): { items: IndexEntry[]; nextSeq: number; lost?: QueueDrop } {
  const items: IndexEntry[] = [];
  let through = 0;
  let nextSeq = 1;
  let lost: { count: number; from: number; to: number } | undefined;
  for (const e of ring.entries()) {
    if (e.type === "gap") {
      lost = { count: (lost?.count ?? 0) + e.to - e.from + 1, from: lost?.from ?? e.from, to: e.to };
      continue;
    }
    const d = e.data;
    if (d[0] === ITEM && d.length >= ITEM_HEAD) {
      const seq = u64(d, 1);
      items.push({ seq, size: d.length - ITEM_HEAD, enqueuedAt: u64(d, 9), ref: e.seq });
      nextSeq = Math.max(nextSeq, seq + 1);
    } else if (d[0] === CONSUMED && d.length >= CONSUMED_SIZE) {
      through = Math.max(through, u64(d, 1));
      nextSeq = Math.max(nextSeq, through + 1);
    }
  }
  const kept = items.filter((i) => i.seq > through);
  if (!lost) return { items: kept, nextSeq };
  return { items: kept, nextSeq, lost: { cause: "corrupt", count: lost.count, bytes: 0, fromSeq: lost.from, toSeq: lost.to } };
}

/** A queue that survives reboot and power loss, on a FlashRing. */
export class FlashQueue extends QueueBase {
  readonly ring: FlashRing;

  /**
   * Replays `ring` (already mounted) and continues from it.
   * @throws PortcullisError(BadOption) on bad terms.
   */
  constructor(ring: FlashRing, terms: QueueTerms, clock: Clock) {
    super(terms, clock, replay(ring));
    this.ring = ring;
  }

  protected maxItem(): number {
    return this.ring.maxPayload - ITEM_HEAD;
  }

  protected fits(size: number): boolean {
    return this.ring.canAppend(ITEM_HEAD + size);
  }

  /** After consuming everything before `nextKept`, would whole sectors free up enough room? */
  protected override fitsAfterDropping(nextKept: IndexEntry | undefined, size: number): boolean {
    if (this.fits(size)) return true;
    const keepFrom = nextKept?.ref ?? this.ring.nextSeq;
    const spans = this.ring.spans();
    let freed = 0;
    for (let i = 0; i < spans.length - 1; i++) if ((spans[i]?.lastSeq ?? Infinity) < keepFrom) freed++;
    // The ring keeps its reserve (default 1 sector) free for consumption records like ours.
    return this.ring.freeSectors + freed - 1 >= 1;
  }

  protected store(item: QueueItem): Promise<number> {
    const topic = text(item.topic);
    const rec = concat(new Uint8Array([ITEM]), i2osp(item.seq, 8), i2osp(item.enqueuedAt, 8), i2osp(topic.length, 2), topic, item.payload);
    const ref = this.ring.nextSeq;
    return this.ring.append(rec).then(() => ref);
  }

  protected load(e: IndexEntry): { topic: string; payload: Uint8Array } | undefined {
    const d = this.ring.read(e.ref);
    if (!d || d[0] !== ITEM || u64(d, 1) !== e.seq) return undefined;
    const topicLen = ((d[17] ?? 0) << 8) | (d[18] ?? 0);
    return { topic: decodeUtf8(d.subarray(ITEM_HEAD, ITEM_HEAD + topicLen)), payload: d.slice(ITEM_HEAD + topicLen) };
  }

  protected async consume(through: number, cause: DropCause | "ack", next: IndexEntry | undefined): Promise<void> {
    const code = CAUSES.indexOf(cause);
    if (code < 0) throw new PortcullisError(ErrorCode.BadOption, `unknown cause ${cause}`);
    // The reserve sectors exist for this: a consumption record must always get through.
    await this.ring.append(concat(new Uint8Array([CONSUMED]), i2osp(through, 8), new Uint8Array([code])), 0);
    this.ring.trimThrough((next?.ref ?? this.ring.nextSeq) - 1);
  }
}
