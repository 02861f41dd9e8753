/**
 * The Flash port's `durable()` (issue #14): the Node board's flash image shares one fdatasync among
 * the callers of a turn and never lets a flush cover a write made after it started; the ring and the
 * audit log acknowledge an append only once `durable()` resolved for it, and refuse after it failed.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { NorFlash, RamStore, type FlashStore } from "../../src/flash/nor.js";
import { FlashRing } from "../../src/flash/ring.js";
import { FlashAuditLog } from "../../src/audit/log.js";
import { FileStore } from "../../hosts/node/flash-file.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { FakeClock } from "../lib/fake-clock.js";
import { MemoryKeys } from "../lib/memory-keys.js";

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), "portcullis-durable-"));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const SIZE = 16 * 4096;
const turn = () => new Promise<void>((r) => setImmediate(r));
const word = (n: number) => new Uint8Array([n, n, n, n]);

/** A RAM store whose flush the test releases by hand: what is acknowledged before it is not durable. */
class GatedStore extends RamStore implements FlashStore {
  readonly gates: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  durable(): Promise<void> {
    return new Promise((resolve, reject) => this.gates.push({ resolve, reject }));
  }
  open(): void {
    for (const g of this.gates.splice(0)) g.resolve();
  }
}

describe("FileStore durable()", () => {
  it("shares one fdatasync among the durable() calls of a turn, and none when nothing was written", async () => {
    const store = new FileStore(path.join(tmp(), "flash.img"), SIZE);
    const flash = new NorFlash({ size: SIZE, store });
    const base = store.syncs;
    flash.program(0, word(1));
    const calls = Array.from({ length: 10 }, () => flash.durable!());
    await Promise.all(calls);
    assert.equal(store.syncs - base, 1, "ten durable() calls in one turn, one fdatasync");
    await flash.durable!();
    assert.equal(store.syncs - base, 1, "nothing written since: no fdatasync");
    store.close();
  });

  it("a write made after a flush started is not covered by it: it gets the next one", async () => {
    const store = new FileStore(path.join(tmp(), "flash.img"), SIZE);
    const flash = new NorFlash({ size: SIZE, store });
    const base = store.syncs;
    const order: string[] = [];
    flash.program(0, word(1));
    const first = flash.durable!().then(() => order.push("first"));
    await turn(); // the first fdatasync is under way now
    assert.equal(store.syncs - base, 1);
    flash.program(4, word(2));
    const second = flash.durable!().then(() => order.push("second"));
    const third = flash.durable!().then(() => order.push("third"));
    await Promise.all([first, second, third]);
    assert.deepEqual(order, ["first", "second", "third"]);
    assert.equal(store.syncs - base, 2, "the later write needed (and shared) a second fdatasync");
    store.close();
  });

  it("the blocking sync() counts as a flush: durable() after it costs none", async () => {
    const store = new FileStore(path.join(tmp(), "flash.img"), SIZE);
    const flash = new NorFlash({ size: SIZE, store });
    flash.program(0, word(1));
    flash.sync();
    const base = store.syncs;
    await flash.durable!();
    assert.equal(store.syncs, base);
    store.close();
  });

  it("keeps the NOR rules: a program that would set bits is refused before any write", () => {
    const store = new FileStore(path.join(tmp(), "flash.img"), SIZE);
    const flash = new NorFlash({ size: SIZE, store });
    flash.program(0, word(0x0f));
    assert.throws(() => flash.program(0, word(0xf0)), /erase first/);
    store.close();
  });
});

describe("ring and audit log on a flash with durable()", () => {
  it("an append resolves only once durable() resolved for it", async () => {
    const store = new GatedStore(SIZE);
    const flash = new NorFlash({ size: SIZE, store });
    const ring = FlashRing.mount({ flash, tag: 7 });
    let acked = 0;
    const all = [1, 2, 3].map((n) => ring.append(word(n)).then(() => acked++));
    await turn();
    assert.equal(flash.programs >= 1, true, "programmed at the end of the job");
    assert.equal(store.gates.length, 1, "one durable() for the job's three appends");
    assert.equal(acked, 0, "not acknowledged before durable() resolved");
    store.open();
    await Promise.all(all);
    assert.equal(acked, 3);
    assert.equal(ring.durableSeq, 3);
  });

  it("a failed durable() rejects its appends and the ring refuses the next", async () => {
    const store = new GatedStore(SIZE);
    const flash = new NorFlash({ size: SIZE, store });
    const ring = FlashRing.mount({ flash, tag: 7 });
    const a = ring.append(word(1));
    await turn();
    store.gates.shift()!.reject(new Error("EIO"));
    await assert.rejects(a, /EIO/);
    assert.throws(() => ring.append(word(2)), /EIO/);
  });

  it("on the file image: ten appends in one job cost one program and one fdatasync", async () => {
    const store = new FileStore(path.join(tmp(), "flash.img"), SIZE);
    const flash = new NorFlash({ size: SIZE, store });
    const ring = FlashRing.mount({ flash, tag: 7 });
    await ring.append(word(0)); // opens the head sector
    const programs = flash.programs;
    const syncs = store.syncs;
    await Promise.all(Array.from({ length: 10 }, (_, i) => ring.append(word(i + 1))));
    assert.equal(flash.programs - programs, 1);
    assert.equal(store.syncs - syncs, 1);
    ring.close();
    store.close();
  });

  it("the audit log's append (the PUBACK's and the forward's wait) waits for durable()", async () => {
    const store = new GatedStore(SIZE);
    const flash = new NorFlash({ size: SIZE, store });
    const clock = new FakeClock();
    const random = seededRandom("durable");
    // First boot seals epoch 0 with the blocking flush (RamStore has no sync: nothing to wait for).
    const log = await FlashAuditLog.open({ flash, crypto: nobleCrypto(random), random, keys: new MemoryKeys(), clock, timers: clock, options: { groupCommitMs: 20 } });
    store.open();
    let done = false;
    const p = log.append({ kind: "boot", decision: "info", reason: "test" }).then(() => (done = true));
    await turn();
    await turn();
    assert.equal(done, false, "acknowledged before durable() resolved");
    assert.ok(store.gates.length >= 1);
    store.open();
    await p;
    assert.equal(done, true);
    // A flow decision (what the gateway waits for before forwarding and PUBACKing) too.
    let flowed = false;
    const f = log.aggregate({ device: "d", integration: "i", decision: "allow", rule: "r", reason: "ok", bytes: 10, fieldsDropped: 0 }).then(() => (flowed = true));
    await turn();
    await turn();
    assert.equal(flowed, false);
    store.open();
    await f;
    assert.equal(flowed, true);
    store.open();
    const closing = log.close();
    store.open();
    await closing;
  });

  it("flow commits close on the flush, not the 2 s window: a flow waits for at most the commit in flight", async () => {
    const store = new GatedStore(SIZE);
    const flash = new NorFlash({ size: SIZE, store });
    const clock = new FakeClock();
    const random = seededRandom("flow");
    const log = await FlashAuditLog.open({ flash, crypto: nobleCrypto(random), random, keys: new MemoryKeys(), clock, timers: clock, options: { groupCommitMs: 20, flowCommitMs: 2000 } });
    store.open();
    const flow = (device: string) => log.aggregate({ device, integration: "i", decision: "allow", rule: "r", reason: "ok", bytes: 10, fieldsDropped: 0 });
    const first = flow("a");
    await turn();
    assert.equal(store.gates.length, 1, "the first flow's commit is becoming durable");
    const later = [flow("b"), flow("c")];
    await turn();
    assert.equal(store.gates.length, 1, "later flows wait for the commit in flight, they do not start their own");
    store.open();
    await first;
    await turn();
    store.open();
    await Promise.all(later);
    // The clock never moved: neither flowCommitMs nor FLOW_COMMIT_BATCH held any flow back.
    const commits = log.query({ kind: "flow-summary" }).filter((r) => r.reason === "commit").map((r) => r.detail?.i);
    assert.deepEqual(commits, [1, 2]);
    const closing = log.close();
    store.open();
    await closing;
  });
});
