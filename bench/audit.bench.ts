/**
 * Audit log figures: appends/s (single and group commit), write amplification, erases per day and
 * endurance at the typical home load (50 devices × 1 message / 30 s, aggregated), hours of history in
 * 1 MiB, mount time of a full partition, and XS meter counts per append.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ramFlash, type NorFlash } from "../src/flash/nor.js";
import { FlashAuditLog, type AuditLogOptions } from "../src/audit/log.js";
import { FlashRing } from "../src/flash/ring.js";
import { canonicalBytes } from "../src/audit/record.js";
import type { AuditEvent } from "../src/audit/types.js";
import { nodeCrypto } from "../hosts/node/crypto.js";
import { nodeRandom } from "../hosts/node/random.js";
import { FakeClock } from "../test/lib/fake-clock.js";
import { MemoryKeyStore } from "../test/powerloss/support.js";
import { bundleForXs, runInXs } from "../test/xs/xsnap.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const MiB = 1024 * 1024;
const DAY = 24 * 3600_000;

function open(flash: NorFlash, clock: FakeClock, options: AuditLogOptions = {}): Promise<FlashAuditLog> {
  return FlashAuditLog.open({ flash, crypto: nodeCrypto(), random: nodeRandom(), keys: new MemoryKeyStore(), clock, timers: clock, options });
}

/** A typical individual record: a denial with a topic and a reason. */
const denial = (i: number): AuditEvent => ({
  kind: "flow", decision: "deny", device: `plug-${i % 50}`, integration: "vendor-cloud", topic: `home/plug-${i % 50}/power`, reason: "no-contract", detail: { bytes: 120 },
});

async function appendRate(groupCommitMs: number): Promise<{ perSecond: number; amplification: number }> {
  const clock = new FakeClock();
  const flash = ramFlash(4 * MiB);
  const log = await open(flash, clock, { groupCommitMs, sealEveryMs: 1e12 });
  clock.tick(1000);
  const n = 4000;
  let recordBytes = 0;
  const programmed0 = flash.bytesProgrammed;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i += groupCommitMs > 0 ? 32 : 1) {
    const batch: Promise<number>[] = [];
    for (let k = 0; k < (groupCommitMs > 0 ? 32 : 1); k++) batch.push(log.append(denial(i + k)));
    if (groupCommitMs > 0) clock.tick(groupCommitMs);
    await Promise.all(batch);
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const r of log.query({ kind: "flow", limit: 1 })) recordBytes = canonicalBytes(r).length;
  const amplification = (flash.bytesProgrammed - programmed0) / (n * recordBytes);
  return { perSecond: Math.round(n / s), amplification };
}

/**
 * A simulated home: 50 devices publishing every 30 s (spread evenly over the 30 s), each allowed to one
 * cloud integration (rows aggregated per minute, each flow covered by a flow commit at most every
 * `flowCommitMs`), one device without a contract denied every 5 minutes, and each device reconnecting
 * every 6 hours. Returns flash use and erases per simulated day in a 1 MiB partition, and how long a
 * message waits for its durable record (simulated time; the PUBACK and the forwarding wait as long).
 */
async function homeLoad(summaryEveryMs: number, flowCommitMs: number, days: number) {
  const clock = new FakeClock();
  const flash = ramFlash(MiB);
  const log = await open(flash, clock, { summaryEveryMs, flowCommitMs, groupCommitMs: 20 });
  let programmed = 0;
  let erases = 0;
  let records = 0;
  let waited = 0;
  let waits = 0;
  let maxWait = 0;
  const step = 30_000 / 50;
  for (let day = 0; day < days; day++) {
    const p0 = flash.bytesProgrammed;
    const e0 = flash.erases;
    const s0 = log.nextSeq;
    for (let t = 0; t < DAY; t += 30_000) {
      for (let d = 0; d < 50; d++) {
        const t0 = clock.now();
        void log.aggregate({ device: `shelly-plug-${d.toString(16).padStart(6, "0")}`, integration: "vendor-cloud", decision: d % 5 === 0 ? "minimize" : "allow", rule: `telemetry-${d % 3}`, reason: "ok", bytes: 180, fieldsDropped: d % 5 === 0 ? 2 : 0 }).then(() => {
          const w = clock.now() - t0;
          waited += w;
          waits++;
          maxWait = Math.max(maxWait, w);
        });
        if (d === 0 && t % 300_000 === 0) void log.aggregate({ device: "camera-1", integration: "unknown-cloud", decision: "deny", rule: null, reason: "no-contract", topic: "cam/1/motion", bytes: 300, fieldsDropped: 0 });
        if (t % (6 * 3600_000) === 0) void log.append({ kind: "connect", decision: "info", device: `shelly-plug-${d}`, reason: "ok" });
        // 100 ms steps, each letting the promise chains settle, so waits are measured to 100 ms.
        for (let k = 0; k < step / 100; k++) {
          clock.tick(100);
          for (let y = 0; y < 6; y++) await Promise.resolve();
        }
      }
    }
    if (day === days - 1) {
      programmed = flash.bytesProgrammed - p0;
      erases = flash.erases - e0;
      records = log.nextSeq - s0;
    }
  }
  await log.close();
  // Usable bytes of the partition: all sectors less the two kept free and the header of each sector.
  const usable = (MiB / 4096 - 2) * (4096 - 32);
  return { bytesPerDay: programmed, erasesPerDay: erases, hoursIn1MiB: (usable / programmed) * 24, recordsPerDay: records, meanWaitMs: waited / Math.max(1, waits), maxWaitMs: maxWait };
}

/**
 * 1,000 unauthenticated events per second (wrong bearer tokens and garbage CONNECTs from 20 hosts, each
 * connection from a new source port) for `minutes`: records and erases per minute when each is its own
 * record (as before issue 13) and through the noise aggregator.
 */
async function noiseAttack(aggregated: boolean, minutes: number): Promise<{ recordsPerMinute: number; erasesPerMinute: number; firstSeqKept: boolean }> {
  const clock = new FakeClock();
  const flash = ramFlash(MiB);
  const log = await open(flash, clock, { groupCommitMs: 20 });
  const s0 = log.nextSeq;
  const e0 = flash.erases;
  for (let s = 0; s < minutes * 60; s++) {
    for (let i = 0; i < 1000; i++) {
      const remote = `192.168.1.${100 + (i % 20)}:${1024 + ((s * 1000 + i) % 60000)}`;
      const ev: AuditEvent = i % 2 ? { kind: "admin", decision: "deny", reason: "bad-token", detail: { remote, path: "/api/v1/audit" } } : { kind: "protocol", decision: "deny", reason: "malformed", detail: { remote, message: "bad packet" } };
      if (aggregated) log.noise(ev);
      else void log.append(ev).catch(() => undefined);
    }
    clock.tick(1000);
    await Promise.resolve();
  }
  const out = { recordsPerMinute: Math.round((log.nextSeq - s0) / minutes), erasesPerMinute: Math.round(((flash.erases - e0) / minutes) * 10) / 10, firstSeqKept: log.stats().firstSeq === 1 };
  await log.close();
  return out;
}

async function mountTime(): Promise<{ log: number; ring: number; records: number }> {
  const clock = new FakeClock();
  const flash = ramFlash(MiB);
  const keys = new MemoryKeyStore();
  const options = { sealEveryMs: 1e12 };
  let log = await FlashAuditLog.open({ flash, crypto: nodeCrypto(), random: nodeRandom(), keys, clock, timers: clock, options });
  for (let i = 0; log.stats().freeSectors > 3; i++) await log.append(denial(i));
  const records = log.stats().records;
  await log.close();
  // Best of 5 (the first runs pay for JIT warm-up). Each open adds one boot; close seals once more.
  let best = Infinity;
  let ring = Infinity;
  for (let i = 0; i < 5; i++) {
    const t0 = process.hrtime.bigint();
    log = await FlashAuditLog.open({ flash, crypto: nodeCrypto(), random: nodeRandom(), keys, clock, timers: clock, options });
    const t1 = process.hrtime.bigint();
    FlashRing.mount({ flash, tag: 0xa1 });
    const t2 = process.hrtime.bigint();
    best = Math.min(best, Number(t1 - t0) / 1e6);
    ring = Math.min(ring, Number(t2 - t1) / 1e6);
    await log.close();
  }
  return { log: best, ring, records };
}

const XS_ENTRY = (n: number) => `
import { FlashAuditLog } from "./src/audit/log.ts";
import { ramFlash } from "./src/flash/nor.ts";
import { nobleCrypto, seededRandom } from "./test/lib/noble-crypto.ts";
import { FakeClock } from "./test/lib/fake-clock.ts";
import { MemoryKeyStore } from "./test/powerloss/support.ts";
const clock = new FakeClock();
const random = seededRandom("xs");
(async () => {
  const log = await FlashAuditLog.open({ flash: ramFlash(1024 * 1024), crypto: nobleCrypto(random), random, keys: new MemoryKeyStore(), clock, timers: clock, options: { sealEveryMs: 1e12, sealEveryRecords: 1e9 } });
  for (let i = 0; i < ${n}; i++) await log.append({ kind: "flow", decision: "deny", device: "plug-" + (i % 50), integration: "vendor-cloud", topic: "home/plug/power", reason: "no-contract", detail: { bytes: 120 } });
  print("done");
})();
`;

async function xsPerAppend(): Promise<number> {
  const n = 200;
  const [base, full] = await Promise.all([0, n].map(async (k) => (await runInXs(await bundleForXs(XS_ENTRY(k), root))).meter));
  if (!base || !full) throw new Error("xsnap reported no meter");
  return Math.round((full.compute - base.compute) / n);
}

export default async function (): Promise<Record<string, number | string>> {
  const single = await appendRate(0);
  const group = await appendRate(10);
  const mount = await mountTime();
  const out: Record<string, number | string> = {
    "appends/s, each durable (node crypto, RAM flash)": single.perSecond,
    "appends/s, group commit of 32 (10 ms window)": group.perSecond,
    "bytes programmed per record byte, single": single.amplification,
    "bytes programmed per record byte, group commit": group.amplification,
  };
  for (const commitMs of [1000, 2000, 5000]) {
    const h = await homeLoad(300_000, commitMs, 1);
    const label = `flow commit ${commitMs} ms, summaries 5 min`;
    out[`home load (${label}): records/day`] = h.recordsPerDay;
    out[`home load (${label}): KiB programmed/day`] = Math.round(h.bytesPerDay / 1024);
    out[`home load (${label}): erases/day in 1 MiB`] = h.erasesPerDay;
    out[`home load (${label}): hours of history in 1 MiB`] = Math.round(h.hoursIn1MiB * 10) / 10;
    out[`home load (${label}): endurance years (256 sectors × 100k cycles)`] = Math.round((256 * 100_000) / Math.max(1, h.erasesPerDay) / 365);
    out[`home load (${label}): wait for the durable record, mean / max (ms)`] = `${Math.round(h.meanWaitMs)} / ${h.maxWaitMs}`;
  }
  for (const aggregated of [false, true]) {
    const n = await noiseAttack(aggregated, aggregated ? 10 : 2);
    const label = aggregated ? "noise aggregated" : "one record per event";
    out[`1,000 noise events/s (${label}): records/min`] = n.recordsPerMinute;
    out[`1,000 noise events/s (${label}): erases/min in 1 MiB`] = n.erasesPerMinute;
    out[`1,000 noise events/s (${label}): first-boot seal kept`] = String(n.firstSeqKept);
  }
  out["mount of a full 1 MiB partition, whole log (ms)"] = Math.round(mount.log * 100) / 100;
  out["mount of a full 1 MiB partition, ring only (ms)"] = Math.round(mount.ring * 100) / 100;
  out["records in the full partition"] = mount.records;
  try {
    out["xs computrons per append (noble crypto)"] = await xsPerAppend();
  } catch (e) {
    out["xs"] = `skipped: ${String(e)}`;
  }
  return out;
}
