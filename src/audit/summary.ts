/**
 * Compact flash encoding of flow-summary rows (SPEC.md "Audit log" §4.3), sized so a day of a busy
 * home fits the 1 MiB partition: a front-coded sorted string table, then one group per device ×
 * integration × decision × rule with run-length-coded minutes (a device sending at a steady rate
 * costs one run, whatever the number of minutes).
 */
import type { FlowSummaryRow } from "./types.js";
import { fromUtf8, utf8 } from "../util/bytes.js";
import type { Reader, Writer } from "./varint.js";

const SEP = "\u0000";

function groupKey(r: FlowSummaryRow): string {
  return [r.device, r.integration ?? "", r.integration === null ? 0 : 1, r.decision, r.rule ?? "", r.rule === null ? 0 : 1].join(SEP);
}

/** Canonical row order: group (device, integration, decision, rule; null first), then minute. */
export function compareRows(a: FlowSummaryRow, b: FlowSummaryRow): number {
  const ka = groupKey(a);
  const kb = groupKey(b);
  if (ka !== kb) return ka < kb ? -1 : 1;
  return a.minute - b.minute;
}

function sharedPrefix(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/** Encodes rows already in canonical order (see `normalizeEvent`). */
export function encodeSummary(w: Writer, rows: readonly FlowSummaryRow[]): void {
  const set = new Set<string>();
  for (const r of rows) {
    set.add(r.device);
    if (r.integration !== null) set.add(r.integration);
    if (r.rule !== null) set.add(r.rule);
  }
  const table = [...set].map(utf8).sort((a, b) => {
    for (let i = 0; i < a.length && i < b.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
    return a.length - b.length;
  });
  const index = new Map<string, number>();
  w.varint(table.length);
  table.forEach((b, i) => {
    const shared = i === 0 ? 0 : sharedPrefix(table[i - 1]!, b);
    w.varint(shared);
    w.varint(b.length - shared);
    w.raw(b.subarray(shared));
    index.set(fromUtf8(b), i + 1);
  });
  const ref = (s: string | null): number => (s === null ? 0 : index.get(s)!);
  const base = rows.reduce((m, r) => Math.min(m, r.minute / 60000), rows.length === 0 ? 0 : Infinity);
  w.varint(base);
  const groups: FlowSummaryRow[][] = [];
  for (const r of rows) {
    const g = groups[groups.length - 1];
    if (g && groupKey(g[0]!) === groupKey(r)) g.push(r);
    else groups.push([r]);
  }
  w.varint(groups.length);
  for (const g of groups) {
    const first = g[0]!;
    w.varint(ref(first.device));
    w.varint(ref(first.integration));
    w.varint(ref(first.rule));
    w.u8(first.decision === "allow" ? 0 : 1);
    // Runs of consecutive minutes with equal figures.
    const runs: { start: number; length: number; r: FlowSummaryRow }[] = [];
    for (const r of g) {
      const m = r.minute / 60000;
      const last = runs[runs.length - 1];
      if (last && last.start + last.length === m && last.r.count === r.count && last.r.bytes === r.bytes && last.r.fieldsDropped === r.fieldsDropped) last.length++;
      else runs.push({ start: m, length: 1, r });
    }
    w.varint(runs.length);
    let at = base;
    for (const run of runs) {
      w.varint(run.start - at);
      w.varint(run.length);
      w.varint(run.r.count);
      w.varint(run.r.bytes);
      w.varint(run.r.fieldsDropped);
      at = run.start + run.length;
    }
  }
}

/**
 * Decodes what {@link encodeSummary} wrote, in canonical order.
 * @throws RangeError on malformed input.
 */
export function decodeSummary(r: Reader): FlowSummaryRow[] {
  const table: string[] = [];
  let prev = new Uint8Array(0);
  for (let n = r.varint(); n > 0; n--) {
    const shared = r.varint();
    if (shared > prev.length) throw new RangeError("bad string prefix");
    const suffix = r.raw(r.varint());
    const b = new Uint8Array(shared + suffix.length);
    b.set(prev.subarray(0, shared));
    b.set(suffix, shared);
    table.push(fromUtf8(b));
    prev = b;
  }
  const at = (i: number): string | null => {
    if (i === 0) return null;
    const s = table[i - 1];
    if (s === undefined) throw new RangeError("bad string reference");
    return s;
  };
  const base = r.varint();
  const rows: FlowSummaryRow[] = [];
  for (let g = r.varint(); g > 0; g--) {
    const device = at(r.varint());
    const integration = at(r.varint());
    const rule = at(r.varint());
    const dec = r.u8();
    if (device === null || dec > 1) throw new RangeError("bad summary group");
    let minute = base;
    for (let n = r.varint(); n > 0; n--) {
      minute += r.varint();
      const length = r.varint();
      const count = r.varint();
      const bytes = r.varint();
      const fieldsDropped = r.varint();
      if (length < 1 || rows.length + length > 100_000) throw new RangeError("bad summary run");
      for (let i = 0; i < length; i++) {
        rows.push({ minute: (minute + i) * 60000, device, integration, decision: dec === 0 ? "allow" : "minimize", rule, count, bytes, fieldsDropped });
      }
      minute += length;
    }
  }
  return rows;
}
