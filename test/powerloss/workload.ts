/**
 * The power-loss test in the littlefs manner (its "reentrant" test cases): a deterministic workload of
 * mixed audit-log operations is re-run with the power cut at every erase and program (FaultyFlash
 * cutAt = 1..N), for each tear mode; after each cut the log is mounted again and must hold every
 * acknowledged record, show nothing unacknowledged out of order, and export a log that verifies.
 * Portable: the CLI (run.ts) runs it in full, test/core/audit-powerloss.test.ts a sampled version.
 */
import type { TimerId, Timers } from "../../src/ports.js";
import { ramFlash, type NorFlash } from "../../src/flash/nor.js";
import { FaultyFlash, isPowerCut, type TearMode } from "../lib/faulty-flash.js";
import { verifyExport } from "../../src/audit/verify.js";
import type { FlashAuditLog, AuditLogOptions } from "../../src/audit/log.js";
import { FlashAuditLog as Log } from "../../src/audit/log.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { FakeClock } from "../lib/fake-clock.js";
import { MemoryKeyStore } from "./support.js";

export interface PowerlossOptions {
  /** Workload operations (≥ 300 for the full run). */
  readonly ops: number;
  /** Cut at every `step`-th operation (1: every one). */
  readonly step?: number;
  readonly tears?: readonly TearMode[];
  readonly sectors?: number;
  readonly seed?: number;
  /** Cut only at these operations (regression cases), instead of every `step`-th. */
  readonly only?: readonly number[];
  /** Group-commit window of the log under test (default 5 ms; 0: every append programmed at once). */
  readonly groupCommitMs?: number;
  /** Progress output. */
  readonly progress?: (line: string) => void;
}

export interface PowerlossResult {
  /** Flash operations in the uncut run (the cut points available). */
  readonly operations: number;
  /** What the uncut run did: op kinds performed, and the log's record kinds at the end. */
  readonly mix: Record<string, number>;
  readonly cuts: number;
  readonly lost: number;
  readonly corrupt: number;
  readonly failures: string[];
}

/** Timers of one boot: a power cut kills them all, as it kills the board's event loop. */
class BootTimers implements Timers {
  readonly #clock: FakeClock;
  readonly #ids = new Set<TimerId>();
  dead = false;
  constructor(clock: FakeClock) {
    this.#clock = clock;
  }
  after(ms: number, cb: () => void): TimerId {
    const id = this.#clock.after(ms, () => {
      this.#ids.delete(id);
      if (!this.dead) cb();
    });
    this.#ids.add(id);
    return id;
  }
  every(ms: number, cb: () => void): TimerId {
    const id = this.#clock.every(ms, () => {
      if (!this.dead) cb();
    });
    this.#ids.add(id);
    return id;
  }
  cancel(id: TimerId): void {
    this.#ids.delete(id);
    this.#clock.cancel(id);
  }
  kill(): void {
    this.dead = true;
    for (const id of this.#ids) this.#clock.cancel(id);
    this.#ids.clear();
  }
}

interface Device {
  readonly groupCommitMs: number;
  readonly keys: MemoryKeyStore;
  readonly clock: FakeClock;
  k0?: Uint8Array;
  timers?: BootTimers;
}

const OPTIONS: AuditLogOptions = { sealEveryRecords: 24, retention: { connect: 20 * 60_000 }, retentionCheckMs: 40 * 60_000 };
const crypto = nobleCrypto(seededRandom("powerloss-verify"));

async function boot(flash: FaultyFlash | NorFlash, dev: Device): Promise<FlashAuditLog> {
  const groupCommitMs = dev.groupCommitMs;
  dev.timers?.kill();
  const timers = new BootTimers(dev.clock);
  dev.timers = timers;
  const random = seededRandom("powerloss");
  return Log.open({
    flash, crypto: nobleCrypto(random), random, keys: dev.keys, clock: dev.clock, timers,
    options: { ...OPTIONS, groupCommitMs, onVerificationKey: (k) => (dev.k0 = k) },
  });
}

/** A small deterministic PRNG (xorshift32) so every run replays the same workload. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

interface Ledger {
  /** seq → op number of every acknowledged record. */
  readonly acked: Map<number, number>;
  /** Ops appended but not (yet) acknowledged. */
  readonly inflight: Set<number>;
}

/** Runs the workload until it ends or the power fails (then the FaultyFlash is dead). */
async function workload(flash: FaultyFlash, dev: Device, ops: number, seed: number, ledger: Ledger, mix: Record<string, number> = {}): Promise<void> {
  const rand = prng(seed);
  const KINDS = ["admin", "connect", "consent", "auth"] as const;
  let log: FlashAuditLog;
  try {
    log = await boot(flash, dev);
  } catch (e) {
    if (isPowerCut(e) || flash.dead) return;
    throw e;
  }
  const append = (op: number) => {
    ledger.inflight.add(op);
    const kind = KINDS[op % KINDS.length]!;
    return log.append({ kind, decision: "info", device: `d${op % 7}`, detail: { op, pad: "p".repeat(op % 50) } }).then(
      (seq) => {
        ledger.acked.set(seq, op);
        ledger.inflight.delete(op);
      },
      (e: unknown) => {
        if (isPowerCut(e) || flash.dead) return;
        if (!/full under legal hold/.test(String(e))) throw e;
        mix.refused = (mix.refused ?? 0) + 1;
        ledger.inflight.delete(op);
      },
    );
  };
  for (let op = 1; op <= ops && !flash.dead; op++) {
    const r = rand();
    const kind = r < 0.55 ? "append" : r < 0.67 ? "batch" : r < 0.72 ? "seal" : r < 0.77 ? "aggregate" : r < 0.84 ? "wait" : r < 0.89 ? "retention" : r < 0.94 ? "remount" : r < 0.97 ? "restart" : r < 0.985 ? "export" : "hold";
    mix[kind] = (mix[kind] ?? 0) + 1;
    try {
      if (r < 0.55) {
        const p = append(op);
        dev.clock.tick(5);
        await p;
      } else if (r < 0.67) {
        const ps = [append(op), append(op + 100_000), append(op + 200_000), append(op + 300_000)];
        dev.clock.tick(5);
        await Promise.all(ps);
      } else if (r < 0.72) log.seal();
      else if (r < 0.77) {
        for (let d = 0; d < 5; d++) void log.aggregate({ device: `d${d}`, integration: "cloud", decision: "allow", rule: "r", reason: "ok", bytes: 80, fieldsDropped: 1 });
      } else if (r < 0.84) dev.clock.tick(16 * 60_000);
      else if (r < 0.89) log.applyRetention();
      else if (r < 0.94) log = await boot(flash, dev);
      else if (r < 0.97) {
        await log.close();
        log = await boot(flash, dev);
      } else if (r < 0.985) log.exportJsonl();
      else {
        const p = log.held === undefined ? log.hold(`case ${op}`) : log.release();
        dev.clock.tick(5);
        await p;
      }
    } catch (e) {
      if (isPowerCut(e) || flash.dead) break;
      if (/full under legal hold/.test(String(e))) continue;
      throw e;
    }
  }
  if (!flash.dead) {
    await log.close().catch((e: unknown) => {
      if (!isPowerCut(e) && !flash.dead) throw e;
    });
  }
  dev.timers?.kill();
}

/** Mounts after a cut and checks the invariant; returns [lost, corrupt, notes]. */
async function check(inner: NorFlash, dev: Device, ledger: Ledger): Promise<[number, number, string[]]> {
  let log: FlashAuditLog;
  try {
    log = await boot(inner, dev);
  } catch (e) {
    return [0, 1, [`mount failed: ${String(e)}`]];
  }
  const notes: string[] = [];
  let lost = 0;
  let corrupt = 0;
  const booted = log.append({ kind: "boot", decision: "info", detail: { op: -1 } });
  dev.clock.tick(5);
  await booted.catch((e: unknown) => {
    if (!/full under legal hold/.test(String(e))) throw e;
  });
  const lines = log.exportJsonl();
  const v = verifyExport(lines, dev.k0!, crypto);
  if (!v.ok) (corrupt++, notes.push(`verify: ${v.message}`));
  // Presence through query (it also sees records after the last seal, when full under hold).
  const bySeq = new Map<number, { op?: number; kind: string }>();
  let maxThrough = 0;
  for (const r of log.query({})) {
    const op = r.detail?.op;
    bySeq.set(r.seq, { kind: r.kind, ...(typeof op === "number" ? { op } : {}) });
    if (r.kind === "purge") maxThrough = Math.max(maxThrough, r.detail!.through as number);
    if (r.kind === "corruption") (corrupt++, notes.push(`corruption record at ${r.seq}`));
  }
  const first = log.stats().firstSeq;
  if (first > 1 && maxThrough < first - 1) (corrupt++, notes.push(`gap before ${first} unexplained (purged through ${maxThrough})`));
  for (const [seq, op] of ledger.acked) {
    if (seq < first) continue;
    if (bySeq.get(seq)?.op !== op) (lost++, notes.push(`acked op ${op} at seq ${seq} missing`));
  }
  const ackedOps = new Set(ledger.acked.values());
  let lastOp = -Infinity;
  for (const [seq, r] of [...bySeq].sort((a, b) => a[0] - b[0])) {
    if (r.op === undefined || r.op < 0) continue;
    if (!ackedOps.has(r.op) && !ledger.inflight.has(r.op)) (corrupt++, notes.push(`seq ${seq} holds op ${r.op}, never appended in flight`));
    if (r.op % 100_000 < lastOp % 100_000 && !ackedOps.has(r.op)) (corrupt++, notes.push(`seq ${seq} op ${r.op} out of order`));
    lastOp = r.op;
  }
  await log.close();
  dev.timers?.kill();
  return [lost, corrupt, notes];
}

function freshDevice(groupCommitMs: number): Device {
  return { groupCommitMs, keys: new MemoryKeyStore(), clock: new FakeClock() };
}

/** The whole power-loss run. */
export async function runPowerloss(o: PowerlossOptions): Promise<PowerlossResult> {
  const sectors = o.sectors ?? 6;
  const seed = o.seed ?? 0x5eed;
  const tears = o.tears ?? ["none", "half", "bits"];
  const step = o.step ?? 1;
  // The uncut run: counts the flash operations, and must itself pass the invariant.
  const base = ramFlash(sectors * 4096);
  const counting = new FaultyFlash(base);
  const dev0 = freshDevice(o.groupCommitMs ?? 5);
  const ledger0: Ledger = { acked: new Map(), inflight: new Set() };
  const mix: Record<string, number> = {};
  await workload(counting, dev0, o.ops, seed, ledger0, mix);
  const operations = counting.operations;
  const after = await boot(base, dev0);
  for (const r of after.query({})) mix[`record:${r.kind}`] = (mix[`record:${r.kind}`] ?? 0) + 1;
  mix.erases = base.erases;
  mix.firstSeq = after.stats().firstSeq;
  mix.nextSeq = after.nextSeq;
  await after.close();
  dev0.timers?.kill();
  const failures: string[] = [];
  let [lost, corrupt, notes] = await check(base, dev0, ledger0);
  failures.push(...notes.map((n) => `uncut: ${n}`));
  let cuts = 0;
  for (const tear of tears) {
    const points = o.only ?? Array.from({ length: Math.ceil(operations / step) }, (_, i) => 1 + i * step);
    for (const cutAt of points) {
      const inner = ramFlash(sectors * 4096);
      const dev = freshDevice(o.groupCommitMs ?? 5);
      const ledger: Ledger = { acked: new Map(), inflight: new Set() };
      let l = 0, c = 0, n: string[] = [];
      try {
        await workload(new FaultyFlash(inner, { cutAt, tear }), dev, o.ops, seed, ledger);
        [l, c, n] = await check(inner, dev, ledger);
      } catch (e) {
        [c, n] = [1, [`threw ${String(e)}`]];
      }
      cuts++;
      lost += l;
      corrupt += c;
      for (const x of n) failures.push(`cut ${cutAt} (${tear}): ${x}`);
      if (cuts % 200 === 0) o.progress?.(`  ${cuts} cuts, ${lost} lost, ${corrupt} corrupt`);
    }
  }
  return { operations, mix, cuts, lost, corrupt, failures };
}
