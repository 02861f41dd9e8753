/**
 * Aggregation of flow decisions, so a day of a busy home fits the partition (issue 4, "Volume").
 *
 * - Allowed and minimized flows become rows of per-minute summaries per device × integration ×
 *   decision × rule (count, bytes, fieldsDropped), written as `flow-summary` records every
 *   `summaryEveryMs` (rows of several minutes share one record and its string table).
 * - Each denial is written at once as its own `flow` record. Identical denials (same device,
 *   integration, rule, reason, topic) later in the same minute are only counted; records are
 *   immutable, so the count goes into a follow-up `flow-summary` record with decision `deny` and
 *   detail `{ repeatOf: <seq of the first>, repeats: <n>, minute }` once the minute is over.
 */
import type { TimerId, Timers, Clock } from "../ports.js";
import type { AuditEvent, FlowSummaryRow } from "./types.js";
import { ErrorCode, PortcullisError } from "../errors.js";

/** Groups held in RAM before an early flush (the aggregator rejects growth by flushing). */
export const MAX_GROUPS = 2048;
export const DEFAULT_SUMMARY_EVERY_MS = 5 * 60_000;

/** One flow decision as the gateway reports it. */
export interface FlowSample {
  readonly device: string;
  readonly integration: string | null;
  readonly decision: "allow" | "minimize" | "deny";
  readonly rule: string | null;
  readonly reason: string;
  readonly topic?: string;
  /** Bytes that left (allow/minimize) or would have left (deny). */
  readonly bytes: number;
  readonly fieldsDropped: number;
}

export interface AggregatorOptions {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly summaryEveryMs?: number;
  readonly maxGroups?: number;
  /** Largest number of rows one record may carry (the log keeps records inside a flash sector). */
  readonly rowsPerRecord: number;
  /** Appends a record to the log: its seq at once, and a promise that resolves when it is durable. */
  readonly emit: (event: AuditEvent) => { readonly seq: number; readonly done: Promise<number> };
  /** Called when an emitted record fails (the log is then failing closed anyway). */
  readonly onError: (e: unknown) => void;
}

interface Denial {
  readonly minute: number;
  readonly sample: FlowSample;
  readonly seq: number;
  readonly done: Promise<number>;
  repeats: number;
}

const SEP = "\u0000";

export class FlowAggregator {
  readonly #o: AggregatorOptions;
  readonly #rows = new Map<string, { -readonly [K in keyof FlowSummaryRow]: FlowSummaryRow[K] }>();
  readonly #denials = new Map<string, Denial>();
  readonly #timer: TimerId;
  #closed = false;

  constructor(o: AggregatorOptions) {
    if (o.rowsPerRecord < 1) throw new RangeError("rowsPerRecord must be positive");
    this.#o = o;
    this.#timer = o.timers.every(o.summaryEveryMs ?? DEFAULT_SUMMARY_EVERY_MS, () => void this.flush(false));
  }

  /** Rows and denials waiting in RAM. */
  get pending(): number {
    return this.#rows.size + this.#denials.size;
  }

  /**
   * Records one flow decision. Resolves with the seq of the record that holds it once that is durable
   * (a denial's own record, or its first occurrence's), or undefined for an aggregated allow.
   * @throws PortcullisError `bad-option` on a malformed sample (negative counts).
   */
  add(s: FlowSample): Promise<number | undefined> {
    if (this.#closed) throw new PortcullisError(ErrorCode.BadOption, "aggregator is closed");
    if (!Number.isSafeInteger(s.bytes) || s.bytes < 0 || !Number.isSafeInteger(s.fieldsDropped) || s.fieldsDropped < 0) {
      throw new PortcullisError(ErrorCode.BadOption, "bytes and fieldsDropped must be non-negative integers");
    }
    const minute = Math.floor(this.#o.clock.now() / 60000) * 60000;
    if (this.pending >= (this.#o.maxGroups ?? MAX_GROUPS)) void this.flush(true);
    if (s.decision === "deny") {
      const key = [minute, s.device, s.integration, s.rule, s.reason, s.topic].join(SEP);
      const seen = this.#denials.get(key);
      if (seen) {
        seen.repeats++;
        return seen.done;
      }
      const ev: { -readonly [K in keyof AuditEvent]: AuditEvent[K] } = {
        kind: "flow", decision: "deny", device: s.device, reason: s.reason, detail: { bytes: s.bytes, fieldsDropped: s.fieldsDropped },
      };
      if (s.integration !== null) ev.integration = s.integration;
      if (s.rule !== null) ev.rule = s.rule;
      if (s.topic !== undefined) ev.topic = s.topic;
      const { seq, done } = this.#o.emit(ev);
      this.#denials.set(key, { minute, sample: s, seq, done, repeats: 0 });
      return done;
    }
    const key = [minute, s.device, s.integration, s.decision, s.rule].join(SEP);
    const row = this.#rows.get(key);
    if (row) {
      row.count++;
      row.bytes += s.bytes;
      row.fieldsDropped += s.fieldsDropped;
    } else {
      this.#rows.set(key, { minute, device: s.device, integration: s.integration, decision: s.decision, rule: s.rule, count: 1, bytes: s.bytes, fieldsDropped: s.fieldsDropped });
    }
    return Promise.resolve(undefined);
  }

  /**
   * Writes the summaries of finished minutes (all minutes when `all`): allowed-flow rows in
   * `flow-summary` records, and one follow-up record per repeated denial.
   */
  flush(all: boolean): Promise<void> {
    const written: Promise<unknown>[] = [];
    const now = Math.floor(this.#o.clock.now() / 60000) * 60000;
    const rows: FlowSummaryRow[] = [];
    for (const [k, r] of this.#rows) {
      if (!all && r.minute >= now) continue;
      rows.push(r);
      this.#rows.delete(k);
    }
    rows.sort(compareRows);
    for (let i = 0; i < rows.length; i += this.#o.rowsPerRecord) {
      written.push(this.#send({ kind: "flow-summary", decision: "info", summary: rows.slice(i, i + this.#o.rowsPerRecord) }));
    }
    for (const [k, d] of this.#denials) {
      if (!all && d.minute >= now) continue;
      this.#denials.delete(k);
      if (d.repeats === 0) continue;
      const ev: { -readonly [K in keyof AuditEvent]: AuditEvent[K] } = {
        kind: "flow-summary", decision: "deny", device: d.sample.device, reason: d.sample.reason,
        detail: { repeatOf: d.seq, repeats: d.repeats, minute: d.minute },
      };
      if (d.sample.integration !== null) ev.integration = d.sample.integration;
      if (d.sample.rule !== null) ev.rule = d.sample.rule;
      written.push(this.#send(ev));
    }
    return Promise.all(written).then(() => undefined);
  }

  /** Flushes everything and stops the timer. Harmless twice. */
  close(): void {
    if (this.#closed) return;
    void this.flush(true);
    this.#o.timers.cancel(this.#timer);
    this.#closed = true;
  }

  /** Emits one record; the promise settles (never rejects) once it is durable or has failed. */
  #send(ev: AuditEvent): Promise<unknown> {
    try {
      return this.#o.emit(ev).done.catch(this.#o.onError);
    } catch (e) {
      this.#o.onError(e);
      return Promise.resolve();
    }
  }
}

function compareRows(a: FlowSummaryRow, b: FlowSummaryRow): number {
  if (a.minute !== b.minute) return a.minute - b.minute;
  const ka = [a.device, a.integration ?? "", a.decision, a.rule ?? ""].join(SEP);
  const kb = [b.device, b.integration ?? "", b.decision, b.rule ?? ""].join(SEP);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
