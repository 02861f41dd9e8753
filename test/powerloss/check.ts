/**
 * What must hold after any cut, on a clean mount: the export verifies (chain, seals, dense seq); every
 * acknowledged record is there with its content, or was legitimately purged (a sealed purge record's
 * "through" ≥ its seq); nothing appears that was never appended; records stand in the order their
 * appends were called; no corruption record. And `recover`: the boot after a cut, which the runner
 * cuts a second time at each of its flash and key-store writes. Portable (runs in XS).
 */
import type { Flash, KeyStore } from "../../src/ports.js";
import type { FlashAuditLog } from "../../src/audit/log.js";
import { verifyExport } from "../../src/audit/verify.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { isPowerCut } from "../lib/faulty-flash.js";
import { boot, type Device } from "./device.js";

/** What the workload was told about its appends. */
export interface Ledger {
  /** seq → op of every acknowledged record (an append-like call whose promise resolved). */
  readonly acked: Map<number, number>;
  /** Ops appended but not (yet) acknowledged. */
  readonly inflight: Set<number>;
  /** op → the order in which its append was called. */
  readonly calls: Map<number, number>;
}

export function newLedger(): Ledger {
  return { acked: new Map(), inflight: new Set(), calls: new Map() };
}

const crypto = nobleCrypto(seededRandom("powerloss-verify"));
/** The log refusing a record it has no room for (legal hold, or every sector within retention): fail closed, not loss. */
const fullUnderHold = (e: unknown): boolean => /full under legal hold|full of records within their retention/.test(String(e));

/** The first boot after a cut: mount (finishing what the cut interrupted), one record, the idle eraser, close. */
export async function recover(dev: Device, flash: Flash, keys: KeyStore, dead: () => boolean): Promise<string | undefined> {
  let log: FlashAuditLog | undefined;
  try {
    log = await boot(dev, flash, keys);
    const p = log.append({ kind: "boot", decision: "info", detail: { op: -1 } });
    dev.clock.tick(5);
    await p.catch((e: unknown) => {
      if (!fullUnderHold(e)) throw e;
    });
    dev.clock.tick(1000);
    await log.close();
  } catch (e) {
    if (!isPowerCut(e) && !dead()) return `recovery threw ${String(e)}`;
  } finally {
    dev.timers?.kill();
  }
  return undefined;
}

interface Line {
  seq: number;
  kind: string;
  detail?: Record<string, unknown>;
}

/** Mounts after a cut and checks the invariant; returns [lost, corrupt, notes]. */
export async function check(dev: Device, ledger: Ledger): Promise<[number, number, string[]]> {
  let log: FlashAuditLog;
  try {
    log = await boot(dev);
  } catch (e) {
    return [0, 1, [`mount failed: ${String(e)}`]];
  }
  const notes: string[] = [];
  let lost = 0;
  let corrupt = 0;
  const booted = log.append({ kind: "boot", decision: "info", detail: { op: -1 } });
  dev.clock.tick(5);
  await booted.catch((e: unknown) => {
    if (!fullUnderHold(e)) throw e;
  });
  const lines = log.exportJsonl();
  const v = verifyExport(lines, dev.k0!, crypto);
  if (!v.ok) (corrupt++, notes.push(`verify: ${v.message}`));
  // Purges count only when sealed: the export ends at a seal, so every purge record in it is covered.
  let sealedThrough = 0;
  const exported: Line[] = [];
  for (const l of lines.slice(1)) {
    const o = JSON.parse(l) as Line;
    exported.push(o);
    if (o.kind === "seal") sealedThrough = Math.max(sealedThrough, o.detail?.last as number);
  }
  let purgedThrough = 0;
  for (const o of exported) if (o.kind === "purge" && o.seq <= sealedThrough) purgedThrough = Math.max(purgedThrough, o.detail?.through as number);
  // Presence through query (it also sees records after the last seal, when full under hold).
  const bySeq = new Map<number, { op?: number; kind: string }>();
  for (const r of log.query({})) {
    const op = r.detail?.op;
    bySeq.set(r.seq, { kind: r.kind, ...(typeof op === "number" ? { op } : {}) });
    if (r.kind === "corruption") (corrupt++, notes.push(`corruption record at ${r.seq}`));
  }
  const first = log.stats().firstSeq;
  if (first > 1 && purgedThrough < first - 1) (corrupt++, notes.push(`records before ${first} gone, sealed purges cover only ${purgedThrough}`));
  for (const [seq, op] of ledger.acked) {
    const r = bySeq.get(seq);
    if (r?.op === op) continue;
    if (r === undefined && seq <= purgedThrough) continue;
    if (r === undefined) (lost++, notes.push(`acked op ${op} at seq ${seq} missing (sealed purges through ${purgedThrough})`));
    else (corrupt++, notes.push(`acked op ${op} at seq ${seq} reads as ${r.kind} op ${r.op}`));
  }
  // Order and provenance of every workload record, acknowledged or not.
  const ackedOps = new Set(ledger.acked.values());
  const seen = new Set<number>();
  let lastCall = -1;
  for (const [seq, r] of [...bySeq].sort((a, b) => a[0] - b[0])) {
    if (r.op === undefined || r.op < 0) continue;
    const call = ledger.calls.get(r.op);
    if (call === undefined || (!ledger.inflight.has(r.op) && !ackedOps.has(r.op))) {
      (corrupt++, notes.push(`seq ${seq} holds op ${r.op}, never appended`));
      continue;
    }
    if (seen.has(r.op)) (corrupt++, notes.push(`op ${r.op} stored twice (again at seq ${seq})`));
    if (call <= lastCall) (corrupt++, notes.push(`seq ${seq} op ${r.op} out of call order`));
    seen.add(r.op);
    lastCall = call;
  }
  await log.close();
  dev.timers?.kill();
  return [lost, corrupt, notes];
}
