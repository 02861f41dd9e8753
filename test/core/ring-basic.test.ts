/** The flash record ring: CRC-32C vector, append/iterate/remount, torn tails, corruption gaps, wrap and wear. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { crc32c } from "../../src/flash/crc32c.js";
import { FlashRing, type RingEntry } from "../../src/flash/ring.js";
import { ramFlash, type NorFlash } from "../../src/flash/nor.js";
import { FaultyFlash, tornErase } from "../lib/faulty-flash.js";
import { FakeClock } from "../lib/fake-clock.js";
import type { Flash } from "../../src/ports.js";

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const rec = (n: number, len = 20) => new Uint8Array(len).map((_, i) => (n * 31 + i) & 0xff);
const records = (es: Iterable<RingEntry>) => [...es].filter((e) => e.type === "record");

/** Counts bytes read, to prove mount reads headers and one sector, not the whole partition. */
class CountingFlash implements Flash {
  readonly size: number;
  readonly sectorSize: number;
  readonly programSize: number;
  bytesRead = 0;
  readonly inner: Flash;
  constructor(inner: Flash) {
    this.inner = inner;
    this.size = inner.size;
    this.sectorSize = inner.sectorSize;
    this.programSize = inner.programSize;
  }
  read(o: number, n: number) {
    this.bytesRead += n;
    return this.inner.read(o, n);
  }
  program(o: number, d: Uint8Array) {
    this.inner.program(o, d);
  }
  erase(s: number) {
    this.inner.erase(s);
  }
}

describe("CRC-32C", () => {
  it("matches the RFC 3720 check value and the §B.4 zero-block vector", () => {
    assert.equal(crc32c(ascii("123456789")), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
    assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  });
  it("is incremental", () => {
    fc.assert(fc.property(fc.uint8Array(), fc.nat(), (data, cut) => {
      const k = data.length === 0 ? 0 : cut % data.length;
      assert.equal(crc32c(data, k, data.length, crc32c(data, 0, k)), crc32c(data));
    }));
  });
});

describe("FlashRing", () => {
  it("asks the flash to sync only at acknowledgement points: once per group commit, never for a trim", async () => {
    const flash = ramFlash(8 * 4096);
    const clock = new FakeClock();
    const ring = FlashRing.mount({ flash, tag: 1, timers: clock, groupCommitMs: 20 });
    const before = flash.syncs;
    const acks = Array.from({ length: 30 }, (_, i) => ring.append(rec(i)));
    assert.equal(flash.syncs, before, "nothing acknowledged yet, nothing synced");
    clock.tick(20);
    const seqs = await Promise.all(acks);
    assert.equal(flash.syncs, before + 1, "one sync for the whole batch, before any append resolved");
    for (let i = 0; i < 100; i++) void ring.append(rec(i, 60)); // into a second sector, so there is one to trim
    clock.tick(20);
    const synced = flash.syncs;
    ring.trimThrough(ring.spans()[0]!.lastSeq);
    assert.equal(flash.syncs, synced, "a trim is not an acknowledgement point");
    assert.ok(seqs.length === 30);
    const flash2 = ramFlash(8 * 4096);
    const direct = FlashRing.mount({ flash: flash2, tag: 2 });
    const s0 = flash2.syncs;
    await direct.append(rec(1));
    await direct.append(rec(2));
    assert.equal(flash2.syncs, s0 + 2, "without group commit every append is its own acknowledgement point");
  });
  it("appends, iterates in order and continues the sequence after a remount", async () => {
    const flash = ramFlash(8 * 4096);
    let ring = FlashRing.mount({ flash, tag: 1 });
    for (let i = 0; i < 500; i++) assert.equal(await ring.append(rec(i)), i + 1);
    ring = FlashRing.mount({ flash, tag: 1 });
    assert.equal(ring.nextSeq, 501);
    const got = records(ring.entries());
    assert.equal(got.length, 500);
    got.forEach((e, i) => e.type === "record" && assert.deepEqual(e.data, rec(i)));
    assert.deepEqual(ring.read(321), rec(320));
    assert.equal(await ring.append(rec(9)), 501);
  });

  it("round-trips any payloads (property)", async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 60 }), async (ps) => {
      const flash = ramFlash(16 * 4096);
      const ring = FlashRing.mount({ flash, tag: 7 });
      for (const p of ps) await ring.append(p);
      const again = FlashRing.mount({ flash, tag: 7 });
      assert.deepEqual(records(again.entries()).map((e) => e.type === "record" && [...e.data]), ps.map((p) => [...p]));
    }), { numRuns: 40 });
  });

  it("mount reads the headers and the head sector only", async () => {
    const flash = ramFlash(64 * 4096);
    const ring = FlashRing.mount({ flash, tag: 1 });
    while (ring.freeSectors > 3) await ring.append(rec(1, 200));
    const counting = new CountingFlash(flash);
    const again = FlashRing.mount({ flash: counting, tag: 1 });
    assert.equal(again.nextSeq, ring.nextSeq);
    assert.ok(counting.bytesRead <= 64 * 32 + 4096, `read ${counting.bytesRead} bytes`);
  });

  it("discards a torn tail, resumes after it and keeps the sequence dense", async () => {
    for (const tear of ["half", "bits"] as const) {
      const inner = ramFlash(8 * 4096);
      const setup = FlashRing.mount({ flash: inner, tag: 1 });
      for (let i = 0; i < 5; i++) await setup.append(rec(i));
      const ops = new FaultyFlash(inner).operations;
      const faulty = new FaultyFlash(inner, { cutAt: ops + 1, tear });
      const ring = FlashRing.mount({ flash: faulty, tag: 1 });
      await assert.rejects(ring.append(rec(5, 100)), /power cut/);
      const after = FlashRing.mount({ flash: inner, tag: 1 });
      assert.equal(after.nextSeq, 6);
      assert.equal(await after.append(rec(50)), 6);
      const es = [...after.entries()];
      assert.deepEqual(es.map((e) => e.type === "record" ? e.seq : "gap"), [1, 2, 3, 4, 5, 6]);
      assert.equal(after.spans().length, 1, "appends continue after the torn bytes");
      assert.deepEqual(after.read(6), rec(50));
    }
  });

  it("surfaces a checksum failure in the middle as a gap, not a silent skip", async () => {
    const flash = ramFlash(8 * 4096);
    const ring = FlashRing.mount({ flash, tag: 1 });
    for (let i = 0; i < 10; i++) await ring.append(rec(i));
    // Clear a bit inside record 4's payload (programming may clear bits).
    const off = 32 + 3 * 32 + 14;
    const b = flash.read(off - (off % 4), 4);
    b[off % 4] = b[off % 4]! & 0xfe;
    flash.program(off - (off % 4), b);
    const es = [...FlashRing.mount({ flash, tag: 1 }).entries()];
    assert.deepEqual(es.filter((e) => e.type === "gap"), [{ type: "gap", from: 4, to: 4 }]);
    assert.equal(records(es).length, 9);
  });

  it("wraps in ring order, trims whole sectors and spreads erases evenly", async () => {
    const flash: NorFlash = ramFlash(8 * 4096);
    const ring = FlashRing.mount({ flash, tag: 1 });
    for (let i = 0; i < 4000; i++) {
      if (!ring.canAppend(100)) ring.trimThrough(ring.spans()[0]!.lastSeq);
      await ring.append(rec(i, 100));
    }
    ring.maintain();
    const counts = [...flash.eraseCounts];
    assert.ok(Math.max(...counts) - Math.min(...counts) <= 2, `erase counts ${counts}`);
    assert.deepEqual([...FlashRing.mount({ flash, tag: 1 }).eraseCounts], counts.map((c) => c), "headers keep erase counts");
    const again = FlashRing.mount({ flash, tag: 1 });
    assert.equal(again.nextSeq, 4001);
    const got = records(again.entries());
    assert.equal(got.at(-1)!.type === "record" && got.at(-1)!.seq, 4000);
    assert.equal(got.length, 4001 - again.firstSeq);
  });

  it("rejects when full (keeping the reserve) and oversized records, writing nothing", async () => {
    const flash = ramFlash(4 * 4096);
    const ring = FlashRing.mount({ flash, tag: 1 });
    assert.throws(() => ring.append(new Uint8Array(ring.maxPayload + 1)), /exceeds/);
    let n = 0;
    while (ring.canAppend(1000)) {
      await ring.append(rec(n++, 1000));
    }
    assert.throws(() => ring.append(rec(0, 1000)), /ring full/);
    assert.equal(ring.freeSectors, 1, "one reserve sector kept");
    await ring.append(rec(0, 1000), 0);
    assert.equal(ring.nextSeq, n + 2);
  });

  it("group commit programs a window of appends in one operation", async () => {
    const clock = new FakeClock();
    const flash = ramFlash(8 * 4096);
    const ring = FlashRing.mount({ flash, tag: 1, groupCommitMs: 10, timers: clock, prepareAhead: 1 });
    clock.tick(1000);
    const before = flash.programs;
    let done = 0;
    const ps = Array.from({ length: 20 }, (_, i) => ring.append(rec(i)).then((s) => (done++, s)));
    await Promise.resolve();
    assert.equal(done, 0, "not durable before the window closes");
    clock.tick(10);
    assert.deepEqual(await Promise.all(ps), Array.from({ length: 20 }, (_, i) => i + 1));
    assert.equal(flash.programs - before, 2, "one part-B activation and one batched program");
    ring.close();
    assert.equal(clock.pendingCount, 0);
  });

  it("erases ahead on the idle timer, not on the append path", async () => {
    const clock = new FakeClock();
    const flash = ramFlash(16 * 4096);
    const ring = FlashRing.mount({ flash, tag: 1, timers: clock });
    clock.tick(1000);
    for (let i = 0; i < 400; i++) {
      await ring.append(rec(i, 100));
      clock.tick(1000);
    }
    assert.equal(ring.syncErases, 0);
  });

  it("refuses to mount over another ring's sectors (overlapping regions), and shares a flash side by side", async () => {
    const flash = ramFlash(8 * 4096);
    const a = FlashRing.mount({ flash, tag: 1, size: 4 * 4096 });
    await a.append(rec(1));
    assert.throws(() => FlashRing.mount({ flash, tag: 2 }), /belongs to ring 1; the regions overlap/);
    const b = FlashRing.mount({ flash, tag: 2, offset: 4 * 4096 });
    await b.append(rec(2));
    assert.deepEqual(FlashRing.mount({ flash, tag: 1, size: 4 * 4096 }).read(1), rec(1));
    assert.deepEqual(FlashRing.mount({ flash, tag: 2, offset: 4 * 4096 }).read(1), rec(2));
  });

  it("erase tears differ: half erases the first half only, bits leaves scattered cells across the sector", () => {
    const old = new Uint8Array(4096).map((_, i) => i % 3 === 0 ? 0 : 0x5a);
    const half = tornErase(old, "half", 3);
    assert.ok(half.subarray(0, 2048).every((b) => b === 0xff));
    assert.deepEqual(half.subarray(2048), old.subarray(2048));
    const bits = tornErase(old, "bits", 3);
    const erased = (a: Uint8Array) => a.filter((b) => b === 0xff).length;
    for (const part of [bits.subarray(0, 2048), bits.subarray(2048)]) {
      assert.ok(erased(part) > 700 && erased(part) < 1500, `${erased(part)} of 2048 erased`);
    }
    assert.ok(bits.every((b, i) => (b & old[i]!) === old[i]), "an erase only sets bits");
    assert.notDeepEqual(bits, tornErase(old, "bits", 4), "the pattern differs per sector");
  });

  it("an erase cut short, in either tear mode, leaves a sector the ring erases again before use", async () => {
    for (const tear of ["half", "bits"] as const) {
      const inner = ramFlash(4 * 4096);
      const setup = FlashRing.mount({ flash: inner, tag: 1, prepareAhead: 0 });
      let n = 0;
      while (setup.spans().length < 3) await setup.append(rec(n++, 300));
      setup.trimThrough(setup.spans()[0]!.lastSeq); // sector 0 retired, erased by the next maintain
      const cut = new FaultyFlash(inner, { cutAt: 1, tear });
      const ring = FlashRing.mount({ flash: cut, tag: 1, prepareAhead: 1 });
      assert.throws(() => ring.maintain(), /power cut/);
      const after = FlashRing.mount({ flash: inner, tag: 1 });
      const kept = records(after.entries()).length;
      while (after.spans().length < 3 || after.spans()[2]!.sector !== 0) {
        if (!after.canAppend(300)) after.trimThrough(after.spans()[0]!.lastSeq);
        await after.append(rec(n++, 300));
      }
      assert.ok(kept > 0);
      const last = after.nextSeq - 1;
      assert.deepEqual(FlashRing.mount({ flash: inner, tag: 1 }).read(last), rec(n - 1, 300), tear);
    }
  });

  it("a 'prepared' header over cells that are not erased is not trusted: the sector is erased again", async () => {
    const flash = ramFlash(4 * 4096);
    const ring = FlashRing.mount({ flash, tag: 1, prepareAhead: 2 });
    await ring.append(rec(1));
    const again = FlashRing.mount({ flash, tag: 1 });
    // Sector 1 reads "prepared" (part A intact, part B erased) but an old record survives below it,
    // as an erase that stopped part way may leave it.
    flash.program(4096 + 512, new Uint8Array(64));
    const before = again.syncErases;
    let n = 0;
    while (again.spans().length < 2) await again.append(rec(n++, 500));
    assert.equal(again.syncErases, before + 1);
    assert.deepEqual(FlashRing.mount({ flash, tag: 1 }).read(again.nextSeq - 1), rec(n - 1, 500));
  });
});
