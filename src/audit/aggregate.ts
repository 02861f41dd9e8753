/**
 * Aggregation of flow decisions, so a day of a busy home fits the partition (issue 4, "Volume").
 *
 * - Allowed and minimized flows become rows of per-minute summaries per device × integration ×
 *   decision × rule (count, bytes, fieldsDropped), written as `flow-summary` records every
 *   `summaryEveryMs` (rows of several minutes share one record and its string table).
 * - Every allowed or minimized flow is also counted in a flow commit: one `flow-summary` record with
 *   reason `commit` and detail `{ <integration>: count, ... }` (bytes and devices are in the rows),
 *   written at most every `flowCommitMs` (the first flow after a quiet window is committed at once,
 *   and so is a commit that already covers FLOW_COMMIT_BATCH flows).
 *   `add` resolves only once the commit that counts the flow is durable, so the gateway forwards a
 *   message (and acknowledges it) only after a durable record covers it; a crash loses at most the
 *   per-device breakdown of the rows, never the evidence that the messages left (issue 13).
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
/** Longest wait for a flow commit (bench/audit.bench.ts weighs it against flash volume). */
export const DEFAULT_FLOW_COMMIT_MS = 2000;
/**
 * Flows waiting for one commit that make it worth writing at once, before the window ends: the
 * record's fixed cost is then shared by this many messages, and a device at its limit of pending
 * acceptances (the broker's maxPendingAccepts, 8) is never held for a whole window.
 */
export const FLOW_COMMIT_BATCH = 8;

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
  /** Flow commits are written at most this often (0: one per turn of the event loop). */
  readonly flowCommitMs?: number;
  /** Makes the records just emitted durable now, skipping the group-commit window. */
  readonly commitNow?: () => void;
  /**
   * Group commit on the flash's flush (a log on a flash with `durable()`): a flow commit is written at
   * the end of the job that added the flow, or, while the previous commit is still becoming durable,
   * as soon as it is, for every flow that came meanwhile. `flowCommitMs` and FLOW_COMMIT_BATCH then do
   * not apply: a flow waits for at most two flushes, and at most one commit is in flight.
   */
  readonly commitPerFlush?: boolean;
  readonly maxGroups?: number;
  /** Largest number of rows one record may carry (the log keeps records inside a flash sector). */
  readonly rowsPerRecord: number;
  /** Appends a record to the log: its seq at once, and a promise that resolves when it is durable. */
  readonly emit: (event: AuditEvent) => { readonly seq: number; readonly done: Promise<number> };
  /** Called when an emitted record fails (the log is then failing closed anyway). */
  readonly onError: (e: unknown) => void;
}

/**
 * A denial of this minute: its own record's seq, the identical denials counted since, and that record's
 * durability while it is pending (dropped once settled: repeats then resolve at once). What it was (minute,
 * device, integration, rule, reason, topic) is its key, so a held denial costs one small object.
 */
interface Denial {
  readonly seq: number;
  repeats: number;
  done: Promise<number> | undefined;
}

/** The counters of one summary row; the row's minute, device, integration, decision and rule are its key. */
interface RowCounts {
  count: number;
  bytes: number;
  fieldsDropped: number;
}

/**
 * The `integration` of summary rows that count local deliveries (device → device through the home
 * broker, never leaving the home): `rule` is then the topic, `count` the publishes routed, `bytes`
 * their payload bytes. Not a valid integration id, so it cannot collide with one.
 */
export const LOCAL_INTEGRATION = "(local)";

/** The detail key of flows without an integration in a flow commit. */
export const NO_INTEGRATION = "(none)";
/** Integrations one commit record counts at most (the log's detail-entry limit). */
const COMMIT_KEYS = 32;

/**
 * The allowed flows waiting for the next commit record share one promise: the record covers them all,
 * so they settle together. A promise per flow cost about 30 heap slots on XS (the promise, its two
 * resolving functions, the waiter and the handler's derived promise), for every message in flight.
 */
interface CommitWindow {
  readonly promise: Promise<undefined>;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/** A window's promise, with the handler that keeps a dropped one from being an unhandled rejection. */
function openWindow(): CommitWindow {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<undefined>((res, rej) => {
    resolve = res as () => void;
    reject = rej;
  });
  // A refused commit is raised by the log (alarm, fail closed); a caller that drops the promise
  // must not turn it into an unhandled rejection. Callers that await it still see the rejection.
  promise.then(undefined, ignore);
  return { promise, resolve, reject };
}

const SEP = "\u0000";

export class FlowAggregator {
  readonly #o: AggregatorOptions;
  /** Key: minute, device, integration, decision, rule joined by SEP (null as ""; see rowKey). */
  readonly #rows = new Map<string, RowCounts>();
  readonly #denials = new Map<string, Denial>();
  readonly #timer: TimerId;
  readonly #commits = new Map<string, number>();
  /** The flows counted since the last commit, and the promise they share. */
  #waiting = 0;
  #window: CommitWindow | undefined;
  #commitTimer: TimerId | undefined;
  #commitQueued = false;
  /** The commit becoming durable (`commitPerFlush`). */
  #inFlight: Promise<void> | undefined;
  #lastCommit = -Infinity;
  #closed = false;

  constructor(o: AggregatorOptions) {
    if (o.rowsPerRecord < 1) throw new RangeError("rowsPerRecord must be positive");
    if (!((o.flowCommitMs ?? 0) >= 0)) throw new RangeError("flowCommitMs must be non-negative");
    this.#o = o;
    this.#timer = o.timers.every(o.summaryEveryMs ?? DEFAULT_SUMMARY_EVERY_MS, () => void this.flush(false));
  }

  /** Rows and denials waiting in RAM. */
  get pending(): number {
    return this.#rows.size + this.#denials.size;
  }

  /** Flows waiting for their commit record. */
  get uncommitted(): number {
    return this.#waiting;
  }

  /**
   * Records one flow decision. Resolves once a durable record covers it: with the seq of a denial's
   * own record (or its first occurrence's), or undefined for an allowed flow once its commit record
   * is durable. Rejects when that record cannot be written (the caller then fails closed).
   * @throws PortcullisError `bad-option` on a malformed sample (negative counts).
   */
  add(s: FlowSample): Promise<number | undefined> {
    if (this.#closed) throw new PortcullisError(ErrorCode.BadOption, "aggregator is closed");
    if (!Number.isSafeInteger(s.bytes) || s.bytes < 0 || !Number.isSafeInteger(s.fieldsDropped) || s.fieldsDropped < 0) {
      throw new PortcullisError(ErrorCode.BadOption, "bytes and fieldsDropped must be non-negative integers");
    }
    const minute = Math.floor(this.#o.clock.now() / 60000) * 60000;
    if (s.decision === "deny") {
      const key = denialKey(minute, s);
      const seen = this.#denials.get(key);
      if (seen) {
        seen.repeats++;
        return seen.done ?? Promise.resolve(seen.seq);
      }
      this._roomForOneMore();
      const ev: { -readonly [K in keyof AuditEvent]: AuditEvent[K] } = {
        kind: "flow", decision: "deny", device: s.device, reason: s.reason, detail: { bytes: s.bytes, fieldsDropped: s.fieldsDropped },
      };
      if (s.integration !== null) ev.integration = s.integration;
      if (s.rule !== null) ev.rule = s.rule;
      if (s.topic !== undefined) ev.topic = s.topic;
      const { seq, done } = this.#o.emit(ev);
      const denial: Denial = { seq, repeats: 0, done };
      this.#denials.set(key, denial);
      done.then(() => (denial.done = undefined), () => undefined);
      return done;
    }
    this._count(rowKey(minute, s.device, s.integration, s.decision, s.rule), s.bytes, s.fieldsDropped);
    const ck = s.integration ?? NO_INTEGRATION;
    this.#commits.set(ck, (this.#commits.get(ck) ?? 0) + 1);
    const w = (this.#window ??= openWindow());
    this.#waiting++;
    this._scheduleCommit();
    return w.promise;
  }

  /**
   * Counts one publish routed between local clients in the per-minute rows (device × topic): no
   * record of its own, no flow commit (nothing left the home), nothing to wait for.
   */
  countLocal(device: string, topic: string, bytes: number): void {
    if (this.#closed) return;
    const minute = Math.floor(this.#o.clock.now() / 60000) * 60000;
    this._count(rowKey(minute, device, LOCAL_INTEGRATION, "allow", topic), bytes, 0);
  }

  /** Adds to a summary row, flushing early when the rows held would exceed `maxGroups`. */
  private _count(key: string, bytes: number, fieldsDropped: number): void {
    const row = this.#rows.get(key);
    if (row) {
      row.count++;
      row.bytes += bytes;
      row.fieldsDropped += fieldsDropped;
      return;
    }
    this._roomForOneMore();
    this.#rows.set(key, { count: 1, bytes, fieldsDropped });
  }

  /** Before a new row or denial: at `maxGroups` held, write them all first rather than grow. */
  private _roomForOneMore(): void {
    if (this.pending >= (this.#o.maxGroups ?? MAX_GROUPS)) void this.flush(true);
  }

  /** Writes the pending flow commits now. Resolves (never rejects) once they are durable or failed. */
  commit(): Promise<void> {
    if (this.#commitTimer !== undefined) this.#o.timers.cancel(this.#commitTimer);
    this.#commitTimer = undefined;
    this.#commitQueued = false;
    const w = this.#window;
    if (w === undefined) return Promise.resolve(); // no flow since the last commit
    this.#lastCommit = this.#o.clock.monotonic();
    this.#waiting = 0;
    this.#window = undefined;
    const done: Promise<number>[] = [];
    try {
      // One record per window (per 32 integrations): its fixed cost is most of the flash volume.
      const all = [...this.#commits];
      for (let i = 0; i < all.length; i += COMMIT_KEYS) {
        const detail: Record<string, number> = {};
        for (const [k, n] of all.slice(i, i + COMMIT_KEYS)) detail[k] = n;
        done.push(this.#o.emit({ kind: "flow-summary", decision: "allow", reason: "commit", detail }).done);
      }
      this.#o.commitNow?.();
    } catch (e) {
      done.push(Promise.reject(e));
    } finally {
      this.#commits.clear();
    }
    const settled = Promise.all(done).then(
      () => w.resolve(),
      (e: unknown) => w.reject(e),
    );
    this.#inFlight = settled;
    void settled.then(() => { if (this.#inFlight === settled) this.#inFlight = undefined; });
    return settled;
  }

  /** The first flow after a quiet window commits at the end of this turn; later ones wait for it. */
  private _scheduleCommit(): void {
    if (this.#o.commitPerFlush) {
      if (this.#commitQueued) return;
      this.#commitQueued = true;
      const go = (): void => { if (this.#commitQueued) void this.commit(); };
      void (this.#inFlight ?? Promise.resolve()).then(go);
      return;
    }
    if (this.#waiting >= FLOW_COMMIT_BATCH && !this.#commitQueued) {
      if (this.#commitTimer !== undefined) this.#o.timers.cancel(this.#commitTimer);
      this.#commitTimer = undefined;
      this.#commitQueued = true;
      void Promise.resolve().then(() => { if (this.#commitQueued) void this.commit(); });
      return;
    }
    if (this.#commitQueued || this.#commitTimer !== undefined) return;
    const every = this.#o.flowCommitMs ?? DEFAULT_FLOW_COMMIT_MS;
    const wait = this.#lastCommit + every - this.#o.clock.monotonic();
    if (wait <= 0) {
      this.#commitQueued = true;
      void Promise.resolve().then(() => { if (this.#commitQueued) void this.commit(); });
    } else {
      this.#commitTimer = this.#o.timers.after(wait, () => {
        this.#commitTimer = undefined;
        void this.commit();
      });
    }
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
      const row = rowOf(k, r);
      if (!all && row.minute >= now) continue;
      rows.push(row);
      this.#rows.delete(k);
    }
    rows.sort(compareRows);
    for (let i = 0; i < rows.length; i += this.#o.rowsPerRecord) {
      written.push(this._send({ kind: "flow-summary", decision: "info", summary: rows.slice(i, i + this.#o.rowsPerRecord) }));
    }
    for (const [k, d] of this.#denials) {
      const [minuteText, device, integration, rule, reason] = k.split(SEP) as [string, string, string, string, string]; // denialKey
      const minute = Number(minuteText);
      if (!all && minute >= now) continue;
      this.#denials.delete(k);
      if (d.repeats === 0) continue;
      const ev: { -readonly [K in keyof AuditEvent]: AuditEvent[K] } = {
        kind: "flow-summary", decision: "deny", device, reason,
        detail: { repeatOf: d.seq, repeats: d.repeats, minute },
      };
      if (integration !== "") ev.integration = integration;
      if (rule !== "") ev.rule = rule;
      written.push(this._send(ev));
    }
    return Promise.all(written).then(() => undefined);
  }

  /** Flushes everything and stops the timer. Harmless twice. */
  close(): void {
    if (this.#closed) return;
    void this.commit();
    void this.flush(true);
    this.#o.timers.cancel(this.#timer);
    this.#closed = true;
  }

  /** Emits one record; the promise settles (never rejects) once it is durable or has failed. */
  private _send(ev: AuditEvent): Promise<unknown> {
    try {
      return this.#o.emit(ev).done.catch(this.#o.onError);
    } catch (e) {
      this.#o.onError(e);
      return Promise.resolve();
    }
  }
}

/**
 * A summary row's key. Null integration and rule are "": integration ids and rule (flow) ids are never
 * empty, nor is a local row's rule, a topic (MQTT §4.7.3); none contains U+0000 (SEP).
 */
function rowKey(minute: number, device: string, integration: string | null, decision: FlowSummaryRow["decision"], rule: string | null): string {
  return [minute, device, integration ?? "", decision, rule ?? ""].join(SEP);
}

/** A held denial's key: minute, device, integration, rule, reason, topic (absent ones as ""; see rowKey). */
function denialKey(minute: number, s: FlowSample): string {
  return [minute, s.device, s.integration ?? "", s.rule ?? "", s.reason, s.topic ?? ""].join(SEP);
}

/** The row a key and its counters stand for. */
function rowOf(key: string, c: RowCounts): FlowSummaryRow {
  const [minute, device, integration, decision, rule] = key.split(SEP) as [string, string, string, FlowSummaryRow["decision"], string];
  return { minute: Number(minute), device, integration: integration === "" ? null : integration, decision, rule: rule === "" ? null : rule, count: c.count, bytes: c.bytes, fieldsDropped: c.fieldsDropped };
}

/** Marks a rejection handled (shared: no closure per flow). */
function ignore(): void {}

function compareRows(a: FlowSummaryRow, b: FlowSummaryRow): number {
  if (a.minute !== b.minute) return a.minute - b.minute;
  const ka = [a.device, a.integration ?? "", a.decision, a.rule ?? ""].join(SEP);
  const kb = [b.device, b.integration ?? "", b.decision, b.rule ?? ""].join(SEP);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
