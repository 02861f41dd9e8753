/**
 * The flash queue's promises beyond order and bounds: nothing readable on flash (encrypted under the
 * storage key), a tampered item reported and dropped (never delivered), and a full ring handled where
 * it fills up (a drop or refusal, reported; never an exception).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { FakeClock } from "../lib/fake-clock.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import { seededRandom } from "../lib/noble-crypto.js";
import { FlashQueue } from "../../src/outbound/flash-queue.js";
import type { QueueDrop, QueueTerms } from "../../src/outbound/queue.js";
import { FlashRing } from "../../src/flash/ring.js";
import { NorFlash, RamStore } from "../../src/flash/nor.js";
import { encodeFrame, scanSector } from "../../src/flash/ring-format.js";
import { drain, testAtRest } from "../powerloss/queue.js";
import { FaultyFlash } from "../lib/faulty-flash.js";
import type { KeyStore } from "../../src/ports.js";

const TAG = 0x52;
const enc = new TextEncoder();
const terms = (t: Partial<QueueTerms> = {}): QueueTerms => ({ maxBytes: 1 << 20, overflow: "drop-oldest", ttlSeconds: 3600, ...t });

interface Board {
  store: RamStore;
  flash: NorFlash;
  keys: KeyStore;
}
function board(sectors: number): Board {
  const store = new RamStore(sectors * 4096);
  return { store, flash: new NorFlash({ size: sectors * 4096, store }), keys: new MemoryKeys() };
}
function mount(b: Board, t = terms(), drops: QueueDrop[] = [], recentBytes?: number): FlashQueue {
  const atRest = testAtRest(b.keys, 1, (d) => drops.push(d));
  return new FlashQueue(FlashRing.mount({ flash: b.flash, tag: TAG }), t, new FakeClock(), recentBytes === undefined ? atRest : { ...atRest, recentBytes });
}
function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let k = 0; k < needle.length; k++) if (hay[i + k] !== needle[k]) continue outer;
    return true;
  }
  return false;
}
/** Replaces the payload of ring record `ringSeq` with `edit(payload)`, with a valid frame CRC (an attacker's rewrite). */
function rewrite(b: Board, ringSeq: number, edit: (p: Uint8Array) => Uint8Array): void {
  for (let s = 0; s * 4096 < b.store.bytes.length; s++) {
    const image = b.store.bytes.subarray(s * 4096, (s + 1) * 4096);
    for (const f of scanSector(image).frames) if (f.seq === ringSeq) return image.set(encodeFrame(ringSeq, edit(f.payload)), f.offset);
  }
  assert.fail(`ring record ${ringSeq} not found`);
}

describe("FlashQueue at rest", () => {
  const topic = "home/alice/bedroom/presence";
  const payload = enc.encode('{"who":"alice","state":"asleep","since":"23:41"}');

  it("the raw flash image holds neither the topic nor the payload, and both come back after a reboot", async () => {
    const b = board(8);
    const q = mount(b);
    for (let i = 0; i < 6; i++) assert.ok((await q.push(topic, payload)).ok);
    await q.ack(1);
    const image = b.store.bytes;
    for (const needle of [enc.encode(topic), payload, enc.encode("alice"), enc.encode("asleep")]) {
      assert.equal(contains(image, needle), false, `"${new TextDecoder().decode(needle)}" readable on flash`);
    }
    const again = mount(b);
    const item = again.peek();
    assert.deepEqual([item?.seq, item?.topic, new TextDecoder().decode(item?.payload)], [2, topic, new TextDecoder().decode(payload)]);
    assert.equal(again.recovered, undefined);
    // Without the storage key (another board's key store) nothing opens: all of it is reported lost.
    const other = { ...testAtRest(new MemoryKeys(), 1), random: seededRandom("another board") };
    const stranger = new FlashQueue(FlashRing.mount({ flash: b.flash, tag: TAG }), terms(), new FakeClock(), other);
    assert.equal(stranger.count, 0);
    assert.equal(stranger.recovered?.cause, "corrupt");
  });

  it("a tampered item found at mount is reported and dropped; the others are delivered", async () => {
    const b = board(8);
    const q = mount(b);
    for (let i = 0; i < 3; i++) await q.push(`t/${i}`, payload);
    rewrite(b, 2, (p) => {
      const x = p.slice();
      x[x.length - 20]! ^= 1; // a ciphertext bit
      return x;
    });
    const again = mount(b);
    assert.deepEqual(again.recovered, { cause: "corrupt", count: 1, bytes: 0, fromSeq: 2, toSeq: 2 });
    assert.deepEqual(await drain(again), [1, 3]);
  });

  it("an item moved to another position fails authentication (the AAD binds the ring seq)", async () => {
    const b = board(8);
    const q = mount(b);
    for (let i = 0; i < 3; i++) await q.push(`t/${i}`, payload);
    let first: Uint8Array | undefined;
    rewrite(b, 1, (p) => (first = p));
    rewrite(b, 3, () => first!);
    const again = mount(b);
    assert.equal(again.recovered?.count, 1);
    assert.deepEqual(await drain(again), [1, 2]);
  });

  it("an item tampered while queued is never handed out: dropped, reported, consumed on flash", async () => {
    const b = board(8);
    const drops: QueueDrop[] = [];
    // Without the RAM copy of what this boot wrote, so the message is read back from flash.
    const q = mount(b, terms(), drops, 0);
    for (let i = 0; i < 3; i++) await q.push(`t/${i}`, payload);
    await q.ack(1);
    rewrite(b, 2, (p) => {
      const x = p.slice();
      x[x.length - 1]! ^= 0x80; // the GCM tag
      return x;
    });
    assert.equal(q.peek()?.seq, 3, "the tampered message is skipped");
    assert.deepEqual(drops, [{ cause: "corrupt", count: 1, bytes: 3 + payload.length, fromSeq: 2, toSeq: 2 }]);
    assert.deepEqual(await drain(q), [3]);
    const again = mount(b);
    assert.equal(again.count, 0);
    assert.equal(again.recovered, undefined, "its consumption is on flash: not reported twice");
  });

  it("a message written in this boot is sent from its RAM copy as sealed (flash tampered meanwhile); a resend and a reboot read flash and drop the tampered one", async () => {
    const b = board(8);
    const drops: QueueDrop[] = [];
    const q = mount(b, terms(), drops);
    for (let i = 0; i < 3; i++) await q.push(`t/${i}`, payload);
    rewrite(b, 2, (p) => {
      const x = p.slice();
      x[x.length - 1]! ^= 0x80;
      return x;
    });
    const first = q.peek(1);
    assert.deepEqual([first?.seq, first?.topic, [...(first?.payload ?? [])]], [2, "t/1", [...payload]], "the bytes this boot sealed, never the tampered ones");
    assert.equal(q.peek(1)?.seq, 3, "a resend reads flash back: the tampered one is skipped");
    assert.equal(drops.length, 1);
    const again = mount(b, terms(), drops);
    assert.deepEqual(await drain(again), [1, 3]);
  });

  it("drop-oldest fills a small ring to the brim: no exception escapes, every message is accounted for (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 3, max: 5 }),
        fc.array(fc.oneof(fc.integer({ min: 0, max: 3900 }), fc.integer({ min: 0, max: 120 }), fc.constant(-1)), { minLength: 50, maxLength: 250 }),
        async (sectors, ops) => {
          const b = board(sectors);
          const drops: QueueDrop[] = [];
          const q = mount(b, terms(), drops);
          let accepted = 0;
          let delivered = 0;
          let minFree = Infinity;
          for (const op of ops) {
            if (op < 0) {
              const it = q.peek();
              if (it) (await q.ack(it.seq), delivered++);
              continue;
            }
            const r = await q.push("t", new Uint8Array(op)); // a rejection fails the property
            if (r.ok) (accepted++, drops.push(...r.dropped));
            else assert.ok(r.reason === "overflow" || r.reason === "too-large", `${r.reason}: ${r.detail}`);
            minFree = Math.min(minFree, q.ring.freeSectors);
          }
          const dropped = drops.reduce((n, d) => n + d.count, 0);
          assert.equal(accepted, delivered + dropped + q.count, "every accepted message is delivered, reported dropped, or queued");
          assert.ok(minFree >= 1, "items never take the last free sector");
          const after = mount(b);
          assert.deepEqual([after.count, after.peek()?.seq], [q.count, q.peek()?.seq], "after a reboot: exactly what was queued, nothing consumed comes back");
        },
      ),
      { numRuns: 60 },
    );
  });

  it("a ring left full (no room even for a consumption record) still drops and reports, never throws", async () => {
    const b = board(3);
    const drops: QueueDrop[] = [];
    const q = mount(b, terms(), drops);
    for (let i = 0; i < 4; i++) assert.ok((await q.push("t", new Uint8Array(900).fill(i))).ok);
    // Jam the ring with foreign records up to the brim (what an older layout or a cut may leave).
    while (q.ring.canAppend(1, 0)) await q.ring.append(new Uint8Array(1).fill(0xee), 0);
    assert.equal(q.ring.freeSectors, 0);
    const jammed = mount(b, terms(), drops);
    assert.equal(jammed.count, 4);
    const r = await jammed.push("t", new Uint8Array(900));
    const reported = [...(r.ok ? r.dropped : []), ...drops].reduce((n, d) => n + d.count, 0);
    assert.ok(reported >= 1, `the drop is reported (${JSON.stringify(r)})`);
    assert.equal(reported + jammed.count, 4 + (r.ok ? 1 : 0));
    const after = mount(b);
    assert.ok(after.nextSeq >= jammed.nextSeq, "the sequence continues past every message");
  });

  it("worn-out sectors and a power cut fail the queue closed with a result, never an exception", async () => {
    for (const faults of [{ enduranceLimit: 2 }, { cutAt: 40, tear: "bits" as const }]) {
      const inner = board(3);
      const flash = new FaultyFlash(inner.flash, faults);
      const q = new FlashQueue(FlashRing.mount({ flash, tag: TAG }), terms(), new FakeClock(), testAtRest(inner.keys, 1));
      const reasons = new Set<string>();
      for (let i = 0; i < 200; i++) {
        const r = await q.push("t", new Uint8Array(700)); // a rejection fails the test
        if (!r.ok) reasons.add(r.reason);
        const it = q.peek();
        if (i % 2 && it) await q.ack(it.seq);
      }
      assert.deepEqual([...reasons], ["failed"], JSON.stringify(faults));
      assert.equal(q.peek(), undefined, "nothing is handed out once the store failed");
    }
  });
});
