/**
 * The outbound queue under power loss (issue 5: "include it in the power-loss test"): a workload of
 * pushes and acknowledgements on a FlashQueue, re-run with the power cut at every erase and program,
 * in the three tear modes, and the recovery boot after each cut cut again at each of its writes.
 * Invariant after each cut, on a fresh mount: every push that was durable and
 * not yet delivered comes back, nothing unknown appears, the order is kept, and the sequence continues
 * past every durable message. Portable: the core test runs a short version in XS too.
 */
import { FakeClock } from "../lib/fake-clock.js";
import { FlashQueue } from "../../src/outbound/flash-queue.js";
import type { OutboundQueue } from "../../src/outbound/queue.js";
import { FlashRing } from "../../src/flash/ring.js";
import { NorFlash, RamStore, ramFlash } from "../../src/flash/nor.js";
import { FaultyFlash, isPowerCut, type TearMode } from "../lib/faulty-flash.js";
import type { Flash, KeyStore } from "../../src/ports.js";
import type { QueueAtRest } from "../../src/outbound/flash-queue.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { MemoryKeys } from "../lib/memory-keys.js";

const TAG = 0x51;

export interface QueuePowerlossResult {
  /** Every cut: in the workload and, a second time, in the recovery boot after it. */
  cuts: number;
  recoveryCuts: number;
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

interface Board {
  readonly store: RamStore;
  readonly flash: NorFlash;
  readonly keys: MemoryKeys;
}
function board(sectors: number): Board {
  const store = new RamStore(sectors * 4096);
  return { store, flash: new NorFlash({ size: store.bytes.length, store }), keys: new MemoryKeys() };
}
function cloneBoard(b: Board): Board {
  const c = board(b.store.bytes.length / 4096);
  c.store.bytes.set(b.store.bytes);
  for (const [k, v] of b.keys.map) c.keys.map.set(k, v.slice());
  return c;
}

/**
 * `pushes` messages of `size` bytes, every third delivered; cut at every `step`-th operation, then
 * again at every `recoveryStep`-th operation of the recovery boot (mount and deliver).
 */
export async function runQueuePowerloss(o: { pushes: number; size: number; sectors: number; step?: number; recoveryStep?: number }): Promise<QueuePowerlossResult> {
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
  const out: QueuePowerlossResult = { cuts: 0, recoveryCuts: 0, lost: 0, unknown: 0, reordered: 0, failures: [] };
  const tears: TearMode[] = ["none", "half", "bits"];
  /** Mounts cleanly, delivers everything, and checks the invariant. */
  const verify = async (label: string, b: Board, durable: readonly number[], delivered: ReadonlySet<number>): Promise<void> => {
    const after = mount(b.flash, b.keys);
    const back = await drain(after);
    const last = Math.max(0, ...durable);
    for (const s of durable) {
      if (!delivered.has(s) && !back.includes(s)) {
        out.lost++;
        out.failures.push(`${label}: seq ${s} lost`);
      }
    }
    for (const s of back) {
      // The push the power cut may have completed on flash before its promise could resolve.
      if (!durable.includes(s) && s !== last + 1) {
        out.unknown++;
        out.failures.push(`${label}: unknown seq ${s}`);
      }
    }
    if (back.some((s, i) => i > 0 && s <= back[i - 1]!)) {
      out.reordered++;
      out.failures.push(`${label}: out of order ${back.join(",")}`);
    }
    if (after.nextSeq <= last) out.failures.push(`${label}: seq restarts at ${after.nextSeq} ≤ ${last}`);
  };
  /** The boot after a cut: mount and deliver what came back (each delivery is the vendor's). */
  const recovery = async (flash: Flash, keys: KeyStore, delivered: Set<number>): Promise<void> => {
    try {
      const q = mount(flash, keys);
      for (let item = q.peek(); item; item = q.peek()) {
        delivered.add(item.seq);
        await q.ack(item.seq);
      }
    } catch (e) {
      if (!isPowerCut(e)) throw e;
    }
  };
  for (let cut = 1; cut <= total; cut += o.step ?? 1) {
    for (const tear of tears) {
      const b = board(o.sectors);
      const durable: number[] = [];
      const delivered = new Set<number>();
      try {
        await workload(mount(new FaultyFlash(b.flash, { cutAt: cut, tear }), b.keys), durable, delivered);
      } catch (e) {
        if (!isPowerCut(e)) throw e;
      }
      out.cuts++;
      // A second cut at every write of the recovery boot, each on a copy of the board.
      const counting = cloneBoard(b);
      const countingFlash = new FaultyFlash(counting.flash);
      await recovery(countingFlash, counting.keys, new Set());
      for (let j = 1; j <= countingFlash.operations; j += o.recoveryStep ?? 1) {
        const c = cloneBoard(b);
        const got = new Set(delivered);
        await recovery(new FaultyFlash(c.flash, { cutAt: j, tear }), c.keys, got);
        out.cuts++;
        out.recoveryCuts++;
        await verify(`cut ${cut}/${tear}, recovery cut ${j}`, c, durable, got);
      }
      await verify(`cut ${cut}/${tear}`, b, durable, delivered);
    }
  }
  return out;
}
