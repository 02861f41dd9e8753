/**
 * Admin sessions, in RAM (a reboot logs everyone out). A session token is 32 random bytes
 * (`pcs_` + base64url); the table keeps only its SHA-256, so a heap dump holds no usable token. Each
 * session has a CSRF token the page must echo in `x-csrf-token` on state-changing requests made with
 * the cookie. A session ends after `idleMs` without use or `maxMs` after login, whichever comes
 * first. The table holds at most `max` sessions; a new login beyond it ends the least recently used.
 */
import type { Clock, Crypto, Random } from "../ports.js";
import type { Role } from "./routes.js";
import { constantTimeEqual, toBase64, toHex, utf8 } from "../util/bytes.js";

export const SESSION_DEFAULTS = Object.freeze({ idleMs: 15 * 60_000, maxMs: 12 * 3_600_000, max: 16 });
export const SESSION_TOKEN_PREFIX = "pcs_";
/** The session cookie: `__Host-` makes browsers insist on Secure, Path=/ and no Domain. */
export const SESSION_COOKIE = "__Host-portcullis";

export interface Session {
  readonly account: string;
  readonly role: Role;
  readonly csrf: string;
  /** Monotonic ms. */
  readonly created: number;
  lastUsed: number;
}

export interface SessionOptions {
  readonly idleMs?: number;
  readonly maxMs?: number;
  readonly max?: number;
}

export class SessionTable {
  readonly #crypto: Crypto;
  readonly #random: Random;
  readonly #clock: Pick<Clock, "monotonic">;
  readonly idleMs: number;
  readonly maxMs: number;
  readonly max: number;
  /** By hex SHA-256 of the token. */
  readonly #sessions = new Map<string, Session>();

  constructor(crypto: Crypto, random: Random, clock: Pick<Clock, "monotonic">, o: SessionOptions = {}) {
    this.#crypto = crypto;
    this.#random = random;
    this.#clock = clock;
    this.idleMs = o.idleMs ?? SESSION_DEFAULTS.idleMs;
    this.maxMs = o.maxMs ?? SESSION_DEFAULTS.maxMs;
    this.max = o.max ?? SESSION_DEFAULTS.max;
    for (const [k, v] of [["idleMs", this.idleMs], ["maxMs", this.maxMs], ["max", this.max]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`session ${k} must be a positive integer`);
    }
  }

  /** A new session: the token (shown once) and its CSRF token. */
  create(account: string, role: Role): { token: string; session: Session } {
    this._sweep();
    while (this.#sessions.size >= this.max) {
      let oldest: string | undefined;
      let at = Infinity;
      for (const [k, s] of this.#sessions) if (s.lastUsed < at) [oldest, at] = [k, s.lastUsed];
      this.#sessions.delete(oldest!);
    }
    const raw = new Uint8Array(32);
    this.#random.fill(raw);
    const token = SESSION_TOKEN_PREFIX + toBase64(raw, true);
    const c = new Uint8Array(18);
    this.#random.fill(c);
    const now = this.#clock.monotonic();
    const session: Session = { account, role, csrf: toBase64(c, true), created: now, lastUsed: now };
    this.#sessions.set(this._id(token), session);
    return { token, session };
  }

  /** The live session of `token` (its idle timer restarts), or undefined. */
  find(token: string): Session | undefined {
    this._sweep();
    const s = this.#sessions.get(this._id(token));
    if (s) s.lastUsed = this.#clock.monotonic();
    return s;
  }

  /** Whether `presented` is the session's CSRF token (constant time). */
  csrfOk(s: Session, presented: string | undefined): boolean {
    return presented !== undefined && constantTimeEqual(utf8(presented), utf8(s.csrf));
  }

  /** Ends the session of `token`. */
  end(token: string): boolean {
    return this.#sessions.delete(this._id(token));
  }

  /** Ends every session of `account`; returns how many. */
  endAll(account: string): number {
    let n = 0;
    for (const [k, s] of this.#sessions) {
      if (s.account !== account) continue;
      this.#sessions.delete(k);
      n++;
    }
    return n;
  }

  get size(): number {
    this._sweep();
    return this.#sessions.size;
  }

  private _id(token: string): string {
    return toHex(this.#crypto.sha256(utf8(token)));
  }

  private _sweep(): void {
    const now = this.#clock.monotonic();
    for (const [k, s] of this.#sessions) {
      if (now - s.lastUsed >= this.idleMs || now - s.created >= this.maxMs) this.#sessions.delete(k);
    }
  }
}
