/**
 * Per-address throttling of failed admin authentication, transport-free and time-injected.
 *
 *   open ──(failure; < K within the last W)─▶ open         (each failure: one 401 record)
 *   open ──(K-th failure within the last W)─▶ locked       (one `throttled` record: failures = K)
 *   locked ──(any request before W passes)─▶ locked       (429, no token check, counted, no record)
 *   locked ──(W passed)────────────────────▶ gone         (one `throttled` record: refused = n, if n > 0)
 *
 * So an address costs at most one record per window however fast it knocks, and no address has more
 * than K wrong tokens checked in any W ms. A correct token does not wipe the recent failures (else a
 * guesser sharing an address with the owner would get its count reset). A locked address is
 * refused even with the right token: checking tokens during the lockout would keep the guessing
 * oracle open. Addresses are tracked in a bounded table; when it is full, untracked addresses share
 * one overflow entry (`*`), so many addresses can lock each other out but never grow the table.
 */
import type { AuditEvent } from "../audit/types.js";

/** Defaults: K failures within W ms lock the address for W ms; at most `addresses` tracked. */
export const AUTH_THROTTLE = Object.freeze({ failures: 5, windowMs: 60_000, addresses: 64 });

export interface ThrottleOptions {
  readonly failures?: number;
  readonly windowMs?: number;
  readonly addresses?: number;
}

interface Entry {
  /** Monotonic ms of the failures of the last window (at most K: a sliding window). */
  times: number[];
  /** Monotonic ms when the lockout ends; 0 when not locked. */
  lockedUntil: number;
  /** Requests refused during the lockout. */
  refused: number;
}

/** The address part of a peer: "192.0.2.1:5000" → "192.0.2.1", "[::1]:5000" → "::1", "::1" unchanged. */
export function addressOf(remote: string): string {
  if (remote.startsWith("[")) {
    const close = remote.indexOf("]");
    return close > 0 ? remote.slice(1, close) : remote;
  }
  const colon = remote.indexOf(":");
  return colon >= 0 && remote.indexOf(":", colon + 1) < 0 ? remote.slice(0, colon) : remote;
}

export class AuthThrottle {
  readonly #now: () => number;
  readonly #emit: (event: AuditEvent) => void;
  readonly #failures: number;
  readonly #windowMs: number;
  readonly #addresses: number;
  readonly #table = new Map<string, Entry>();

  /** @throws Error when a limit is not a positive integer. */
  constructor(now: () => number, emit: (event: AuditEvent) => void, options: ThrottleOptions = {}) {
    this.#failures = options.failures ?? AUTH_THROTTLE.failures;
    this.#windowMs = options.windowMs ?? AUTH_THROTTLE.windowMs;
    this.#addresses = options.addresses ?? AUTH_THROTTLE.addresses;
    for (const [name, v] of [["failures", this.#failures], ["windowMs", this.#windowMs], ["addresses", this.#addresses]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`throttle ${name} must be a positive integer`);
    }
    this.#now = now;
    this.#emit = emit;
  }

  /**
   * Seconds until `address` may try again (counting this request as refused), or 0 when it may
   * present a token now.
   */
  check(address: string): number {
    this._sweep();
    const e = this.#table.get(this._key(address));
    if (!e || e.lockedUntil === 0) return 0;
    e.refused++;
    return Math.max(1, Math.ceil((e.lockedUntil - this.#now()) / 1000));
  }

  /** Records a failed attempt; true when it locked the address (the caller then skips its own record). */
  failed(address: string): boolean {
    this._sweep();
    const now = this.#now();
    const key = this._key(address);
    let e = this.#table.get(key);
    if (!e) {
      e = { times: [], lockedUntil: 0, refused: 0 };
      this.#table.set(key, e);
    }
    e.times = e.times.filter((t) => now - t < this.#windowMs);
    e.times.push(now);
    if (e.times.length < this.#failures) return false;
    e.lockedUntil = now + this.#windowMs;
    this.#emit({ kind: "admin", decision: "deny", reason: "throttled", detail: { remote: key, failures: e.times.length, retryAfterS: Math.ceil(this.#windowMs / 1000) } });
    return true;
  }

  /** Addresses tracked now (for tests and status). */
  get tracked(): number {
    return this.#table.size;
  }

  private _key(address: string): string {
    if (this.#table.has(address) || this.#table.size < this.#addresses) return address;
    return "*";
  }

  /** Ends lockouts and failure windows that have passed, writing each lockout's refusal count. */
  private _sweep(): void {
    const now = this.#now();
    for (const [key, e] of this.#table) {
      if (e.lockedUntil !== 0 ? now < e.lockedUntil : now - (e.times.at(-1) ?? 0) < this.#windowMs) continue;
      this.#table.delete(key);
      if (e.refused > 0) this.#emit({ kind: "admin", decision: "deny", reason: "throttled", detail: { remote: key, refused: e.refused } });
    }
  }
}
