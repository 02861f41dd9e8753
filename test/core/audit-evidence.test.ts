/**
 * The evidence promise under attack and crash (issue 13): unauthenticated noise is aggregated and
 * bounded, records within their retention are never purged (a full log refuses instead), allowed
 * flows resolve only once a durable flow commit counts them, and an unclean stop is recorded.
 */
import assert from "node:assert/strict";
import { ramFlash } from "../../src/flash/nor.js";
import { isNoise, MAX_NOISE_KEYS, sourceAddress } from "../../src/audit/noise.js";
import { NOISE_SHARE_PERCENT } from "../../src/audit/log.js";
import type { AuditEvent, AuditRecord } from "../../src/audit/types.js";
import { newDevice, openLog } from "../powerloss/support.js";
import { parseGatewayConfig } from "../../src/config.js";
import { projectedHistoryMs } from "../../src/audit/purge.js";
import { FLOW_COMMIT_BATCH } from "../../src/audit/aggregate.js";

const DAY = 24 * 3600_000;
const badToken = (remote: string): AuditEvent => ({ kind: "admin", decision: "deny", reason: "bad-token", detail: { remote, path: "/api/v1/audit" } });
const refusal = (remote: string, claimed: string): AuditEvent => ({ kind: "auth", decision: "deny", reason: "bad-credentials", detail: { remote, claimed } });
const isNoiseRecord = (r: AuditRecord) => r.decision === "deny" && typeof r.detail?.count === "number";

describe("audit evidence under attack and crash", () => {
  it("gateway.json audit.flowCommitMs: whole milliseconds 0..60000, bad values named", () => {
    const parse = (v: unknown) => parseGatewayConfig(JSON.stringify({ name: "h", devices: [], audit: { flowCommitMs: v } }), []);
    const ok = parse(500);
    assert.ok(ok.ok && ok.config.audit.flowCommitMs === 500);
    for (const bad of [-1, 1.5, 60_001, "2s"]) {
      const r = parse(bad);
      assert.ok(!r.ok && r.errors.some((e) => e.path === "/audit/flowCommitMs"), String(bad));
    }
  });

  it("projects the history a partition holds from the rate so far (the boot-time retention check)", () => {
    assert.equal(projectedHistoryMs(0, 1800_000, 500_000, 1_000_000), undefined, "younger than an hour: too early");
    assert.equal(projectedHistoryMs(0, 7200_000, 10_000, 1_000_000), undefined, "under 5 % used: too early");
    assert.equal(projectedHistoryMs(0, 2 * 3600_000, 250_000, 1_000_000), 8 * 3600_000);
  });

  it("tells noise from evidence, and keys sources by address without the port", () => {
    assert.ok(isNoise(badToken("a")));
    assert.ok(isNoise({ kind: "admin", decision: "deny", reason: "no-token" }));
    assert.ok(isNoise({ kind: "connect", decision: "deny", reason: "limit", detail: { remote: "x" } }));
    assert.ok(isNoise({ kind: "auth", decision: "deny", reason: "bad-credentials", device: "claimed-id" }));
    assert.ok(isNoise({ kind: "protocol", decision: "deny", reason: "expected-connect" }));
    assert.ok(!isNoise({ kind: "protocol", decision: "deny", reason: "malformed", device: "plug" }), "an authenticated device's error is evidence");
    assert.ok(!isNoise({ kind: "auth", decision: "deny", reason: "not-authorized", device: "plug", detail: { op: "subscribe" } }));
    assert.ok(!isNoise({ kind: "admin", decision: "allow", reason: "export" }));
    assert.ok(!isNoise({ kind: "flow", decision: "deny", reason: "no-contract", device: "cam" }));
    assert.deepEqual(["192.0.2.7:51234", "[2001:db8::1]:443", "2001:db8::1", "", undefined].map(sourceAddress), ["192.0.2.7", "2001:db8::1", "2001:db8::1", "unknown", "unknown"]);
  });

  it("60,000 wrong tokens in a minute from one host become one record with the count", async () => {
    const dev = newDevice();
    const flash = ramFlash(64 * 4096);
    const log = await openLog(flash, dev);
    dev.clock.tick(60_000 - (dev.clock.now() % 60_000));
    const seq0 = log.nextSeq;
    for (let i = 0; i < 60_000; i++) log.noise(badToken(`198.51.100.7:${1024 + (i % 60000)}`));
    assert.equal(log.nextSeq, seq0, "nothing is written while the minute runs");
    dev.clock.tick(60_000);
    const rows = log.query({ kind: "admin" });
    assert.equal(rows.length, 1);
    assert.deepEqual([rows[0]!.reason, rows[0]!.detail!.remote, rows[0]!.detail!.count], ["bad-token", "198.51.100.7", 60_000]);
    await log.close();
  });

  it("an event its source already tallied adds its own count (the broker's evictions)", async () => {
    const dev = newDevice();
    const log = await openLog(ramFlash(64 * 4096), dev);
    dev.clock.tick(60_000 - (dev.clock.now() % 60_000));
    const evicted = (count: number): AuditEvent => ({ kind: "connect", decision: "deny", reason: "evicted", detail: { remote: "203.0.113.5:4000", count } });
    log.noise(evicted(1));
    log.noise(evicted(499));
    dev.clock.tick(60_000);
    const rows = log.query({ kind: "connect" });
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.detail!.count, 500);
    await log.close();
  });

  it("a 64 KiB claimed client id is cut to 64 characters and does not block the noise behind it", async () => {
    const dev = newDevice();
    const log = await openLog(ramFlash(32 * 4096), dev);
    log.noise(refusal("192.0.2.1:5", "x".repeat(65_535)));
    log.noise(refusal("192.0.2.2:5", "cam"));
    dev.clock.tick(120_000);
    const rows = log.query({ kind: "auth" }).filter(isNoiseRecord);
    assert.deepEqual(rows.map((r) => [r.detail!.remote, (r.detail!.claimed as string).length]), [["192.0.2.1", 64], ["192.0.2.2", 3]]);
    await log.close();
  });

  it("noise from many sources stays within its share for hours: the first seal and the evidence stay", async () => {
    const dev = newDevice();
    const flash = ramFlash(64 * 4096);
    const log = await openLog(flash, dev, { retention: { consent: 30 * DAY } });
    await log.append({ kind: "consent", decision: "info", integration: "cloud", reason: "opt-in" });
    const erases0 = flash.erases;
    for (let minute = 0; minute < 180; minute++) {
      for (let i = 0; i < 300; i++) {
        log.noise(refusal(`10.${minute % 256}.${i >> 8}.${i & 255}:40000`, `cam-${i}`));
        log.noise({ kind: "protocol", decision: "deny", reason: "malformed", detail: { remote: `10.9.9.${i & 255}:1` } });
      }
      dev.clock.tick(60_000);
    }
    const s = log.stats();
    assert.equal(s.firstSeq, 1, "nothing was purged: the first-boot seal is still there");
    assert.equal(log.query({ kind: "consent" }).length, 1);
    const noise = [...log.query({ kind: "auth" }), ...log.query({ kind: "protocol" })].filter(isNoiseRecord);
    assert.ok(noise.length > 0);
    assert.ok(noise.some((r) => r.detail!.remote === "other"), "beyond the key cap, one row counts the rest");
    // Each record is one key of one minute: at most MAX_NOISE_KEYS + one "other" row per kind per minute.
    const perMinute = new Map<number, number>();
    for (const r of noise) perMinute.set(r.detail!.minute as number, (perMinute.get(r.detail!.minute as number) ?? 0) + 1);
    for (const n of perMinute.values()) assert.ok(n <= MAX_NOISE_KEYS + 2, `${n} records in one minute`);
    // The share: noise payloads (prefix, body, tag) within NOISE_SHARE_PERCENT of the partition.
    const approxBytes = noise.length * 60 + noise.reduce((n, r) => n + JSON.stringify(r.detail).length, 0);
    assert.ok(approxBytes <= (64 * 4096 * NOISE_SHARE_PERCENT) / 100 * 1.2, `noise holds ~${approxBytes} bytes`);
    assert.equal(dev.alarms.filter((a) => /noise fills its share/.test(a)).length, 1, "one alarm while the share stays full");
    assert.ok(flash.erases - erases0 <= 12, `${flash.erases - erases0} erases in 3 hours of attack`);
    await log.close();
  });

  it("a full log never purges records within their retention: it refuses (alarm) and resumes once they expire", async () => {
    const dev = newDevice();
    const log = await openLog(ramFlash(8 * 4096), dev, { retention: { consent: DAY } });
    const consentSeq = await log.append({ kind: "consent", decision: "info", integration: "cloud", reason: "opt-in" });
    let refused: unknown;
    for (let i = 0; i < 2000 && !refused; i++) {
      try {
        await log.append({ kind: "connect", decision: "info", device: `d${i % 9}`, detail: { pad: "p".repeat(100) } });
      } catch (e) {
        refused = e;
      }
    }
    assert.match(String(refused), /within their retention/);
    assert.ok(dev.alarms.some((a) => /within their retention/.test(a) && /fails closed/.test(a)));
    assert.equal(log.query({ kind: "consent" })[0]?.seq, consentSeq, "the consent record is still there");
    dev.clock.tick(DAY + 1);
    for (let i = 0; i < 50 && log.stats().firstSeq <= consentSeq; i++) await log.append({ kind: "connect", decision: "info", device: "d", detail: { pad: "p".repeat(100) } });
    assert.ok(log.stats().firstSeq > consentSeq, "once its retention passed the sector was purged");
    assert.ok(log.query({ kind: "purge" }).some((p) => p.detail!.reason === "full"));
    await log.close();
  });

  it("kinds without retention and noise give way when space is needed", async () => {
    const dev = newDevice();
    const log = await openLog(ramFlash(8 * 4096), dev, { retention: { consent: DAY } });
    for (let i = 0; i < 1500; i++) {
      if (i % 50 === 0) {
        for (let k = 0; k < 40; k++) log.noise(badToken(`203.0.113.${k}`));
        dev.clock.tick(60_000);
      }
      await log.append({ kind: "uplink", decision: "info", integration: "cloud", detail: { pad: "q".repeat(80) } });
    }
    assert.ok(log.query({ kind: "purge" }).length > 0);
    await log.close();
  });

  it("an allowed flow resolves only once a durable flow commit counts it; after a crash the commits remain", async () => {
    const dev = newDevice();
    const flash = ramFlash(32 * 4096);
    const log = await openLog(flash, dev, { groupCommitMs: 20, flowCommitMs: 1000 });
    const flow = { device: "plug", integration: "cloud", decision: "allow", rule: "r", reason: "ok", bytes: 50, fieldsDropped: 0 } as const;
    let first = false;
    const p1 = log.aggregate(flow).then(() => (first = true));
    await p1;
    assert.ok(first, "the first flow after a quiet window commits at once");
    const commits = () => log.query({ kind: "flow-summary" }).filter((r) => r.reason === "commit");
    assert.equal(commits().length, 1);
    let second = false;
    const p2 = log.aggregate({ ...flow, decision: "minimize", fieldsDropped: 2 }).then(() => (second = true));
    const p3 = log.aggregate(flow);
    dev.clock.tick(500);
    await Promise.resolve();
    assert.ok(!second, "later flows wait for the window");
    dev.clock.tick(500);
    await Promise.all([p2, p3]);
    assert.deepEqual(commits().map((r) => r.detail), [{ cloud: 1 }, { cloud: 2 }]);
    void log.aggregate({ ...flow, integration: "other-cloud" });
    void log.aggregate({ ...flow, integration: null });
    const p4 = log.aggregate(flow);
    dev.clock.tick(1000);
    await p4;
    assert.deepEqual(commits().at(-1)!.detail, { "(none)": 1, cloud: 1, "other-cloud": 1 }, "one record counts every integration of the window");
    // Crash (no close): the per-minute rows were in RAM only, the commits are on flash.
    const again = await openLog(flash, dev);
    const after = again.query({ kind: "flow-summary" });
    assert.equal(after.filter((r) => r.reason === "commit").reduce((n, r) => n + ((r.detail!.cloud as number | undefined) ?? 0), 0), 4);
    assert.equal(after.flatMap((r) => r.summary ?? []).length, 0);
    const unclean = again.query({ kind: "boot" }).filter((r) => r.reason === "unclean-stop");
    assert.equal(unclean.length, 1);
    assert.equal(unclean[0]!.detail!.lastDurableSeq, unclean[0]!.seq - 1);
    assert.equal(again.uncleanStop, unclean[0]!.seq - 1);
    assert.ok(dev.alarms.some((a) => /did not stop cleanly/.test(a)));
    await again.close();
    const clean = await openLog(flash, dev);
    assert.equal(clean.uncleanStop, undefined, "after close() the next boot is clean");
    assert.equal(clean.query({ kind: "boot" }).filter((r) => r.reason === "unclean-stop").length, 1);
    await clean.close();
  });
  it("a commit that already counts FLOW_COMMIT_BATCH flows is written at once, not at the end of the window", async () => {
    const dev = newDevice();
    const log = await openLog(ramFlash(32 * 4096), dev, { groupCommitMs: 20, flowCommitMs: 60_000 });
    const flow = { device: "plug", integration: "cloud", decision: "allow", rule: "r", reason: "ok", bytes: 50, fieldsDropped: 0 } as const;
    await log.aggregate(flow); // the first after a quiet window: at once
    const commits = () => log.query({ kind: "flow-summary" }).filter((r) => r.reason === "commit");
    let done = 0;
    const batch = Array.from({ length: FLOW_COMMIT_BATCH - 1 }, () => log.aggregate(flow).then(() => done++));
    for (let i = 0; i < 5; i++) await Promise.resolve();
    assert.equal(done, 0, "fewer than a batch wait for the window");
    assert.equal(commits().length, 1);
    const last = log.aggregate(flow).then(() => done++);
    await Promise.all([...batch, last]);
    assert.equal(done, FLOW_COMMIT_BATCH, "the batch resolved without the clock moving");
    assert.deepEqual(commits().map((r) => r.detail), [{ cloud: 1 }, { cloud: FLOW_COMMIT_BATCH }]);
    await log.close();
  });
});
