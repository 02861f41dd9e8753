/**
 * The power-loss test in the littlefs manner (its "reentrant" test cases): a deterministic workload of
 * mixed audit-log operations is re-run with the power cut at every erase and program (FaultyFlash
 * cutAt = 1..N) in each tear mode, and at every key-store write (the boot counter, the sealing key's
 * forward-secure update, the legal hold; the write lost or done). After each cut, the recovery boot is
 * cut a second time at each of its own writes (on copies of the board); then a clean mount must pass
 * the invariant of check.ts. Portable: the CLI (run.ts) runs it in full, the core test a sampled version.
 */
import type { KeyStore } from "../../src/ports.js";
import type { AuditEvent } from "../../src/audit/types.js";
import type { FlashAuditLog } from "../../src/audit/log.js";
import { FaultyFlash, isPowerCut, type TearMode } from "../lib/faulty-flash.js";
import { FaultyKeyStore, type KeyTear } from "../lib/faulty-keys.js";
import { boot, cloneDevice, freshDevice, type Device } from "./device.js";
import { check, newLedger, recover, type Ledger } from "./check.js";

export interface PowerlossOptions {
  /** Workload operations (≥ 300 for the full run). */
  readonly ops: number;
  /** Cut at every `step`-th flash operation (1: every one). */
  readonly step?: number;
  readonly tears?: readonly TearMode[];
  readonly sectors?: number;
  readonly seed?: number;
  /** Cut only at these flash operations (regression cases), instead of every `step`-th. */
  readonly only?: readonly number[];
  /** Group-commit window of the log under test (default 5 ms; 0: every append programmed at once). */
  readonly groupCommitMs?: number;
  /**
   * After each first cut, cut the recovery boot again at every `recoveryStep`-th of its flash and
   * key-store writes (each on a copy of the board), then mount cleanly and check. 0: no second cuts.
   */
  readonly recoveryStep?: number;
  /** Cut at every `keyStep`-th key-store write of the workload, both tears (0: none; default 1). */
  readonly keyStep?: number;
  /** Progress output. */
  readonly progress?: (line: string) => void;
}

export interface PowerlossResult {
  /** Flash operations in the uncut run (the cut points available). */
  readonly operations: number;
  /** Key-store writes in the uncut run. */
  readonly keyWrites: number;
  /** What the uncut run did: op kinds performed, and the log's record kinds at the end. */
  readonly mix: Record<string, number>;
  /** Every cut: first cuts in the workload (flash, key store) and second cuts in recovery. */
  readonly cuts: number;
  readonly keyCuts: number;
  readonly recoveryCuts: number;
  readonly lost: number;
  readonly corrupt: number;
  readonly failures: string[];
}

/**
 * The append-like calls whose resolved promise is a promise of durability: each counts as
 * acknowledged in the ledger. Another such call (a flow-commit record, say) joins the run by adding
 * an entry here; the check then holds it to the same invariant.
 */
export const ACKNOWLEDGED_APPENDS: readonly ((log: FlashAuditLog, e: AuditEvent) => Promise<number>)[] = [
  (log, e) => log.append(e),
];

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

/** Runs the workload until it ends or the power fails (then the FaultyFlash is dead). */
async function workload(dev: Device, flash: FaultyFlash, keys: KeyStore, ops: number, seed: number, ledger: Ledger, mix: Record<string, number> = {}): Promise<void> {
  const rand = prng(seed);
  const KINDS = ["admin", "connect", "consent", "auth"] as const;
  let log: FlashAuditLog;
  let calls = 0;
  try {
    log = await boot(dev, flash, keys);
  } catch (e) {
    if (isPowerCut(e) || flash.dead) return;
    throw e;
  }
  const append = (op: number) => {
    ledger.inflight.add(op);
    ledger.calls.set(op, calls++);
    const kind = KINDS[op % KINDS.length]!;
    const call = ACKNOWLEDGED_APPENDS[op % ACKNOWLEDGED_APPENDS.length]!;
    return call(log, { kind, decision: "info", device: `d${op % 7}`, detail: { op, pad: "p".repeat(op % 50) } }).then(
      (seq) => {
        ledger.acked.set(seq, op);
        ledger.inflight.delete(op);
      },
      (e: unknown) => {
        if (isPowerCut(e) || flash.dead) return;
        if (!/full under legal hold|full of records within their retention/.test(String(e))) throw e;
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
      else if (r < 0.94) log = await boot(dev, flash, keys);
      else if (r < 0.97) {
        await log.close();
        log = await boot(dev, flash, keys);
      } else if (r < 0.985) log.exportJsonl();
      else {
        const p = log.held === undefined ? log.hold(`case ${op}`) : log.release();
        dev.clock.tick(5);
        await p;
      }
    } catch (e) {
      if (isPowerCut(e) || flash.dead) break;
      if (/full under legal hold|full of records within their retention/.test(String(e))) continue;
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

function points(total: number, step: number): number[] {
  return step > 0 ? Array.from({ length: Math.ceil(total / step) }, (_, i) => 1 + i * step) : [];
}

interface Tally {
  cuts: number;
  recoveryCuts: number;
  lost: number;
  corrupt: number;
  readonly failures: string[];
}

async function tallyCheck(t: Tally, dev: Device, ledger: Ledger, label: string): Promise<void> {
  let l = 0, c = 0, n: string[] = [];
  try {
    [l, c, n] = await check(dev, ledger);
  } catch (e) {
    [c, n] = [1, [`check threw ${String(e)}`]];
  }
  t.lost += l;
  t.corrupt += c;
  for (const x of n) t.failures.push(`${label}: ${x}`);
}

/** After a first cut: the recovery boot cut again at each of its writes (on copies), then the clean check. */
async function afterCut(t: Tally, dev: Device, ledger: Ledger, label: string, tear: TearMode, recoveryStep: number): Promise<void> {
  if (recoveryStep > 0) {
    const probe = cloneDevice(dev);
    const pf = new FaultyFlash(probe.flash);
    const pk = new FaultyKeyStore(probe.keys);
    await recover(probe, pf, pk, () => false);
    const second: [string, (c: Device) => [FaultyFlash, KeyStore]][] = [
      ...points(pf.operations, recoveryStep).map((j): [string, (c: Device) => [FaultyFlash, KeyStore]] => [`flash ${j}`, (c) => [new FaultyFlash(c.flash, { cutAt: j, tear }), c.keys]]),
      ...points(pk.operations, recoveryStep).map((j): [string, (c: Device) => [FaultyFlash, KeyStore]] => [`keys ${j}`, (c) => {
        const f = new FaultyFlash(c.flash);
        return [f, new FaultyKeyStore(c.keys, { cutAt: j, tear: "lost", power: f })];
      }]),
    ];
    for (const [at, make] of second) {
      const c = cloneDevice(dev);
      const [f, k] = make(c);
      const note = await recover(c, f, k, () => f.dead);
      if (note) (t.corrupt++, t.failures.push(`${label}, recovery cut ${at}: ${note}`));
      t.cuts++;
      t.recoveryCuts++;
      await tallyCheck(t, c, ledger, `${label}, recovery cut ${at}`);
    }
  }
  await tallyCheck(t, dev, ledger, label);
}

/** The whole power-loss run. */
export async function runPowerloss(o: PowerlossOptions): Promise<PowerlossResult> {
  const sectors = o.sectors ?? 6;
  const seed = o.seed ?? 0x5eed;
  const tears = o.tears ?? ["none", "half", "bits"];
  const step = o.step ?? 1;
  const gc = o.groupCommitMs ?? 5;
  const recoveryStep = o.recoveryStep ?? 0;
  // The uncut run: counts the flash operations and key-store writes, and must itself pass the invariant.
  const dev0 = freshDevice(gc, sectors);
  const counting = new FaultyFlash(dev0.flash);
  const countingKeys = new FaultyKeyStore(dev0.keys);
  const ledger0 = newLedger();
  const mix: Record<string, number> = {};
  await workload(dev0, counting, countingKeys, o.ops, seed, ledger0, mix);
  const operations = counting.operations;
  const keyWrites = countingKeys.operations;
  const after = await boot(dev0);
  for (const r of after.query({})) mix[`record:${r.kind}`] = (mix[`record:${r.kind}`] ?? 0) + 1;
  mix.erases = dev0.flash.erases;
  mix.firstSeq = after.stats().firstSeq;
  mix.nextSeq = after.nextSeq;
  await after.close();
  dev0.timers?.kill();
  const t: Tally = { cuts: 0, recoveryCuts: 0, lost: 0, corrupt: 0, failures: [] };
  await tallyCheck(t, dev0, ledger0, "uncut");
  const report = (): void => {
    if (t.cuts % 200 < 1 + (recoveryStep > 0 ? 20 : 0)) o.progress?.(`  ${t.cuts} cuts, ${t.lost} lost, ${t.corrupt} corrupt`);
  };
  for (const tear of tears) {
    for (const cutAt of o.only ?? points(operations, step)) {
      const dev = freshDevice(gc, sectors);
      const ledger = newLedger();
      const label = `cut ${cutAt} (${tear})`;
      try {
        await workload(dev, new FaultyFlash(dev.flash, { cutAt, tear }), dev.keys, o.ops, seed, ledger);
        t.cuts++;
        await afterCut(t, dev, ledger, label, tear, recoveryStep);
      } catch (e) {
        (t.corrupt++, t.failures.push(`${label}: threw ${String(e)}`));
      }
      report();
    }
  }
  // The key store's writes (boot counter, storage key, the sealing key's forward-secure update, legal hold).
  let keyCuts = 0;
  const keyTears: KeyTear[] = ["lost", "done"];
  for (const tear of o.only ? [] : keyTears) {
    for (const cutAt of points(keyWrites, o.keyStep ?? 1)) {
      const dev = freshDevice(gc, sectors);
      const ledger = newLedger();
      const label = `key-store cut ${cutAt} (${tear})`;
      const flash = new FaultyFlash(dev.flash);
      try {
        await workload(dev, flash, new FaultyKeyStore(dev.keys, { cutAt, tear, power: flash }), o.ops, seed, ledger);
        t.cuts++;
        keyCuts++;
        await afterCut(t, dev, ledger, label, "none", recoveryStep);
      } catch (e) {
        (t.corrupt++, t.failures.push(`${label}: threw ${String(e)}`));
      }
    }
  }
  return { operations, keyWrites, mix, cuts: t.cuts, keyCuts, recoveryCuts: t.recoveryCuts, lost: t.lost, corrupt: t.corrupt, failures: t.failures };
}
