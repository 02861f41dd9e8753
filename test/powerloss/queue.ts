/**
 * The outbound queue under power loss (issue 5: "include it in the power-loss test"): a workload of
 * pushes and acknowledgements on a FlashQueue, re-run with the power cut at every erase and program,
 * in the three tear modes. Invariant after each cut, on a fresh mount: every push that was durable and
 * not yet delivered comes back, nothing unknown appears, the order is kept, and the sequence continues
 * past every durable message. Portable: the core test runs a short version in XS too.
 */
import { FakeClock } from "../lib/fake-clock.js";
import { FlashQueue } from "../../src/outbound/flash-queue.js";
import type { OutboundQueue } from "../../src/outbound/queue.js";
import { FlashRing } from "../../src/flash/ring.js";
import { ramFlash } from "../../src/flash/nor.js";
import { FaultyFlash, isPowerCut, type TearMode } from "../lib/faulty-flash.js";
import type { Flash, KeyStore } from "../../src/ports.js";
import type { QueueAtRest } from "../../src/outbound/flash-queue.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { MemoryKeys } from "../lib/memory-keys.js";

const TAG = 0x51;

export interface QueuePowerlossResult {
  cuts: number;
  lost: number;
  unknown: number;
  reordered: number;
  failures: string[];
}

/** Encryption at rest for a test queue: deterministic crypto, the board's key store `keys`. */
export function testAtRest(keys: KeyStore, slot = 0, onDrop?: QueueAtRest["onDrop"]): QueueAtRest {
  const random = seededRandom(`queue-${slot}`);
  return { crypto: nobleCrypto(random), keys, random, slot, ...(onDrop ? { onDrop } : {}) };
}

function mount(flash: Flash, keys: KeyStore): FlashQueue {
  return new FlashQueue(FlashRing.mount({ flash, tag: TAG }), { maxBytes: 64 * 1024, overflow: "drop-oldest", ttlSeconds: 3600 }, new FakeClock(), testAtRest(keys));
}

/** Delivers and acknowledges everything queued; returns the sequence numbers in delivery order. */
export async function drain(q: OutboundQueue): Promise<number[]> {
  const seen: number[] = [];
  for (let item = q.peek(); item; item = q.peek()) {
    seen.push(item.seq);
    await q.ack(item.seq);
  }
  return seen;
}

/** `pushes` messages of `size` bytes, every third delivered; cut at every `step`-th operation. */
export async function runQueuePowerloss(o: { pushes: number; size: number; sectors: number; step?: number }): Promise<QueuePowerlossResult> {
  const workload = async (q: FlashQueue, durable: number[], delivered: Set<number>): Promise<void> => {
    for (let i = 0; i < o.pushes; i++) {
      const r = await q.push("t", new Uint8Array(o.size).fill(i & 0xff));
      if (!r.ok) return; // the store failed (the power is gone): the queue fails closed
      durable.push(r.seq);
      if (i % 3 === 2) {
        const s = q.peek()!.seq;
        delivered.add(s); // the vendor has it; the ack record may or may not reach flash
        await q.ack(s);
      }
    }
  };
  const probe = new FaultyFlash(ramFlash(o.sectors * 4096));
  await workload(mount(probe, new MemoryKeys()), [], new Set());
  const total = probe.operations;
  const out: QueuePowerlossResult = { cuts: 0, lost: 0, unknown: 0, reordered: 0, failures: [] };
  const tears: TearMode[] = ["none", "half", "bits"];
  for (let cut = 1; cut <= total; cut += o.step ?? 1) {
    for (const tear of tears) {
      const inner = ramFlash(o.sectors * 4096);
      const keys = new MemoryKeys();
      const durable: number[] = [];
      const delivered = new Set<number>();
      try {
        await workload(mount(new FaultyFlash(inner, { cutAt: cut, tear }), keys), durable, delivered);
      } catch (e) {
        if (!isPowerCut(e)) throw e;
      }
      out.cuts++;
      const after = mount(inner, keys);
      const back = await drain(after);
      const last = Math.max(0, ...durable);
      for (const s of durable) {
        if (!delivered.has(s) && !back.includes(s)) {
          out.lost++;
          out.failures.push(`cut ${cut}/${tear}: seq ${s} lost`);
        }
      }
      for (const s of back) {
        // The push the power cut may have completed on flash before its promise could resolve.
        if (!durable.includes(s) && s !== last + 1) {
          out.unknown++;
          out.failures.push(`cut ${cut}/${tear}: unknown seq ${s}`);
        }
      }
      if (back.some((s, i) => i > 0 && s <= back[i - 1]!)) {
        out.reordered++;
        out.failures.push(`cut ${cut}/${tear}: out of order ${back.join(",")}`);
      }
      if (after.nextSeq <= last) out.failures.push(`cut ${cut}/${tear}: seq restarts at ${after.nextSeq} ≤ ${last}`);
    }
  }
  return out;
}
