/**
 * Issue 14: a queue flooded with drop-oldest must name every drop in the log exactly once, in a
 * bounded number of records (one per integration × cause × window, with its count), never one per push.
 * The real UplinkManager over the real queues (MemoryQueue, and the FlashQueue on a RAM flash), a
 * scripted vendor that PUBACKs some of what is in flight, FakeClock. The truth is computed apart from
 * the manager: every pushed seq is either acknowledged by the vendor (and accepted by the queue), still
 * queued, or dropped; the drop records' counts must sum to exactly the dropped ones, their ranges must
 * name each of them, no two records may overlap, and each record's running total is the sum so far.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { FakeClock } from "../lib/fake-clock.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { testAtRest } from "../powerloss/queue.js";
import { MemoryQueue, type OutboundQueue, type QueueDrop, type QueueItem, type PushResult } from "../../src/outbound/queue.js";
import { FlashQueue } from "../../src/outbound/flash-queue.js";
import { FlashRing } from "../../src/flash/ring.js";
import { ramFlash } from "../../src/flash/nor.js";
import { EnvelopeSealer, parseEnvelope } from "../../src/outbound/envelope.js";
import { DEFAULT_DROP_WINDOW_MS, UplinkManager } from "../../src/outbound/uplink-manager.js";
import { deriveKeyPair } from "../../src/crypto/hpke.js";
import type { AuditEvent } from "../../src/audit/types.js";
import type { Uplink, UplinkOptions, UplinkSession } from "../../src/ports.js";

/** A vendor that holds every PUBLISH until told to PUBACK one. */
class HoldingVendor implements Uplink {
  readonly pending: { seq: number; resolve: () => void }[] = [];
  #o: UplinkOptions | undefined;
  connect(o: UplinkOptions): UplinkSession {
    this.#o = o;
    return {
      publish: (_t, payload) => new Promise<void>((resolve) => this.pending.push({ seq: parseEnvelope(payload).seq, resolve })),
      close: () => undefined,
    };
  }
  accept(): void {
    this.#o?.onConnect();
  }
  puback(i: number): void {
    this.pending.splice(i % this.pending.length, 1)[0]?.resolve();
  }
}

/** The queue as the manager sees it, noting which acks it accepted (those messages were delivered). */
class AckSpy implements OutboundQueue {
  readonly accepted = new Set<number>();
  readonly q: OutboundQueue;
  constructor(q: OutboundQueue) {
    this.q = q;
  }
  push(topic: string, payload: Uint8Array): Promise<PushResult> {
    return this.q.push(topic, payload);
  }
  peek(after?: number): QueueItem | undefined {
    return this.q.peek(after);
  }
  ack(seq: number): Promise<void> {
    const p = this.q.ack(seq);
    this.accepted.add(seq); // ack throws (rejects at once) for a seq no longer queued
    p.catch(() => this.accepted.delete(seq));
    return p;
  }
  get acknowledged(): number {
    return this.q.acknowledged;
  }
  expire(): Promise<QueueDrop | undefined> {
    return this.q.expire();
  }
  purge(): Promise<QueueDrop | undefined> {
    return this.q.purge();
  }
  freeze(): void {
    this.q.freeze();
  }
  thaw(): void {
    this.q.thaw();
  }
  get frozen(): boolean {
    return this.q.frozen;
  }
  get bytes(): number {
    return this.q.bytes;
  }
  get count(): number {
    return this.q.count;
  }
  get nextSeq(): number {
    return this.q.nextSeq;
  }
  get recovered(): QueueDrop | undefined {
    return this.q.recovered;
  }
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 30; i++) await Promise.resolve();
};

interface Step {
  /** PUBACKs the vendor sends after this push (picked among those in flight). */
  readonly acks: number;
  readonly pick: number;
  /** Wall-clock ms that pass after this push. */
  readonly ms: number;
}

async function flood(makeQueue: (clock: FakeClock, onDrop: (d: QueueDrop) => void) => OutboundQueue, steps: readonly Step[], size: number): Promise<void> {
  const clock = new FakeClock();
  const crypto = nobleCrypto(seededRandom("drops-crypto"));
  const events: AuditEvent[] = [];
  let mgr: UplinkManager | undefined;
  const early: QueueDrop[] = [];
  const spy = new AckSpy(makeQueue(clock, (d) => (mgr ? mgr.reportDrop(d) : early.push(d))));
  const vendor = new HoldingVendor();
  const sealer = new EnvelopeSealer({ crypto, clock, integration: "acme", contractVersion: "1", encryption: "hpke", vendorPublicKey: deriveKeyPair(crypto, new Uint8Array(32).fill(3)).publicKey });
  mgr = new UplinkManager({
    integration: "acme", uplink: vendor, clock, timers: clock, random: seededRandom("drops"), queue: spy, sealer, window: 8,
    connection: { host: "vendor.example", port: 8883, clientId: "gw", keepalive: 30 },
    onEvent: (e) => events.push(e),
  });
  assert.equal(early.length, 0);
  mgr.start();
  vendor.accept();
  const pushed: number[] = [];
  let elapsed = 0;
  for (const s of steps) {
    const r = await mgr.enqueue("acme/t", new Uint8Array(size).fill(pushed.length & 0xff));
    assert.ok(r.ok, "drop-oldest always takes the new message");
    pushed.push(r.seq);
    await settle();
    for (let i = 0; i < s.acks && vendor.pending.length > 0; i++) vendor.puback(s.pick + i);
    await settle();
    clock.tick(s.ms);
    elapsed += s.ms;
  }
  await settle();
  mgr.stop(); // writes the last window's tally
  const remaining = new Set<number>();
  for (let it = spy.q.peek(); it; it = spy.q.peek(it.seq)) remaining.add(it.seq);
  const dropped = pushed.filter((s) => !spy.accepted.has(s) && !remaining.has(s));

  const records = events.filter((e) => e.kind === "queue" && e.decision === "deny");
  assert.ok(records.every((e) => e.reason === "overflow"), `only overflow drops: ${records.map((e) => e.reason).join()}`);
  const sum = records.reduce((a, e) => a + (e.detail?.["count"] as number), 0);
  assert.equal(sum, dropped.length, "the records' counts sum to exactly the messages dropped");
  assert.equal(mgr.stats().dropped["overflow"] ?? 0, dropped.length, "status counts the same");
  let running = 0;
  let lastTo = 0;
  for (const e of records) {
    const d = e.detail!;
    running += d["count"] as number;
    assert.equal(d["total"], running, "each record carries the running total");
    assert.ok((d["fromSeq"] as number) > lastTo, "records never overlap (each drop is named once)");
    lastTo = d["toSeq"] as number;
  }
  for (const s of dropped) {
    assert.ok(records.some((e) => (e.detail!["fromSeq"] as number) <= s && s <= (e.detail!["toSeq"] as number)), `dropped seq ${s} is named by a record`);
  }
  // One record per window at most (a window opens at its first drop and lasts DEFAULT_DROP_WINDOW_MS).
  assert.ok(records.length <= Math.floor(elapsed / DEFAULT_DROP_WINDOW_MS) + 1, `${records.length} records over ${elapsed} ms`);
  if (dropped.length > 0) assert.ok(records.length < pushed.length / 4, `${records.length} records for ${pushed.length} pushes: not one per push`);
}

const stepArb = fc.record({ acks: fc.integer({ min: 0, max: 3 }), pick: fc.nat(64), ms: fc.integer({ min: 0, max: 40 }) });

describe("Queue drops under a flood (drop-oldest): every drop in the log exactly once, in aggregate", () => {
  it("MemoryQueue, property: the counts sum to the drops, the ranges name each, one record per window", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 50, maxLength: 400 }), async (steps) => {
        await flood((clock) => new MemoryQueue({ maxBytes: 2000, overflow: "drop-oldest", ttlSeconds: 3600 }, clock), steps, 90);
      }),
      { numRuns: 25 },
    );
  });

  it("a vendor that never acknowledges: every message past the queue's room is dropped and named", async () => {
    const steps = Array.from({ length: 600 }, () => ({ acks: 0, pick: 0, ms: 5 }));
    await flood((clock) => new MemoryQueue({ maxBytes: 3000, overflow: "drop-oldest", ttlSeconds: 3600 }, clock), steps, 100);
  });

  it("FlashQueue on flash (drops free whole sectors): the same accounting", async () => {
    const keys = new MemoryKeys();
    const steps = Array.from({ length: 300 }, (_, i) => ({ acks: i % 3 === 0 ? 2 : 0, pick: i, ms: 7 }));
    await flood((clock, onDrop) => new FlashQueue(FlashRing.mount({ flash: ramFlash(4 * 4096), tag: 0x52 }), { maxBytes: 64 * 1024, overflow: "drop-oldest", ttlSeconds: 3600 }, clock, testAtRest(keys, 0, onDrop)), steps, 150);
  });
});
