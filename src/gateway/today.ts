/**
 * What left today, per integration: the messages the contracts let out (allowed or minimized) since
 * the gateway's local midnight, counted from the audit log — the flow commits (durable before a
 * message leaves) for the messages, the `flow-summary` rows for bytes and the minimized share — so a
 * reboot loses nothing and the counters are what an auditor can verify. The day boundary is
 * `utcOffsetMinutes` from gateway.json (a fixed offset: the chip has no time-zone database, so a
 * daylight-saving change is the owner's edit). The log is read incrementally: from the day's first
 * record once, then only what was appended since the last read; a new day starts from zero.
 * Commits are written within `audit.flowCommitMs`, so `messages` is current; the rows come every
 * `audit.summaryEveryMs`, so `bytes` and `minimized` trail by at most that; `throughSeq` says how far
 * the reading goes.
 */
import type { AuditQuery, AuditRecord } from "../audit/types.js";
import { LOCAL_INTEGRATION, NO_INTEGRATION } from "../audit/aggregate.js";

const DAY_MS = 86_400_000;
/** Records one read pulls at a time (the log's own query cap is higher). */
const PAGE = 500;

export interface TodayCount {
  readonly integration: string;
  /** Messages let out today (allowed and minimized). */
  readonly messages: number;
  /** Of them, minimized (fields withheld), from the summary rows written so far. */
  readonly minimized: number;
  /** Their payload bytes as they left. */
  readonly bytes: number;
}

export interface Today {
  /** Local midnight that starts the day, ms since the epoch. */
  readonly since: number;
  readonly utcOffsetMinutes: number;
  /** False while the gateway's clock is not set: "today" is then its best guess. */
  readonly clockSet: boolean;
  /** The log is read through this seq (0: empty). */
  readonly throughSeq: number;
  readonly integrations: readonly TodayCount[];
}

export interface TodayOptions {
  readonly query: (q: AuditQuery) => AuditRecord[];
  /** The log's next seq (AuditLog.nextSeq): a read that found everything goes on from there. */
  readonly nextSeq: () => number;
  readonly clock: { now(): number; isSet(): boolean };
  /** Minutes east of UTC, -720..840 (default 0: the day starts at 00:00 UTC). */
  readonly utcOffsetMinutes?: number;
}

/** The local midnight at or before `now` for a fixed UTC offset. */
export function localMidnight(now: number, utcOffsetMinutes: number): number {
  const off = utcOffsetMinutes * 60_000;
  return Math.floor((now + off) / DAY_MS) * DAY_MS - off;
}

export class TodayCounters {
  readonly #o: TodayOptions;
  readonly #off: number;
  #day = -1;
  #next = 1;
  #through = 0;
  readonly #counts = new Map<string, { messages: number; minimized: number; bytes: number }>();

  constructor(o: TodayOptions) {
    const off = o.utcOffsetMinutes ?? 0;
    if (!Number.isInteger(off) || off < -720 || off > 840) throw new RangeError("utcOffsetMinutes must be whole minutes from -720 to 840");
    this.#o = o;
    this.#off = off;
  }

  /** The counts as of now (reads what the log gained since the last call). */
  read(): Today {
    const day = localMidnight(this.#o.clock.now(), this.#off);
    if (day !== this.#day) {
      // A later day goes on from where the last read stopped (what follows is counted by its time);
      // the first read, or a clock set back to an earlier day, finds the day's start by time.
      if (day < this.#day) this.#next = 1;
      this.#day = day;
      this.#counts.clear();
    }
    for (;;) {
      // The day's first read finds its start by time; later ones go on from the last seq seen.
      const rs = this.#o.query(this.#next === 1 ? { since: 1, fromTime: day, limit: PAGE } : { since: this.#next, limit: PAGE });
      for (const r of rs) this._count(r);
      const last = rs.at(-1);
      if (last) this.#next = last.seq + 1;
      if (rs.length < PAGE) break;
    }
    // Everything appended so far is read (or older than the day): the next read starts after it, so
    // a quiet day does not search the log again at every poll.
    this.#next = Math.max(this.#next, this.#o.nextSeq());
    this.#through = this.#next - 1;
    const integrations = [...this.#counts].map(([integration, c]) => ({ integration, ...c })).sort((a, b) => (a.integration < b.integration ? -1 : 1));
    return { since: day, utcOffsetMinutes: this.#off, clockSet: this.#o.clock.isSet(), throughSeq: this.#through, integrations };
  }

  private _entry(integration: string): { messages: number; minimized: number; bytes: number } {
    let c = this.#counts.get(integration);
    if (!c) this.#counts.set(integration, (c = { messages: 0, minimized: 0, bytes: 0 }));
    return c;
  }

  private _count(r: AuditRecord): void {
    if (r.kind !== "flow-summary") return;
    const outside = (i: string | null): i is null => i === null || i === LOCAL_INTEGRATION || i === NO_INTEGRATION;
    if (r.reason === "commit" && r.detail) {
      // A flow commit is durable before its messages leave: the count of what left, by integration.
      if (r.time < this.#day) return;
      for (const [i, n] of Object.entries(r.detail)) if (!outside(i) && typeof n === "number") this._entry(i).messages += n;
    } else if (r.summary) {
      // Rows add bytes and the minimized share; each counts by its minute (a summary written after
      // midnight may still hold 23:59's rows). Their messages are already in the commits.
      for (const row of r.summary) {
        if (row.minute < this.#day || outside(row.integration)) continue;
        const c = this._entry(row.integration);
        c.bytes += row.bytes;
        if (row.decision === "minimize") c.minimized += row.count;
      }
    }
  }
}
