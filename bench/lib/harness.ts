/**
 * Glue for the end-to-end benches: runs one load phase in its own process (bench/lib/load.ts) with
 * every wait bounded, summarizes repetitions, reads the gateway's audit log over its HTTPS API, and
 * reads a V8 .cpuprofile into its top self-time functions.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import path from "node:path";
import type { LoadJob, LoadResult } from "./load.js";

/**
 * Runs a load job (its phases in order) as a child process, handing each phase's result to `onResult`
 * as it comes; resolves with those it got. Never hangs: the child is killed past the phases' bound.
 */
export function runLoadProcess(dir: string, name: string, job: LoadJob, onResult: (r: LoadResult) => void): Promise<{ results: LoadResult[]; error?: string }> {
  const file = path.join(dir, `job-${name.replace(/[^A-Za-z0-9_-]/g, "_")}.json`);
  writeFileSync(file, JSON.stringify(job), { mode: 0o600 });
  const limit = job.phases.reduce((a, ph) => a + ph.warmupMs + ph.measureMs + ph.drainMs + 20_000, 20_000);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "bench/lib/load.ts", file], { stdio: ["ignore", "pipe", "pipe"] });
    const results: LoadResult[] = [];
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      let nl;
      while ((nl = out.indexOf("\n")) >= 0) {
        const line = out.slice(0, nl).trim();
        out = out.slice(nl + 1);
        if (!line.startsWith("{")) continue;
        const r = JSON.parse(line) as LoadResult;
        results.push(r);
        onResult(r);
      }
    });
    child.stderr.on("data", (d: Buffer) => (err += d.toString()).length > 10_000 && (err = err.slice(-10_000)));
    const timer = setTimeout(() => child.kill("SIGKILL"), limit);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve({ results });
      resolve({ results, error: `load ${name} ${signal ? `killed (${signal}) after ${limit} ms` : `exited ${code}`}: ${err.slice(-2000)}` });
    });
  });
}

export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function fmt(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return "—";
  return x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "median (min–max)" of repetitions. */
export function spread(xs: readonly number[], digits = 0): string {
  const s = xs.filter((x) => Number.isFinite(x));
  if (!s.length) return "—";
  if (s.length === 1) return fmt(s[0]!, digits);
  return `${fmt(median(s), digits)} (${fmt(Math.min(...s), digits)}–${fmt(Math.max(...s), digits)})`;
}

/** GET on the gateway's admin API (self-signed certificate: checked against nothing but loopback). */
export function adminGet(port: number, token: string, pathAndQuery: string, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: pathAndQuery, method: "GET", headers: { authorization: `Bearer ${token}` }, rejectUnauthorized: false, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${pathAndQuery}: HTTP ${res.statusCode} ${body.slice(0, 200)}`))));
    });
    req.on("timeout", () => req.destroy(new Error(`${pathAndQuery}: no answer in ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

export interface AuditLine {
  readonly seq: number;
  readonly kind: string;
  readonly decision: string;
  readonly device: string | null;
  readonly integration?: string | null;
  readonly reason: string | null;
  readonly detail?: Record<string, unknown>;
}

/** Every record of `kind` from the admin API, paging by sequence number (1000 a page, bounded). */
export async function auditRecords(port: number, token: string, kind: string, maxPages = 500): Promise<AuditLine[]> {
  const out: AuditLine[] = [];
  let since = 0;
  for (let page = 0; page < maxPages; page++) {
    const body = await adminGet(port, token, `/api/v1/audit?kind=${kind}&since=${since}&limit=1000`);
    const lines = body.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as AuditLine);
    out.push(...lines);
    if (lines.length < 1000) break;
    since = Math.max(...lines.map((l) => l.seq)) + 1;
  }
  return out;
}

/**
 * Messages the gateway accounts for as dropped: queue drop and refusal records (their `count`, or one
 * message each) and flow denies. Minimized or allowed flows are not drops. `queueByTotal` is the same
 * sum read from the records' running `total` (per integration × reason × drop/refusal, the newest
 * record's): it still holds when the log has purged older records.
 */
export function droppedCount(queue: readonly AuditLine[], flow: readonly AuditLine[]): { queue: number; queueByTotal: number; flowDenied: number; reasons: Record<string, number> } {
  const reasons: Record<string, number> = {};
  const totals = new Map<string, number>();
  let q = 0;
  for (const r of queue) {
    if (r.decision !== "deny") continue;
    const c = typeof r.detail?.count === "number" ? r.detail.count : 1;
    q += c;
    reasons[`queue:${r.reason}`] = (reasons[`queue:${r.reason}`] ?? 0) + c;
    const key = `${r.integration ?? ""}/${r.reason}/${typeof r.detail?.fromSeq === "number" ? "drop" : "refused"}`;
    const total = typeof r.detail?.total === "number" ? r.detail.total : undefined;
    totals.set(key, total === undefined ? (totals.get(key) ?? 0) + c : Math.max(totals.get(key) ?? 0, total));
  }
  let f = 0;
  for (const r of flow) {
    if (r.decision !== "deny") continue;
    f++;
    reasons[`flow:${r.reason}`] = (reasons[`flow:${r.reason}`] ?? 0) + 1;
  }
  let byTotal = 0;
  for (const v of totals.values()) byTotal += v;
  return { queue: q, queueByTotal: byTotal, flowDenied: f, reasons };
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string };
}

/** The top self-time functions over every .cpuprofile in `dir` (self time = sum of the sample deltas). */
export function cpuProfileTop(dir: string, top = 15): string[] {
  const self = new Map<string, number>();
  let total = 0;
  const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
  for (const f of files) {
    const p = JSON.parse(readFileSync(path.join(dir, f), "utf8")) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    for (let i = 0; i < p.samples.length; i++) {
      const n = byId.get(p.samples[i]!);
      const dt = p.timeDeltas[i] ?? 0;
      if (!n) continue;
      const url = n.callFrame.url.replace(/^file:\/\//, "").replace(process.cwd() + "/", "");
      // Line numbers are of tsx's transpiled output, so only the file is named.
      const key = `${n.callFrame.functionName || "(anonymous)"}  ${url}`;
      self.set(key, (self.get(key) ?? 0) + dt);
      total += dt;
    }
  }
  if (!files.length) return [`no .cpuprofile in ${dir}`];
  // Idle time is not work: shown once, and the shares are of the busy time.
  const idle = [...self.entries()].filter(([k]) => k.startsWith("(idle)")).reduce((a, [, us]) => a + us, 0);
  const busy = total - idle;
  return [
    `busy ${(busy / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms (${files.length} profile file${files.length > 1 ? "s" : ""})`,
    ...[...self.entries()].filter(([k]) => !k.startsWith("(idle)")).sort((a, b) => b[1] - a[1]).slice(0, top)
      .map(([k, us]) => `${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${k}`),
  ];
}

/** Length of the overlap of [a0, a1] with the merged, sorted ranges. */
function overlap(merged: readonly [number, number][], a0: number, a1: number): number {
  let n = 0;
  for (const [b0, b1] of merged) {
    if (b0 > a1) break;
    const lo = Math.max(a0, b0);
    const hi = Math.min(a1, b1);
    if (hi >= lo) n += hi - lo + 1;
  }
  return n;
}

export interface DropAccount {
  /** Envelope seqs the vendor never saw that lie in a queue drop record's [fromSeq, toSeq]. */
  readonly gapsCovered: number;
  /** Envelope seqs the vendor never saw that no drop record names: each one is a loss. */
  readonly gapsUncovered: number;
  /** Dropped seqs above the last one the vendor saw (they leave no gap). */
  readonly droppedAfterLast: number;
  /** Queue refusals (never given a seq; a record's count) and flow denies. */
  readonly refusedOrDenied: number;
  /**
   * Unseen seqs below the oldest drop record still in the log that its running `total` accounts for
   * (the log purged the records that named them: total − count of that record is the drops before it).
   */
  readonly coveredByTotal: number;
}

/**
 * Matches what the vendor missed against the audit log: the gaps in the envelope sequence numbers
 * (seq = the queue's seq, SPEC.md "Contexts and sequence numbers") against the [fromSeq, toSeq] of the
 * queue drop records.
 */
export function accountDrops(queue: readonly AuditLine[], flow: readonly AuditLine[], gaps: readonly (readonly [number, number])[], lastSeq: number): DropAccount {
  const ranges: [number, number][] = [];
  let refused = 0;
  // Per reason, the drop record with the lowest fromSeq: its total − count drops came before it.
  const oldest = new Map<string, { from: number; before: number }>();
  for (const r of queue) {
    if (r.decision !== "deny") continue;
    const from = r.detail?.fromSeq;
    const to = r.detail?.toSeq;
    const count = typeof r.detail?.count === "number" ? r.detail.count : 1;
    if (typeof from === "number" && typeof to === "number") {
      ranges.push([from, to]);
      const total = r.detail?.total;
      const o = oldest.get(r.reason ?? "");
      if (typeof total === "number" && (!o || from < o.from)) oldest.set(r.reason ?? "", { from, before: total - count });
    } else refused += count;
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  let covered = 0;
  let total = 0;
  for (const [a, b] of gaps) {
    total += b - a + 1;
    covered += overlap(merged, a, b);
  }
  // Gaps below the oldest retained drop record: covered up to the drops its running total says came first.
  let byTotal = 0;
  const floor = Math.min(...[...oldest.values()].map((o) => o.from));
  if (Number.isFinite(floor)) {
    let below = 0;
    for (const [a, b] of gaps) if (a < floor) below += Math.min(b, floor - 1) - a + 1 - overlap(merged, a, Math.min(b, floor - 1));
    const before = [...oldest.values()].reduce((x, o) => x + o.before, 0);
    byTotal = Math.min(below, before);
  }
  const denied = flow.filter((r) => r.decision === "deny").length;
  return { gapsCovered: covered + byTotal, gapsUncovered: total - covered - byTotal, droppedAfterLast: overlap(merged, lastSeq + 1, Number.MAX_SAFE_INTEGER), refusedOrDenied: refused + denied, coveredByTotal: byTotal };
}
