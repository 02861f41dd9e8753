/**
 * The outbound queue: the same behaviour suite for the RAM queue and the flash-ring queue (order,
 * overflow policies, TTL, purge, freeze, limits), then what only flash gives: reboot and power loss.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { FakeClock } from "../lib/fake-clock.js";
import { MemoryQueue, type OutboundQueue, type QueueTerms } from "../../src/outbound/queue.js";
import { FlashQueue } from "../../src/outbound/flash-queue.js";
import { FlashRing } from "../../src/flash/ring.js";
import { ramFlash, type NorFlash } from "../../src/flash/nor.js";
import { drain, runQueuePowerloss, testAtRest } from "../powerloss/queue.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import type { Flash } from "../../src/ports.js";

const TAG = 0x51;
const bytes = (n: number, fill = 1): Uint8Array => new Uint8Array(n).fill(fill);
const terms = (t: Partial<QueueTerms> = {}): QueueTerms => ({ maxBytes: 1000, overflow: "drop-oldest", ttlSeconds: 3600, ...t });

const makers: [string, (t: QueueTerms, clock: FakeClock) => OutboundQueue][] = [
  ["MemoryQueue", (t, clock) => new MemoryQueue(t, clock)],
  ["FlashQueue", (t, clock) => new FlashQueue(FlashRing.mount({ flash: ramFlash(16 * 4096), tag: TAG }), t, clock, testAtRest(new MemoryKeys()))],
];

for (const [name, make] of makers) {
  describe(`OutboundQueue behaviour: ${name}`, () => {
    it("hands messages out in order, with their topic and payload, and counts bytes", async () => {
      const q = make(terms(), new FakeClock());
      for (let i = 0; i < 5; i++) assert.equal((await q.push(`t/${i}`, bytes(10, i))).ok, true);
      assert.equal(q.count, 5);
      assert.equal(q.bytes, 5 * 13);
      const first = q.peek();
      assert.deepEqual([first?.seq, first?.topic, [...(first?.payload ?? [])]], [1, "t/0", [...bytes(10, 0)]]);
      assert.deepEqual(await drain(q), [1, 2, 3, 4, 5]);
      assert.equal(q.bytes, 0);
      assert.equal(q.nextSeq, 6);
    });

    it("acks in any order: the cursor retires the contiguous prefix; an acked message is never handed out again", async () => {
      const q = make(terms(), new FakeClock());
      for (let i = 0; i < 5; i++) await q.push("t", bytes(1, i));
      await q.ack(3);
      await q.ack(2);
      assert.deepEqual([q.count, q.acknowledged, q.peek()?.seq, q.peek(1)?.seq], [5, 2, 1, 4], "1 not acked: nothing retired; peek skips 2 and 3");
      await assert.rejects(q.ack(3), /twice/);
      await assert.rejects(q.ack(9), /not queued/);
      await q.ack(1);
      assert.deepEqual([q.count, q.acknowledged, q.bytes, q.peek()?.seq], [2, 0, 4, 4]);
      await q.ack(5);
      assert.deepEqual(await drain(q), [4]);
      assert.equal(q.count, 0);
    });

    it("an acknowledged message above a gap is not reported as dropped when overflow takes it", async () => {
      const q = make(terms({ maxBytes: 100 }), new FakeClock());
      for (let i = 0; i < 4; i++) await q.push("t", bytes(24));
      await q.ack(2);
      const r = await q.push("t", bytes(49));
      assert.ok(r.ok);
      assert.deepEqual(r.dropped, [{ cause: "overflow", count: 1, bytes: 25, fromSeq: 1, toSeq: 2 }]);
      assert.deepEqual(await drain(q), [3, 4, 5]);
    });

    it("drop-oldest makes room and reports what it dropped", async () => {
      const q = make(terms({ maxBytes: 100 }), new FakeClock());
      for (let i = 0; i < 4; i++) await q.push("t", bytes(24));
      const r = await q.push("t", bytes(49));
      assert.ok(r.ok);
      assert.deepEqual(r.dropped, [{ cause: "overflow", count: 2, bytes: 50, fromSeq: 1, toSeq: 2 }]);
      assert.deepEqual(await drain(q), [3, 4, 5]);
    });

    it("reject-new refuses and keeps what is queued", async () => {
      const q = make(terms({ maxBytes: 100, overflow: "reject-new" }), new FakeClock());
      for (let i = 0; i < 4; i++) await q.push("t", bytes(24));
      const r = await q.push("t", bytes(10));
      assert.deepEqual([r.ok, !r.ok && r.reason], [false, "overflow"]);
      assert.deepEqual(await drain(q), [1, 2, 3, 4]);
      assert.equal(q.nextSeq, 5, "a refused message takes no sequence number");
    });

    it("a message larger than the whole bound is refused as too-large", async () => {
      const q = make(terms({ maxBytes: 50 }), new FakeClock());
      const r = await q.push("t", bytes(50));
      assert.equal(!r.ok && r.reason, "too-large");
    });

    it("drops messages past their time to live, oldest first, with cause ttl", async () => {
      const clock = new FakeClock();
      const q = make(terms({ ttlSeconds: 60 }), clock);
      await q.push("t", bytes(1));
      clock.tick(30_000);
      await q.push("t", bytes(1));
      clock.tick(30_000);
      assert.deepEqual(await q.expire(), { cause: "ttl", count: 1, bytes: 2, fromSeq: 1, toSeq: 1 });
      assert.equal(await q.expire(), undefined);
      clock.tick(30_000);
      const r = await q.push("t", bytes(1));
      assert.deepEqual(r.ok && r.dropped, [{ cause: "ttl", count: 1, bytes: 2, fromSeq: 2, toSeq: 2 }]);
    });

    it("purge drops everything at once; freeze hands nothing out and accepts nothing until thaw", async () => {
      const q = make(terms(), new FakeClock());
      for (let i = 0; i < 3; i++) await q.push("t", bytes(5));
      q.freeze();
      assert.equal(q.peek(), undefined);
      assert.equal((await q.push("t", bytes(1))).ok, false);
      q.thaw();
      assert.equal(q.peek()?.seq, 1);
      assert.deepEqual(await q.purge(), { cause: "purge", count: 3, bytes: 18, fromSeq: 1, toSeq: 3 });
      assert.equal(q.peek(), undefined);
      assert.equal(q.count, 0);
      assert.equal((await q.push("t", bytes(1))).ok && q.peek()?.seq, 4, "sequence numbers are never reused");
    });

    it("never exceeds maxBytes and keeps order under any push/ack mix (property)", async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.oneof(fc.nat(60), fc.constant(-1)), { maxLength: 60 }), fc.boolean(), async (ops, dropOldest) => {
          const q = make(terms({ maxBytes: 200, overflow: dropOldest ? "drop-oldest" : "reject-new" }), new FakeClock());
          let lastAcked = 0;
          for (const op of ops) {
            if (op < 0) {
              const it = q.peek();
              if (it) {
                assert.ok(it.seq > lastAcked);
                lastAcked = it.seq;
                await q.ack(it.seq);
              }
            } else await q.push("t", bytes(op));
            assert.ok(q.bytes <= 200);
          }
        }),
        { numRuns: 40 },
      );
    });

    it("rejects bad terms", () => {
      assert.throws(() => make(terms({ maxBytes: 0 }), new FakeClock()));
      assert.throws(() => make(terms({ overflow: "drop-newest" as "reject-new" }), new FakeClock()));
    });
  });
}

describe("FlashQueue durability", () => {
  const keys = new MemoryKeys();
  const mount = (flash: Flash, clock = new FakeClock(), t = terms({ maxBytes: 64 * 1024 })): FlashQueue =>
    new FlashQueue(FlashRing.mount({ flash, tag: TAG }), t, clock, testAtRest(keys));

  it("survives a reboot: what was not acknowledged comes back in order, and seq continues", async () => {
    const flash = ramFlash(16 * 4096);
    const q = mount(flash);
    for (let i = 0; i < 10; i++) await q.push(`t/${i}`, bytes(100, i));
    await q.ack(1);
    await q.ack(2);
    const again = mount(flash);
    assert.equal(again.count, 8);
    assert.equal(again.peek()?.topic, "t/2");
    assert.deepEqual([...(again.peek()?.payload ?? [])], [...bytes(100, 2)]);
    assert.deepEqual(await drain(again), [3, 4, 5, 6, 7, 8, 9, 10]);
    const third = mount(flash);
    assert.equal(third.count, 0);
    assert.equal(third.nextSeq, 11, "seq is never reused after a reboot, even when the queue was empty");
  });

  it("a purge survives a reboot, and purged data is erased from flash", async () => {
    const flash = ramFlash(16 * 4096);
    const q = mount(flash);
    const secret = bytes(2000, 0x5a);
    for (let i = 0; i < 8; i++) await q.push("t", secret);
    await q.purge();
    q.ring.maintain();
    assert.equal(mount(flash).count, 0);
    let found = 0;
    const image = flash.read(0, flash.size);
    for (let i = 0; i + 64 <= image.length; i += 64) if (image.subarray(i, i + 64).every((b) => b === 0x5a)) found++;
    assert.ok(found <= 2000 / 64 + 1, `at most the head sector's last message may remain (found ${found} blocks)`);
  });

  it("uses the whole ring as room: drop-oldest frees whole sectors; reject-new refuses when flash is full", async () => {
    const flash = ramFlash(4 * 4096);
    const q = mount(flash, new FakeClock(), terms({ maxBytes: 1 << 20 }));
    let dropped = 0;
    for (let i = 0; i < 20; i++) {
      const r = await q.push("t", bytes(1500));
      assert.ok(r.ok, !r.ok ? r.detail : "");
      for (const d of r.dropped) dropped += d.count;
    }
    assert.ok(dropped > 0);
    assert.equal(q.count + dropped, 20);
    const order = await drain(q);
    assert.deepEqual(order, [...order].sort((a, b) => a - b));
    const f2 = ramFlash(4 * 4096);
    const r2 = mount(f2, new FakeClock(), terms({ maxBytes: 1 << 20, overflow: "reject-new" }));
    let refused = 0;
    for (let i = 0; i < 20; i++) if (!(await r2.push("t", bytes(1500))).ok) refused++;
    assert.ok(refused > 0 && r2.count > 0);
  });

  it("power cut at every flash operation, and again in the recovery: an acknowledged push is never lost, nothing is reordered", async () => {
    const r = await runQueuePowerloss({ pushes: 12, size: 700, sectors: 8, recoveryStep: 2 });
    assert.deepEqual(r.failures, []);
    assert.ok(r.cuts - r.recoveryCuts > 30 && r.recoveryCuts > 30, `${r.cuts} cuts, ${r.recoveryCuts} in recovery`);
  });
});
