/**
 * The uplink window over the flash queue: the real UplinkManager and FlashQueue, a scripted vendor
 * that PUBACKs in a seeded random order, and the power cut at every flash operation (FaultyFlash, the
 * three tear modes). After each cut a fresh mount must give back every message the vendor never got
 * (none lost), in order, and at most the window of messages the vendor may already have (the cut fell
 * between their PUBACK and the cursor's consumption record). Also: one ring record per batch of acks.
 */
import assert from "node:assert/strict";
import { FakeClock } from "../lib/fake-clock.js";
import { FaultyFlash, isPowerCut, type TearMode } from "../lib/faulty-flash.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { FlashQueue } from "../../src/outbound/flash-queue.js";
import { FlashRing } from "../../src/flash/ring.js";
import { NorFlash, RamStore, ramFlash } from "../../src/flash/nor.js";
import { EnvelopeSealer, parseEnvelope } from "../../src/outbound/envelope.js";
import { UplinkManager } from "../../src/outbound/uplink-manager.js";
import { deriveKeyPair } from "../../src/crypto/hpke.js";
import { drain, testAtRest } from "../powerloss/queue.js";
import type { Flash, KeyStore, Uplink, UplinkOptions, UplinkSession } from "../../src/ports.js";

const TAG = 0x51;
const terms = { maxBytes: 64 * 1024, overflow: "drop-oldest", ttlSeconds: 3600 } as const;
const settle = async (): Promise<void> => {
  for (let i = 0; i < 40; i++) await Promise.resolve();
};

function mount(flash: Flash, keys: KeyStore): FlashQueue {
  return new FlashQueue(FlashRing.mount({ flash, tag: TAG }), terms, new FakeClock(), testAtRest(keys));
}

/** A vendor that holds every PUBLISH and acknowledges one of those pending, chosen by a seeded PRNG. */
class ShufflingVendor implements Uplink {
  readonly received = new Set<number>();
  maxPending = 0;
  readonly #pending: { seq: number; resolve: () => void }[] = [];
  #x: number;
  #options: UplinkOptions | undefined;
  constructor(seed: number) {
    this.#x = seed >>> 0 || 1;
  }
  connect(o: UplinkOptions): UplinkSession {
    this.#options = o;
    return {
      publish: (_topic, payload) =>
        new Promise<void>((resolve) => {
          const seq = parseEnvelope(payload).seq;
          this.received.add(seq);
          this.#pending.push({ seq, resolve });
          this.maxPending = Math.max(this.maxPending, this.#pending.length);
        }),
      close: () => undefined,
    };
  }
  accept(): void {
    this.#options?.onConnect();
  }
  get pending(): number {
    return this.#pending.length;
  }
  /** PUBACKs one pending message at random. */
  ackOne(): void {
    this.#x ^= this.#x << 13;
    this.#x >>>= 0;
    this.#x ^= this.#x >>> 17;
    this.#x ^= this.#x << 5;
    this.#x >>>= 0;
    const [p] = this.#pending.splice(this.#x % this.#pending.length, 1);
    p?.resolve();
  }
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

/** Pushes `n` messages through a window of `window` while the vendor PUBACKs at random; returns the durable seqs. */
async function workload(flash: Flash, keys: KeyStore, vendor: ShufflingVendor, n: number, window: number): Promise<number[]> {
  const clock = new FakeClock();
  const crypto = nobleCrypto(seededRandom("window-crypto"));
  const queue = new FlashQueue(FlashRing.mount({ flash, tag: TAG }), terms, clock, testAtRest(keys));
  const sealer = new EnvelopeSealer({ crypto, clock, integration: "acme", contractVersion: "1", encryption: "hpke", vendorPublicKey: deriveKeyPair(crypto, new Uint8Array(32).fill(7)).publicKey });
  const mgr = new UplinkManager({
    integration: "acme", uplink: vendor, clock, timers: clock, random: seededRandom("window"), queue, sealer, window,
    connection: { host: "vendor.example", port: 8883, clientId: "gw", keepalive: 30 },
    onEvent: () => undefined,
  });
  const durable: number[] = [];
  mgr.start();
  vendor.accept();
  try {
    for (let i = 0; i < n; i++) {
      const r = await mgr.enqueue("acme/t", new Uint8Array([i & 0xff, 1, 2, 3]));
      if (!r.ok) break; // the power is gone: the queue fails closed
      durable.push(r.seq);
      await settle();
      if (i % 2 === 1 && vendor.pending > 0) vendor.ackOne();
      await settle();
    }
    while (vendor.pending > 0 && !(flash instanceof FaultyFlash && flash.dead)) {
      vendor.ackOne();
      await settle();
    }
  } catch (e) {
    if (!isPowerCut(e)) throw e;
  }
  mgr.stop();
  return durable;
}

describe("Uplink window over the flash queue", () => {
  it("acks that arrive together are retired with one consumption record", async () => {
    const q = mount(ramFlash(16 * 4096), new MemoryKeys());
    for (let i = 0; i < 8; i++) await q.push("t", new Uint8Array(10));
    const before = q.ring.nextSeq;
    await Promise.all([3, 1, 2, 8, 5, 4, 7, 6].map((s) => q.ack(s)));
    assert.equal(q.ring.nextSeq - before, 1, "one ring record for eight acks");
    assert.equal(q.count, 0);
  });

  it("with the ring's group commit, pushes and acks of one window share one flash program; nothing leaves before it is durable", async () => {
    const clock = new FakeClock();
    const flash = new FaultyFlash(ramFlash(16 * 4096));
    const keys = new MemoryKeys();
    const q = new FlashQueue(FlashRing.mount({ flash, tag: TAG, timers: clock, groupCommitMs: 5 }), terms, clock, testAtRest(keys));
    let resolved = 0;
    const pushes = Array.from({ length: 8 }, (_, i) => q.push("t", new Uint8Array([i])).then((r) => (resolved++, r)));
    await settle();
    assert.equal(resolved, 0, "no push resolves (no device PUBACK) before its record is durable");
    assert.equal(q.peek(), undefined, "nothing is handed out before it is durable");
    const before = flash.operations; // opening the first sector, if anything
    clock.tick(5);
    const results = await Promise.all(pushes);
    assert.ok(results.every((r) => r.ok));
    assert.equal(flash.operations - before, 1, "eight pushes, one program");
    assert.equal(q.peek()?.seq, 1);
    const acks = [8, 7, 6, 5, 4, 3, 2, 1].map((s) => q.ack(s));
    await settle();
    assert.equal(q.acknowledged, 8, "retired, but not yet durably: still counted against the window");
    clock.tick(5);
    await Promise.all(acks);
    assert.equal(q.acknowledged, 0);
    assert.equal(flash.operations - before, 2, "eight acks, one program");
    const again = mount(flash, keys);
    assert.deepEqual([again.count, again.nextSeq], [0, 9], "all eight consumed on flash");
  });

  it("a cut between PUBACK and the cursor's record redelivers at most the window, loses nothing, keeps order", async () => {
    const n = 24;
    const window = 4;
    const sectors = 4;
    const probe = new FaultyFlash(board(sectors).flash);
    const clean = new ShufflingVendor(99);
    await workload(probe, new MemoryKeys(), clean, n, window);
    assert.ok(clean.maxPending > 1 && clean.maxPending <= window, `the vendor held ${clean.maxPending} at once (window ${window})`);
    const total = probe.operations;
    let cuts = 0;
    let worst = 0;
    for (let cut = 1; cut <= total; cut++) {
      for (const tear of ["none", "half", "bits"] as TearMode[]) {
        const b = board(sectors);
        const vendor = new ShufflingVendor(cut * 7 + tear.length);
        const durable = await workload(new FaultyFlash(b.flash, { cutAt: cut, tear }), b.keys, vendor, n, window);
        const back = await drain(mount(b.flash, b.keys));
        const label = `cut ${cut}/${tear}`;
        for (const s of durable) assert.ok(vendor.received.has(s) || back.includes(s), `${label}: seq ${s} lost`);
        assert.ok(back.every((s, i) => i === 0 || s > back[i - 1]!), `${label}: out of order ${back.join(",")}`);
        const again = back.filter((s) => vendor.received.has(s)).length;
        assert.ok(again <= window, `${label}: ${again} redelivered, window ${window}`);
        worst = Math.max(worst, again);
        cuts++;
      }
    }
    assert.ok(cuts >= 3 * 20, `only ${cuts} cuts`);
    assert.ok(worst > 0, "some cut falls between a PUBACK and the cursor's record");
  });
});
