/** The flash audit log: sequence, chain and seals, encryption at rest, query, retention, hold, aggregation. */
import assert from "node:assert/strict";
import { ramFlash } from "../../src/flash/nor.js";
import type { Flash } from "../../src/ports.js";
import { verifyExport } from "../../src/audit/verify.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { newDevice, openLog, type TestDevice } from "../powerloss/support.js";
import type { FlashAuditLog } from "../../src/audit/log.js";
import type { AuditEvent } from "../../src/audit/types.js";

const crypto = nobleCrypto(seededRandom("verify"));
const ev = (i: number, extra: Partial<AuditEvent> = {}): AuditEvent => ({
  kind: "connect", decision: "info", device: `dev-${i % 5}`, integration: i % 2 ? "hue-cloud" : "tado", detail: { n: i }, ...extra,
});
function verify(log: FlashAuditLog, dev: TestDevice, from?: number, to?: number) {
  return verifyExport(log.exportJsonl(from, to), dev.verificationKey!, crypto);
}
function contains(hay: Uint8Array, needle: string): boolean {
  const n = Uint8Array.from(needle, (c) => c.charCodeAt(0));
  outer: for (let i = 0; i + n.length <= hay.length; i++) {
    for (let j = 0; j < n.length; j++) if (hay[i + j] !== n[j]) continue outer;
    return true;
  }
  return false;
}

describe("FlashAuditLog", () => {
  it("first boot hands out the verification key once, seals epoch 0 and keeps no k0", async () => {
    const flash = ramFlash(32 * 4096);
    const dev = newDevice();
    let calls = 0;
    const log = await openLog(flash, dev);
    calls += dev.verificationKey ? 1 : 0;
    const k0 = dev.verificationKey!;
    assert.equal(log.epoch, 1);
    assert.deepEqual(log.query({}).map((r) => [r.seq, r.kind]), [[1, "seal"]]);
    const stored = dev.keys.get("audit.seal")!;
    assert.ok(!contains(stored, String.fromCharCode(...k0)), "k0 is not in the key store");
    await log.close();
    dev.verificationKey = undefined;
    const again = await openLog(flash, dev);
    assert.equal(dev.verificationKey, undefined, "no second verification key");
    assert.equal(calls, 1);
    assert.equal(again.nextSeq, 3, "seq continues after the shutdown seal");
    dev.verificationKey = k0;
    assert.ok(verify(again, dev).ok);
  });

  it("appends, queries with every filter, and continues the sequence across restarts", async () => {
    const flash = ramFlash(32 * 4096);
    const dev = newDevice();
    let log = await openLog(flash, dev);
    const t0 = dev.clock.now();
    const seqs: number[] = [];
    for (let i = 0; i < 40; i++) {
      seqs.push(await log.append(ev(i, { topic: "zigbee/ünïcødé/☃" })));
      dev.clock.tick(1000);
    }
    await log.close();
    log = await openLog(flash, dev);
    const got = log.query({ kind: "connect" });
    assert.deepEqual(got.map((r) => r.seq), seqs);
    assert.equal(got[3]!.topic, "zigbee/ünïcødé/☃");
    assert.deepEqual(got[3]!.detail, { n: 3 });
    assert.equal(log.query({ device: "dev-1", kind: "connect" }).length, 8);
    assert.equal(log.query({ integration: "tado", kind: "connect" }).length, 20);
    assert.deepEqual(log.query({ since: seqs[5]!, until: seqs[7]! }).map((r) => r.seq), seqs.slice(5, 8));
    assert.deepEqual(log.query({ fromTime: t0 + 10_000, toTime: t0 + 12_000, kind: "connect" }).map((r) => r.detail!.n), [10, 11, 12]);
    assert.equal(log.query({ limit: 3 }).length, 3);
    const next = await log.append(ev(99));
    assert.equal(next, seqs.at(-1)! + 2, "a restart adds only the shutdown seal");
    assert.ok(verify(log, dev).ok);
  });

  it("rejects malformed and oversized events without writing", async () => {
    const log = await openLog(ramFlash(16 * 4096), newDevice());
    const before = log.nextSeq;
    await assert.rejects(log.append({ kind: "bogus" as "boot", decision: "info" }), /unknown audit kind/);
    await assert.rejects(log.append(ev(1, { detail: { x: NaN } })), /not finite/);
    await assert.rejects(log.append(ev(1, { topic: "t".repeat(300) })), /longer than/);
    const huge: Record<string, string> = {};
    for (let i = 0; i < 30; i++) huge[`k${i}`] = "v".repeat(200);
    await assert.rejects(log.append(ev(1, { detail: huge })), /exceeds/);
    assert.equal(log.nextSeq, before);
  });

  it("seals every 256 records and every 15 minutes, empty epochs too", async () => {
    const dev = newDevice();
    const log = await openLog(ramFlash(64 * 4096), dev);
    for (let i = 0; i < 600; i++) await log.append(ev(i));
    const seals = log.query({ kind: "seal" });
    assert.deepEqual(seals.map((s) => s.detail!.last as number - (s.detail!.first as number) + 1), [0, 256, 256]);
    const epoch = log.epoch;
    dev.clock.tick(15 * 60_000);
    dev.clock.tick(15 * 60_000);
    assert.equal(log.epoch, epoch + 2, "two empty epochs sealed by the timer");
    assert.ok(verify(log, dev).ok);
  });

  it("encrypts record bodies at rest: a flash dump shows no device, topic or integration", async () => {
    const flash = ramFlash(16 * 4096);
    const log = await openLog(flash, newDevice());
    for (let i = 0; i < 20; i++) await log.append(ev(i, { topic: "secret/livingroom/presence" }));
    await log.close();
    const dump = flash.read(0, flash.size);
    for (const s of ["livingroom", "dev-1", "hue-cloud", "connect"]) assert.ok(!contains(dump, s), s);
  });

  it("purges by retention per kind, leaving a purge record, and the rest still verifies", async () => {
    const dev = newDevice();
    const log = await openLog(ramFlash(16 * 4096), dev, { retention: { connect: 3_600_000 }, retentionCheckMs: 1e12 });
    for (let i = 0; i < 200; i++) await log.append(ev(i, { detail: { pad: "x".repeat(60) } }));
    for (let i = 0; i < 5; i++) await log.append(ev(i, { kind: "admin" }));
    dev.clock.tick(2 * 3_600_000);
    const through = log.applyRetention();
    assert.ok(through !== undefined && through > 100, `purged through ${through}`);
    const purge = log.query({ kind: "purge" });
    assert.ok(purge.length >= 1, "one purge record per sector given up");
    assert.equal(purge.at(-1)!.detail!.through, through);
    assert.ok(purge.every((p) => p.detail!.reason === "retention"));
    assert.equal(log.stats().firstSeq, through + 1);
    assert.equal(log.query({ kind: "admin" }).length, 5, "kinds without retention are kept");
    assert.ok(verify(log, dev).ok, "an export from the oldest retained record verifies");
  });

  it("under legal hold purges nothing, rejects when full and raises an alarm; release resumes", async () => {
    const dev = newDevice();
    const log = await openLog(ramFlash(8 * 4096), dev, { retention: { connect: 1 } });
    await log.hold("incident 42");
    dev.clock.tick(10);
    assert.equal(log.applyRetention(), undefined);
    let accepted = 0;
    let refused: unknown;
    for (let i = 0; i < 2000 && !refused; i++) {
      try {
        await log.append(ev(i, { detail: { pad: "y".repeat(100) } }));
        accepted++;
      } catch (e) {
        refused = e;
      }
    }
    assert.match(String(refused), /full under legal hold/);
    assert.equal(log.stats().firstSeq, 1, "nothing held was overwritten");
    assert.equal(dev.alarms.filter((a) => /legal hold/.test(a)).length, 1);
    assert.ok(verify(log, dev).ok, "the export still seals from the reserve");
    await log.release();
    dev.clock.tick(10); // the held records' 1 ms retention has passed: now they may be purged
    for (let i = 0; i < 50 && log.stats().firstSeq === 1; i++) await log.append(ev(i, { detail: { pad: "y".repeat(100) } }));
    assert.ok(log.stats().firstSeq > 1, "space was made by purging");
    assert.equal(log.query({ kind: "purge" }).length >= 1, true);
    assert.ok(accepted > 100);
  });

  it("without a hold, a full partition purges the oldest sector and records it", async () => {
    const dev = newDevice();
    const log = await openLog(ramFlash(8 * 4096), dev);
    for (let i = 0; i < 1500; i++) await log.append(ev(i, { detail: { pad: "z".repeat(80) } }));
    const purges = log.query({ kind: "purge" });
    assert.ok(purges.length > 0 && purges.every((p) => p.detail!.reason === "full"));
    assert.equal(log.stats().firstSeq, (purges.at(-1)!.detail!.through as number) + 1);
    assert.ok(verify(log, dev).ok);
  });

  it("fails closed when the sealing state is lost but the flash holds records", async () => {
    const flash = ramFlash(16 * 4096);
    const dev = newDevice();
    const log = await openLog(flash, dev);
    await log.append(ev(1));
    await log.close();
    dev.keys.delete("audit.seal");
    const timers = dev.clock.pendingCount;
    await assert.rejects(openLog(flash, dev), /no sealing state/);
    assert.equal(dev.clock.pendingCount, timers, "a failed open leaves no timer behind");
    assert.ok(dev.alarms.some((a) => /no sealing state/.test(a)));
  });

  it("group commit makes appends durable together when the window closes", async () => {
    const flash = ramFlash(16 * 4096);
    const dev = newDevice();
    const log = await openLog(flash, dev, { groupCommitMs: 20 });
    const programs = flash.programs;
    let done = 0;
    const ps = [1, 2, 3, 4, 5].map((i) => log.append(ev(i)).then(() => done++));
    await Promise.resolve();
    assert.equal(done, 0);
    dev.clock.tick(20);
    await Promise.all(ps);
    assert.equal(flash.programs - programs, 1);
  });

  it("aggregates allowed flows per minute and counts repeated denials on a follow-up record", async () => {
    const dev = newDevice();
    const log = await openLog(ramFlash(32 * 4096), dev, { summaryEveryMs: 5 * 60_000 });
    dev.clock.tick(60_000 - (dev.clock.now() % 60_000));
    const denySeq = await log.aggregate({ device: "cam", integration: "vendor", decision: "deny", rule: null, reason: "no-contract", bytes: 10, fieldsDropped: 0 });
    // Allowed flows resolve once their flow commit (at most every second) is durable.
    const allowed: Promise<unknown>[] = [];
    for (let m = 0; m < 5; m++) {
      for (let d = 0; d < 50; d++) {
        allowed.push(log.aggregate({ device: `dev-${d}`, integration: "cloud", decision: "allow", rule: "r1", reason: "ok", bytes: 100, fieldsDropped: 1 }));
        allowed.push(log.aggregate({ device: `dev-${d}`, integration: "cloud", decision: "allow", rule: "r1", reason: "ok", bytes: 50, fieldsDropped: 0 }));
      }
      if (m === 0) for (let i = 0; i < 3; i++) await log.aggregate({ device: "cam", integration: "vendor", decision: "deny", rule: null, reason: "no-contract", bytes: 10, fieldsDropped: 0 });
      dev.clock.tick(60_000);
    }
    dev.clock.tick(5 * 60_000);
    await Promise.all(allowed);
    const denials = log.query({ kind: "flow" });
    assert.deepEqual(denials.map((r) => [r.seq, r.decision, r.device]), [[denySeq, "deny", "cam"]]);
    const summaries = log.query({ kind: "flow-summary" });
    const rows = summaries.flatMap((s) => s.summary ?? []);
    const commits = summaries.filter((s) => s.reason === "commit");
    assert.equal(commits.reduce((n, c) => n + (c.detail!.cloud as number), 0), 500, "flow commits count every allowed flow");
    assert.equal(rows.length, 250);
    assert.ok(rows.every((r) => r.count === 2 && r.bytes === 150 && r.fieldsDropped === 1));
    const repeat = summaries.find((s) => s.decision === "deny")!;
    assert.deepEqual(repeat.detail, { repeatOf: denySeq, repeats: 3, minute: repeat.detail!.minute });
    assert.equal(log.query({ kind: "flow-summary", device: "dev-7" }).length >= 1, true);
    assert.ok(verify(log, dev).ok);
  });

  it("surfaces a record that fails its checksum in the middle as a corruption record, and still verifies the rest", async () => {
    const flash = ramFlash(16 * 4096);
    const dev = newDevice();
    const log = await openLog(flash, dev);
    for (let i = 0; i < 30; i++) await log.append(ev(i));
    await log.close();
    // Clear one bit inside a stored record in the middle of the first sector (programming clears bits).
    const at = 32 + 12 * 100;
    const w = flash.read(at, 4);
    w[0] = w[0]! & 0xef;
    flash.program(at, w);
    const again = await openLog(flash, dev);
    dev.clock.tick(24 * 3600_000);
    assert.equal(again.query({ kind: "corruption" }).length, 1, "the daily scrub found it");
    assert.equal(again.scrub(), 1);
    const c = again.query({ kind: "corruption" });
    assert.equal(c.length, 1);
    assert.ok((c[0]!.detail!.from as number) > 1 && c[0]!.detail!.from === c[0]!.detail!.to);
    assert.equal(again.scrub(), 1, "a hole is reported once");
    assert.equal(again.query({ kind: "corruption" }).length, 1);
    assert.ok(dev.alarms.some((a) => /failed their integrity check/.test(a)));
    const r = verify(again, dev);
    assert.equal(r.ok, false, "the export shows the hole");
    assert.equal(r.badSeq, c[0]!.detail!.from);
  });

  it("mounts a full partition by reading sector headers and the newest sector only", async () => {
    const flash = ramFlash(64 * 4096);
    const dev = newDevice();
    const log = await openLog(flash, dev, { sealEveryMs: 1e12 });
    for (let i = 0; log.stats().freeSectors > 3; i++) await log.append(ev(i, { detail: { pad: "x".repeat(100) } }));
    await log.close();
    let bytesRead = 0;
    const counting: Flash = {
      size: flash.size, sectorSize: flash.sectorSize, programSize: flash.programSize,
      read: (o, n) => ((bytesRead += n), flash.read(o, n)),
      program: (o, d) => flash.program(o, d),
      erase: (s) => flash.erase(s),
    };
    await openLog(counting, dev, { sealEveryMs: 1e12 });
    assert.ok(bytesRead <= 64 * 32 + 3 * 4096, `open read ${bytesRead} bytes of ${flash.size}`);
  });

  it("keeps a legal hold across reboots", async () => {
    const flash = ramFlash(16 * 4096);
    const dev = newDevice();
    const log = await openLog(flash, dev, { retention: { connect: 1 } });
    await log.append(ev(1));
    await log.hold("case 7");
    await log.close();
    const again = await openLog(flash, dev, { retention: { connect: 1 } });
    assert.equal(again.held, "case 7");
    dev.clock.tick(10);
    assert.equal(again.applyRetention(), undefined);
    await again.release();
    assert.equal(again.held, undefined);
    const third = await openLog(flash, dev);
    assert.equal(third.held, undefined);
    assert.deepEqual(third.query({ kind: "incident" }).map((r) => r.reason), ["legal-hold", "legal-hold-released"]);
  });
});
