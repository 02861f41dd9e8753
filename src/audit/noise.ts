/**
 * Aggregation of unauthenticated noise (issue 13, "Noise cannot displace evidence"): refused
 * connections, protocol errors before authentication, wrong admin tokens. Anyone on the LAN can cause
 * these without credentials, so they are not written one record each: they are counted per
 * source address × kind × reason × minute and written as one record per key once the minute is over,
 * with a cap on the keys held (beyond it, one "other" row per kind counts the rest). The log gives the
 * records a bounded share of the partition (`log.ts`, NOISE_SHARE_PERCENT).
 */
import type { Clock, TimerId, Timers } from "../ports.js";
import type { AuditEvent, AuditKind } from "./types.js";

/** Keys (source × kind × reason × minute) held in RAM at most; beyond it events fold into "other". */
export const MAX_NOISE_KEYS = 64;
export const NOISE_FLUSH_EVERY_MS = 60_000;
/** The source address recorded when an event names none. */
export const UNKNOWN_SOURCE = "unknown";
/** The source of the row that counts events beyond {@link MAX_NOISE_KEYS}. */
export const OTHER_SOURCE = "other";

/** Longest source, reason or claimed id kept (anyone can send a 64 KiB client id). */
export const MAX_NOISE_FIELD = 64;

/** Admin API refusals that come before any authentication. */
const UNAUTHENTICATED_ADMIN = Object.freeze(["bad-token", "no-token"]);

/**
 * Whether an event comes from an unauthenticated source: a denied connect or auth without a
 * subscription (`detail.op`), a protocol error of a connection that has no device, or an admin
 * refusal for a missing or wrong token. Events of authenticated devices and admins are evidence.
 */
export function isNoise(e: AuditEvent): boolean {
  if (e.decision !== "deny") return false;
  switch (e.kind) {
    case "connect":
      return true;
    case "auth":
      return e.detail?.op === undefined;
    case "protocol":
      return e.device === undefined;
    case "admin":
      return e.reason !== undefined && UNAUTHENTICATED_ADMIN.includes(e.reason);
    default:
      return false;
  }
}

/**
 * The address part of a remote ("192.0.2.7:51234" → "192.0.2.7", "[2001:db8::1]:443" → "2001:db8::1"):
 * every new connection has a new source port, so keying on it would let one host fill the keys.
 */
export function sourceAddress(remote: unknown): string {
  if (typeof remote !== "string" || remote === "") return UNKNOWN_SOURCE;
  const v6 = /^\[([^\]]*)\]:\d+$/.exec(remote);
  if (v6) return v6[1]!;
  const v4 = /^([^:]*):\d+$/.exec(remote);
  return v4 ? v4[1]! : remote;
}

interface Row {
  readonly kind: AuditKind;
  readonly reason: string;
  readonly remote: string;
  /** First minute counted (ms since the epoch) and the last. */
  readonly minute: number;
  last: number;
  count: number;
  /** The first client id claimed, when the events name one. */
  readonly claimed: string | null;
}

export interface NoiseOptions {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly maxKeys?: number;
  /**
   * Writes one noise record. Returns false when the log's noise share is spent or the log is full:
   * the row then stays in RAM (still counting) and is offered again at the next flush.
   */
  readonly emit: (event: AuditEvent) => boolean;
}

const SEP = "\u0000";

export class NoiseAggregator {
  readonly #o: NoiseOptions;
  readonly #rows = new Map<string, Row>();
  readonly #timer: TimerId;
  #closed = false;
  /** Events counted since start (for status and tests). */
  events = 0;

  constructor(o: NoiseOptions) {
    if ((o.maxKeys ?? MAX_NOISE_KEYS) < 1) throw new RangeError("maxKeys must be positive");
    this.#o = o;
    this.#timer = o.timers.every(NOISE_FLUSH_EVERY_MS, () => this.flush(false));
  }

  /** Rows waiting in RAM (at most maxKeys plus one "other" row per kind). */
  get pending(): number {
    return this.#rows.size;
  }

  /** Counts one noise event. Never throws on content: malformed fields are recorded as "unknown". */
  add(e: AuditEvent): void {
    if (this.#closed) return;
    this.events++;
    const minute = Math.floor(this.#o.clock.now() / 60000) * 60000;
    const remote = sourceAddress(e.detail?.remote).slice(0, MAX_NOISE_FIELD);
    const reason = (e.reason ?? "unknown").slice(0, MAX_NOISE_FIELD);
    const claimedRaw = typeof e.detail?.claimed === "string" ? e.detail.claimed : e.device;
    const claimed = claimedRaw === undefined ? null : claimedRaw.slice(0, MAX_NOISE_FIELD);
    let key = [remote, e.kind, reason, minute].join(SEP);
    let row = this.#rows.get(key);
    if (!row && this.#rows.size >= (this.#o.maxKeys ?? MAX_NOISE_KEYS)) {
      // Over the cap: one row per kind for everything else, so RAM and records stay bounded.
      key = [OTHER_SOURCE, e.kind].join(SEP);
      row = this.#rows.get(key);
      if (!row) {
        row = { kind: e.kind, reason: "other", remote: OTHER_SOURCE, minute, last: minute, count: 0, claimed: null };
        this.#rows.set(key, row);
      }
    }
    if (!row) {
      row = { kind: e.kind, reason, remote, minute, last: minute, count: 0, claimed };
      this.#rows.set(key, row);
    }
    // An event the source already tallied (the broker's evictions, the admin throttle's lockouts)
    // carries its own count: add it, so the row's count stays the number of occurrences.
    const n = e.detail?.count;
    row.count += typeof n === "number" && Number.isInteger(n) && n > 0 ? n : 1;
    row.last = Math.max(row.last, minute);
  }

  /** Writes the rows of finished minutes (all rows when `all`); rows the log refuses stay. */
  flush(all: boolean): void {
    const now = Math.floor(this.#o.clock.now() / 60000) * 60000;
    for (const [k, r] of this.#rows) {
      if (!all && r.last >= now) continue;
      const detail = { remote: r.remote, count: r.count, minute: r.minute, ...(r.last !== r.minute ? { until: r.last } : {}), ...(r.claimed !== null ? { claimed: r.claimed } : {}) };
      if (!this.#o.emit({ kind: r.kind, decision: "deny", reason: r.reason, detail })) return;
      this.#rows.delete(k);
    }
  }

  /** Writes what it can and stops the timer. Harmless twice. */
  close(): void {
    if (this.#closed) return;
    this.flush(true);
    this.#o.timers.cancel(this.#timer);
    this.#closed = true;
  }
}
