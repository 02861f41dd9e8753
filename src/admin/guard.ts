/**
 * Password guessing at login (and at setup), held back per account AND per remote address:
 *
 * - After {@link LOGIN_GUARD.backoffAfter} failures, each further attempt must wait 2^(n−5) s
 *   (1 s, 2 s, 4 s … at most {@link LOGIN_GUARD.backoffMaxMs}); an attempt that comes earlier is refused
 *   (429 + Retry-After) without the password being checked, so the back-off is not an oracle.
 * - An account with {@link LOGIN_GUARD.lockAfter} failures in a row is locked (persisted by the caller)
 *   until an owner unlocks it (`POST /api/v1/accounts/{name}/unlock`) or the console does (`unlock`).
 *   A remote address is never locked for good (many people share one); it stays at the longest
 *   back-off, and is forgotten {@link LOGIN_GUARD.forgetMs} after its last failure.
 * - A successful login clears the account's count, not the address's (else a guesser behind the
 *   same NAT as the owner would have its count reset).
 *
 * Failures are not written one record each: they are counted per claimed account × address × minute
 * and written as one `admin` record (`reason: "login-failed"`, `detail.count`, `detail.refused`) once
 * the minute is over, at most {@link LOGIN_GUARD.rows} rows (beyond it one `other` row), like the
 * audit log's noise rows (src/audit/noise.ts). A minute with {@link LOGIN_GUARD.alarmPerMinute}
 * failures or more raises one `alarm` record, and so does each lockout.
 */
import type { AuditEvent } from "../audit/types.js";

export const LOGIN_GUARD = Object.freeze({
  backoffAfter: 5,
  lockAfter: 20,
  backoffBaseMs: 1000,
  backoffMaxMs: 15 * 60_000,
  /** Addresses tracked; beyond it, the others share one entry (`*`). */
  remotes: 64,
  forgetMs: 60 * 60_000,
  /** Aggregate rows held in RAM per minute. */
  rows: 64,
  alarmPerMinute: 20,
});

export type GuardOptions = Partial<typeof LOGIN_GUARD>;

/** Longest claimed account name kept in a record (anyone can send a long one). */
const MAX_CLAIMED = 32;
const OTHER = "other";

interface Counter {
  failures: number;
  /** Monotonic ms of the last failure. */
  last: number;
}

interface Row {
  readonly who: string;
  readonly remote: string;
  readonly minute: number;
  count: number;
  refused: number;
}

export type GuardVerdict = { readonly ok: true } | { readonly ok: false; readonly why: "backoff"; readonly retryAfterS: number };

export class LoginGuard {
  readonly #o: typeof LOGIN_GUARD;
  readonly #clock: { now(): number; monotonic(): number };
  readonly #emit: (e: AuditEvent) => void;
  readonly #accounts = new Map<string, Counter>();
  readonly #remotes = new Map<string, Counter>();
  readonly #rows = new Map<string, Row>();
  /** Failures per minute (wall ms of the minute) for the alarm; only the current minute is kept. */
  #minute = -1;
  #minuteFailures = 0;
  #alarmed = false;

  constructor(clock: { now(): number; monotonic(): number }, emit: (e: AuditEvent) => void, options: GuardOptions = {}) {
    this.#o = { ...LOGIN_GUARD, ...options };
    for (const [k, v] of Object.entries(this.#o)) if (!Number.isInteger(v) || v < 1) throw new Error(`login guard ${k} must be a positive integer`);
    this.#clock = clock;
    this.#emit = emit;
  }

  /** The back-off for `n` failures: 0 below the threshold, then doubling to the cap. */
  delayMs(n: number): number {
    if (n < this.#o.backoffAfter) return 0;
    return Math.min(this.#o.backoffMaxMs, this.#o.backoffBaseMs * 2 ** Math.min(30, n - this.#o.backoffAfter));
  }

  /**
   * Whether an attempt for `account` (a known account name, or undefined) from `remote` may be
   * checked now. A refusal is counted into the minute's row for `claimed` × `remote`.
   */
  check(account: string | undefined, claimed: string, remote: string): GuardVerdict {
    this._sweep();
    const now = this.#clock.monotonic();
    let wait = 0;
    for (const c of [account === undefined ? undefined : this.#accounts.get(account), this.#remotes.get(this._remoteKey(remote))]) {
      if (c) wait = Math.max(wait, c.last + this.delayMs(c.failures) - now);
    }
    if (wait <= 0) return { ok: true };
    this._row(claimed, remote).refused++;
    return { ok: false, why: "backoff", retryAfterS: Math.max(1, Math.ceil(wait / 1000)) };
  }

  /** Counts a failure. True when it brought `account` to the lockout threshold (the caller locks it). */
  failed(account: string | undefined, claimed: string, remote: string): boolean {
    this._sweep();
    const now = this.#clock.monotonic();
    const bump = (map: Map<string, Counter>, k: string): Counter => {
      const c = map.get(k) ?? { failures: 0, last: now };
      c.failures++;
      c.last = now;
      map.set(k, c);
      return c;
    };
    bump(this.#remotes, this._remoteKey(remote));
    this._row(claimed, remote).count++;
    this._countForAlarm();
    if (account === undefined) return false;
    return bump(this.#accounts, account).failures === this.#o.lockAfter;
  }

  /** Counts an attempt refused without a check (a locked account) into the minute's row. */
  refused(claimed: string, remote: string): void {
    this._sweep();
    this._row(claimed, remote).refused++;
  }

  /** A successful login: the account's count starts again. */
  succeeded(account: string): void {
    this.#accounts.delete(account);
  }

  /** Clears the counts of an account or an address (an owner's or the console's unlock). */
  clear(nameOrAddress: string): boolean {
    const a = this.#accounts.delete(nameOrAddress);
    const r = this.#remotes.delete(nameOrAddress);
    return a || r;
  }

  /** Failures counted for an account (tests, status). */
  failures(account: string): number {
    return this.#accounts.get(account)?.failures ?? 0;
  }

  /** Addresses tracked now (bounded by `remotes` + 1). */
  get tracked(): number {
    return this.#remotes.size;
  }

  /** Writes the rows of finished minutes (all rows when `all`). */
  flush(all = false): void {
    const minute = this._minuteOf(this.#clock.now());
    for (const [k, r] of this.#rows) {
      if (!all && r.minute >= minute) continue;
      this.#rows.delete(k);
      this.#emit({
        kind: "admin",
        decision: "deny",
        reason: "login-failed",
        detail: { who: r.who, role: null, via: "password", remote: r.remote, result: "denied", count: r.count, refused: r.refused, minute: r.minute },
      });
    }
  }

  private _minuteOf(ms: number): number {
    return Math.floor(ms / 60_000) * 60_000;
  }

  private _countForAlarm(): void {
    const minute = this._minuteOf(this.#clock.now());
    if (minute !== this.#minute) {
      this.#minute = minute;
      this.#minuteFailures = 0;
      this.#alarmed = false;
    }
    this.#minuteFailures++;
    if (!this.#alarmed && this.#minuteFailures >= this.#o.alarmPerMinute) {
      this.#alarmed = true;
      this.#emit({ kind: "alarm", decision: "info", reason: "login-burst", detail: { failures: this.#minuteFailures, minute, who: "gateway" } });
    }
  }

  private _row(claimed: string, remote: string): Row {
    const minute = this._minuteOf(this.#clock.now());
    const who = claimed.slice(0, MAX_CLAIMED);
    let k = `${who}\u0000${remote}\u0000${minute}`;
    let row = this.#rows.get(k);
    if (!row && this.#rows.size >= this.#o.rows) {
      k = `${OTHER}\u0000${minute}`;
      row = this.#rows.get(k);
      if (!row) {
        row = { who: OTHER, remote: OTHER, minute, count: 0, refused: 0 };
        this.#rows.set(k, row);
      }
    }
    if (!row) {
      row = { who, remote, minute, count: 0, refused: 0 };
      this.#rows.set(k, row);
    }
    return row;
  }

  private _remoteKey(remote: string): string {
    if (this.#remotes.has(remote) || this.#remotes.size < this.#o.remotes) return remote;
    return "*";
  }

  /** Forgets addresses whose last failure is old; finished minutes' rows are written. */
  private _sweep(): void {
    const now = this.#clock.monotonic();
    for (const [k, c] of this.#remotes) if (now - c.last >= this.#o.forgetMs) this.#remotes.delete(k);
    this.flush(false);
  }
}
