/**
 * Who may use the admin API, and the routes that manage that: first-boot setup, login, sessions,
 * logout, accounts, TOTP enrolment, password change, unlock. AdminApi asks {@link AdminAuth.authenticate}
 * for the caller of each request and serves {@link AdminAuth.routes} with the others.
 *
 *   first boot ─ console shows a one-time setup code ─ POST /api/v1/setup {code, account, password}
 *     → the first owner (TOTP enrolled at once: otpauth:// URI + 10 recovery codes, shown once)
 *   POST /api/v1/login {account, password, totp} → session: HttpOnly Secure SameSite=Strict cookie
 *     + CSRF token (page), and `token` for `Authorization: Bearer` when asked (`"bearer": true`)
 *
 * Credentials accepted: a session cookie (state-changing requests also need `x-csrf-token`), a session
 * bearer token (`pcs_…`), or the break-glass owner token (`pct_…`, bearer only, every use recorded).
 */
import { frozenTable } from "../util/frozen.js";
import type { Clock, Crypto, KeyStore, Random, TimerId, Timers } from "../ports.js";
import type { AuditEvent } from "../audit/types.js";
import type { AdminRequest, AdminResponse } from "./api.js";
import { AccountStore, isRecoveryCode, needsTotp, PASSWORD_MAX, type Enrolment } from "./accounts.js";
import { LoginGuard, type GuardOptions } from "./guard.js";
import { errorReply, jsonBody, jsonReply, ROLES, type AnyRoute, type Principal, type PublicCall, type Role, type RouteCall } from "./routes.js";
import { SESSION_COOKIE, SESSION_TOKEN_PREFIX, SessionTable, type Session } from "./sessions.js";
import { verifyTotp } from "./totp.js";
import { constantTimeEqual, utf8 } from "../util/bytes.js";
import { base32Encode } from "./totp.js";

/** How long a setup code is good for. */
export const SETUP_CODE_MS = 60 * 60_000;

export interface AuthOptions {
  readonly keys: KeyStore;
  readonly random: Random;
  /** Flushes the failed-login rows each minute; without it they are written at the next request. */
  readonly timers?: Timers;
  /** PBKDF2 rounds for new passwords (tests lower it). */
  readonly iterations?: number;
  readonly sessionIdleMs?: number;
  readonly sessionMaxMs?: number;
  /** Sessions held at once (default 16; the gateway uses the profile's adminSessions × 4). */
  readonly maxSessions?: number;
  readonly guard?: GuardOptions;
  /** Shown on the serial console (physical presence): the first-boot setup code. */
  readonly onSetupCode?: (code: string) => void;
  /** Shown on the console: a burst of failed logins, a lockout. */
  readonly onAlarm?: (text: string) => void;
  /** The issuer authenticator apps show. */
  readonly issuer?: string;
}

/** Result of authenticating one request. */
export type AuthResult =
  | { readonly ok: true; readonly principal: Principal; readonly session?: Session }
  | { readonly ok: false; readonly status: 401 | 403; readonly reason: "no-token" | "bad-token" | "csrf"; readonly message: string; readonly principal?: Principal };

const SAFE_METHODS = new Set(["GET", "HEAD"]);

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function str(v: unknown, field: string, max = 256): string | AdminResponse {
  if (typeof v !== "string" || v === "") return errorReply(400, `${field} must be a non-empty string`, field);
  if (v.length > max) return errorReply(400, `${field} must be at most ${max} characters`, field);
  return v;
}

export class AdminAuth {
  readonly accounts: AccountStore;
  readonly sessions: SessionTable;
  readonly guard: LoginGuard;
  readonly #o: AuthOptions;
  readonly #crypto: Crypto;
  readonly #clock: Pick<Clock, "monotonic"> & Partial<Pick<Clock, "now" | "isSet">>;
  readonly #emit: (e: AuditEvent) => void;
  readonly #tokenHash: Uint8Array;
  readonly #timer: TimerId | undefined;
  /** SHA-256 of the setup code and when it expires (monotonic); absent once an account exists. */
  #setup: { hash: Uint8Array; expires: number } | undefined;

  constructor(o: AuthOptions, crypto: Crypto, clock: Pick<Clock, "monotonic"> & Partial<Pick<Clock, "now" | "isSet">>, tokenHash: Uint8Array, emit: (e: AuditEvent) => void) {
    this.#o = o;
    this.#crypto = crypto;
    this.#clock = clock;
    this.#emit = emit;
    this.#tokenHash = tokenHash;
    this.accounts = new AccountStore({ keys: o.keys, crypto, random: o.random, ...(o.iterations !== undefined ? { iterations: o.iterations } : {}), ...(o.issuer !== undefined ? { issuer: o.issuer } : {}) });
    this.sessions = new SessionTable(crypto, o.random, clock, { ...(o.sessionIdleMs !== undefined ? { idleMs: o.sessionIdleMs } : {}), ...(o.sessionMaxMs !== undefined ? { maxMs: o.sessionMaxMs } : {}), ...(o.maxSessions !== undefined ? { max: o.maxSessions } : {}) });
    const wall = { now: () => (clock.now ? clock.now() : clock.monotonic()), monotonic: () => clock.monotonic() };
    this.guard = new LoginGuard(wall, emit, o.guard);
    this.#timer = o.timers?.every(60_000, () => this.guard.flush(false));
    if (this.accounts.size === 0) this._newSetupCode();
  }

  /** Whether first-boot setup is still open (no account yet). */
  get setupOpen(): boolean {
    return this.#setup !== undefined;
  }

  /** Writes pending failed-login rows and stops the timer. */
  close(): void {
    this.guard.flush(true);
    if (this.#timer) this.#o.timers?.cancel(this.#timer);
  }

  /** The caller of `req`: a session (cookie or bearer) or the break-glass token. */
  authenticate(req: AdminRequest, remote: string): AuthResult {
    const m = req.authorization ? /^Bearer\s+(\S+)\s*$/i.exec(req.authorization) : null;
    if (req.authorization !== undefined) {
      if (!m) return { ok: false, status: 401, reason: "bad-token", message: "missing or wrong bearer token" };
      const token = m[1]!;
      if (token.startsWith(SESSION_TOKEN_PREFIX)) {
        const s = this.sessions.find(token);
        if (!s || !this.accounts.get(s.account)) return { ok: false, status: 401, reason: "bad-token", message: "unknown or expired session token; log in again" };
        return { ok: true, principal: { account: s.account, role: s.role, via: "session", remote }, session: s };
      }
      if (constantTimeEqual(this.#crypto.sha256(utf8(token)), this.#tokenHash)) return { ok: true, principal: { account: "owner-token", role: "owner", via: "token", remote } };
      return { ok: false, status: 401, reason: "bad-token", message: "missing or wrong bearer token" };
    }
    const cookie = cookieValue(req.headers?.cookie, SESSION_COOKIE);
    if (cookie === undefined) return { ok: false, status: 401, reason: "no-token", message: "log in first (no session cookie or bearer token)" };
    const s = cookie.startsWith(SESSION_TOKEN_PREFIX) ? this.sessions.find(cookie) : undefined;
    // An expired cookie is the normal end of a session, not a guess: no throttle, aggregated as noise.
    if (!s || !this.accounts.get(s.account)) return { ok: false, status: 401, reason: "no-token", message: "the session has expired or ended; log in again" };
    const principal: Principal = { account: s.account, role: s.role, via: "session", remote };
    if (!SAFE_METHODS.has(req.method) && !this.sessions.csrfOk(s, req.headers?.["x-csrf-token"])) {
      return { ok: false, status: 403, reason: "csrf", message: "a state-changing request with the session cookie needs the x-csrf-token header from login", principal };
    }
    return { ok: true, principal, session: s };
  }

  /**
   * Clears an account's lockout (or an address's back-off). `by` is the account acting, or "console".
   * @returns false when there is no such account or address.
   */
  unlock(name: string, by: Principal | "console", record = true): boolean {
    const locked = this.accounts.get(name)?.locked ?? false;
    const known = this.accounts.setLocked(name, false);
    const cleared = this.guard.clear(name);
    const ok = known || cleared;
    if (record) this.#emit({ kind: "admin", decision: ok ? "allow" : "deny", reason: "unlock", detail: { ...this._who(by), result: ok ? "ok" : "unknown", target: name, wasLocked: locked } });
    return ok;
  }

  /** The account routes (module-level, frozen): bind them to this instance as their context. */
  routes(): readonly AnyRoute[] {
    return AUTH_ROUTES;
  }


  private _who(p: Principal | "console" | { account: string; role: Role | null; via: string; remote: string }): Record<string, string | null> {
    if (p === "console") return { who: "console", role: "owner", via: "console", remote: "console" };
    return { who: p.account, role: p.role, via: p.via, remote: p.remote };
  }

  private _newSetupCode(): void {
    const raw = new Uint8Array(10);
    this.#o.random.fill(raw);
    const b = base32Encode(raw);
    const code = `${b.slice(0, 4)}-${b.slice(4, 8)}-${b.slice(8, 12)}-${b.slice(12, 16)}`;
    this.#setup = { hash: this.#crypto.sha256(utf8(code)), expires: this.#clock.monotonic() + SETUP_CODE_MS };
    this.#o.onSetupCode?.(code);
  }

  // The route handlers of AUTH_ROUTES (below): public so the module-level table can call them with this
  // instance as its context. AdminApi authenticates and checks the route's roles before calling any but
  // setup and login, which authenticate the caller themselves.
  async setupRoute(c: PublicCall): Promise<AdminResponse> {
    if (!this.#setup) return errorReply(409, "setup is done: log in instead");
    const b = jsonBody(c.req);
    if (!b.ok) return b.response;
    for (const f of ["code", "account", "password"]) {
      const v = str(b.value[f], f);
      if (typeof v !== "string") return v;
    }
    const { code, account, password } = b.value as { code: string; account: string; password: string };
    const v = this.guard.check(undefined, "setup", c.remote);
    if (!v.ok) return { ...errorReply(429, `too many failed attempts; retry in ${v.retryAfterS} s`), headers: { "Retry-After": String(v.retryAfterS) } };
    if (this.#clock.monotonic() >= this.#setup.expires) {
      this._newSetupCode();
      this.#emit({ kind: "admin", decision: "deny", reason: "setup", detail: { who: account.slice(0, 32), role: null, via: "setup-code", remote: c.remote, result: "expired" } });
      return errorReply(410, "the setup code expired; a new one is on the serial console", "code");
    }
    const norm = code.trim().toUpperCase();
    if (!constantTimeEqual(this.#crypto.sha256(utf8(norm)), this.#setup.hash)) {
      this.guard.failed(undefined, "setup", c.remote);
      return errorReply(401, "wrong setup code", "code");
    }
    let enrolment: Enrolment | undefined;
    try {
      enrolment = this.accounts.create(account, "owner", password);
    } catch (e) {
      const m = (e as Error).message;
      return errorReply(400, m, m.startsWith("password") ? "password" : "account");
    }
    this.#setup = undefined; // single use
    this.#emit({ kind: "admin", decision: "allow", reason: "setup", detail: { who: account, role: "owner", via: "setup-code", remote: c.remote, result: "ok" } });
    return jsonReply(201, { account, role: "owner", ...this._enrolJson(enrolment) });
  }

  private _enrolJson(e: Enrolment | undefined): Record<string, unknown> {
    return e ? { totp: { secret: e.secret, uri: e.uri }, recoveryCodes: e.recoveryCodes } : {};
  }

  async loginRoute(c: PublicCall): Promise<AdminResponse> {
    const b = jsonBody(c.req);
    if (!b.ok) return b.response;
    const name = str(b.value.account, "account", 64);
    if (typeof name !== "string") return name;
    const password = str(b.value.password, "password", 2 * PASSWORD_MAX);
    if (typeof password !== "string") return password;
    const totp = b.value.totp;
    if (totp !== undefined && typeof totp !== "string") return errorReply(400, "totp must be a string", "totp");
    const known = this.accounts.get(name);
    if (known?.locked) {
      // Said before any check, and checks nothing: no oracle, and the person learns what to do.
      this.guard.refused(name, c.remote);
      return errorReply(423, "this account is locked after repeated failed logins; an owner (or the console: unlock <account>) must unlock it");
    }
    const v = this.guard.check(known?.name, name, c.remote);
    if (!v.ok) return { ...errorReply(429, `too many failed attempts; retry in ${v.retryAfterS} s`), headers: { "Retry-After": String(v.retryAfterS) } };
    let ok = this.accounts.checkPassword(name, password);
    let factor = "none";
    if (ok && known && (needsTotp(known.role) || known.totp)) {
      ok = false;
      const code = (totp ?? "").replace(/\s/g, "");
      if (known.totp && isRecoveryCode(code)) {
        ok = this.accounts.useRecoveryCode(name, code);
        factor = "recovery";
      } else if (known.totp && this.#clock.now && (this.#clock.isSet?.() ?? false)) {
        const step = verifyTotp(this.#crypto, known.totp, code, this.#clock.now(), known.lastStep);
        if (step !== undefined) {
          this.accounts.acceptStep(name, step);
          ok = true;
        }
        factor = "totp";
      }
    }
    if (!ok || !known) {
      if (this.guard.failed(known?.name, name, c.remote)) {
        this.accounts.setLocked(name, true);
        this.sessions.endAll(name);
        this.#emit({ kind: "admin", decision: "deny", reason: "lockout", detail: { who: name, role: known?.role ?? null, via: "password", remote: c.remote, result: "locked" } });
        this.#emit({ kind: "alarm", decision: "info", reason: "account-locked", detail: { who: name, remote: c.remote } });
        this.#o.onAlarm?.(`admin account "${name}" locked after repeated failed logins (last from ${c.remote}); unlock <account> clears it`);
      }
      const clockNote = known && needsTotp(known.role) && !(this.#clock.isSet?.() ?? false) ? " (the gateway's clock is not set, so only a recovery code works now)" : "";
      return errorReply(401, `wrong account, password or code${clockNote}`);
    }
    this.guard.succeeded(name);
    const { token, session } = this.sessions.create(known.name, known.role);
    if (factor === "recovery") this.#o.onAlarm?.(`admin account "${name}" logged in with a recovery code (${this.accounts.get(name)?.recovery.length ?? 0} left)`);
    this.#emit({ kind: "admin", decision: "allow", reason: "login", detail: { who: name, role: known.role, via: "password", remote: c.remote, result: "ok", factor } });
    const maxAgeS = Math.floor(this.sessions.maxMs / 1000);
    return jsonReply(
      200,
      { account: name, role: known.role, csrf: session.csrf, idleMs: this.sessions.idleMs, maxMs: this.sessions.maxMs, ...(b.value.bearer === true ? { token } : {}) },
      { "Set-Cookie": `${SESSION_COOKIE}=${token}; Path=/; Max-Age=${maxAgeS}; HttpOnly; Secure; SameSite=Strict` },
    );
  }

  logoutRoute(c: RouteCall, everywhere: boolean): AdminResponse {
    const clear = { "Set-Cookie": `${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict` };
    if (c.principal.via !== "session") return errorReply(400, "the break-glass token is not a session; nothing to log out");
    if (everywhere) return jsonReply(200, { ended: this.sessions.endAll(c.principal.account) }, clear);
    const m = c.req.authorization ? /^Bearer\s+(\S+)\s*$/i.exec(c.req.authorization) : null;
    const token = m ? m[1]! : cookieValue(c.req.headers?.cookie, SESSION_COOKIE);
    return jsonReply(200, { ended: token !== undefined && this.sessions.end(token) ? 1 : 0 }, clear);
  }

  meRoute(c: RouteCall): AdminResponse {
    const a = this.accounts.get(c.principal.account);
    return jsonReply(200, { account: c.principal.account, role: c.principal.role, via: c.principal.via, mfa: a?.totp !== undefined, recoveryCodesLeft: a?.recovery.length ?? null });
  }

  private _needAccount(c: RouteCall): AdminResponse | undefined {
    return this.accounts.get(c.principal.account) ? undefined : errorReply(400, "the break-glass token has no account; log in as a person");
  }

  /** The caller's own account and body, once its current `password` is given and right; else the answer. */
  private _reauthenticated(c: RouteCall): { fields: Record<string, unknown> } | AdminResponse {
    const bad = this._needAccount(c);
    if (bad) return bad;
    const b = jsonBody(c.req);
    if (!b.ok) return b.response;
    const password = str(b.value.password, "password", 2 * PASSWORD_MAX);
    if (typeof password !== "string") return password;
    if (!this.accounts.checkPassword(c.principal.account, password)) return errorReply(403, "wrong password", "password");
    return { fields: b.value };
  }

  enrolMeRoute(c: RouteCall): AdminResponse {
    const r = this._reauthenticated(c);
    if (!("fields" in r)) return r;
    return jsonReply(200, { account: c.principal.account, ...this._enrolJson(this.accounts.enrol(c.principal.account)) });
  }

  passwordRoute(c: RouteCall): AdminResponse {
    const r = this._reauthenticated(c);
    if (!("fields" in r)) return r;
    const next = str(r.fields.newPassword, "newPassword", 2 * PASSWORD_MAX);
    if (typeof next !== "string") return next;
    try {
      this.accounts.setPassword(c.principal.account, next);
    } catch (e) {
      return errorReply(400, (e as Error).message, "newPassword");
    }
    return jsonReply(200, { account: c.principal.account, changed: true });
  }

  listRoute(): AdminResponse {
    return jsonReply(200, { accounts: this.accounts.list().map((a) => ({ name: a.name, role: a.role, mfa: a.totp !== undefined, recoveryCodesLeft: a.recovery.length, locked: a.locked, failures: this.guard.failures(a.name) })) });
  }

  addRoute(c: RouteCall): AdminResponse {
    const b = jsonBody(c.req);
    if (!b.ok) return b.response;
    const name = str(b.value.name, "name", 64);
    if (typeof name !== "string") return name;
    const role = b.value.role;
    if (!(ROLES as readonly unknown[]).includes(role)) return errorReply(400, `role must be one of ${ROLES.join(", ")}`, "role");
    const password = str(b.value.password, "password", 2 * PASSWORD_MAX);
    if (typeof password !== "string") return password;
    try {
      const e = this.accounts.create(name, role as Role, password);
      return jsonReply(201, { name, role, ...this._enrolJson(e) });
    } catch (e) {
      const m = (e as Error).message;
      return errorReply(m.includes("exists") ? 409 : 400, m, m.startsWith("password") ? "password" : "name");
    }
  }

  removeRoute(c: RouteCall): AdminResponse {
    const name = c.params.name!;
    const a = this.accounts.get(name);
    if (!a) return errorReply(404, `no account "${name}"`, "name");
    if (a.role === "owner" && !a.locked && this.accounts.activeOwners() <= 1) return errorReply(409, "this is the last owner that can log in; add another owner first", "name");
    this.accounts.remove(name);
    const ended = this.sessions.endAll(name);
    this.guard.clear(name);
    return jsonReply(200, { removed: name, sessionsEnded: ended });
  }

  resetMfaRoute(c: RouteCall): AdminResponse {
    const name = c.params.name!;
    if (!this.accounts.get(name)) return errorReply(404, `no account "${name}"`, "name");
    // Owners and installers must have TOTP: "reset" hands over a fresh enrolment; an auditor's is removed.
    const a = this.accounts.get(name)!;
    this.sessions.endAll(name);
    if (!needsTotp(a.role)) {
      this.accounts.resetMfa(name);
      return jsonReply(200, { name, mfa: false });
    }
    return jsonReply(200, { name, ...this._enrolJson(this.accounts.enrol(name)) });
  }

  unlockRoute(c: RouteCall): AdminResponse {
    const name = c.params.name!;
    if (!this.accounts.get(name)) return errorReply(404, `no account "${name}"`, "name");
    this.unlock(name, c.principal, false); // AdminApi records the call
    return jsonReply(200, { name, locked: false });
  }
}

const ALL_ROLES: readonly Role[] = ROLES;

/** The account routes, built once with the module and frozen (in flash on the device); the context is the AdminAuth. */
export const AUTH_ROUTES: readonly AnyRoute[] = frozenTable<AnyRoute>([
  { method: "POST", path: "/api/v1/setup", roles: [], public: true, summary: "first boot: create the first owner with the console's setup code", handle: (c, a: AdminAuth) => a.setupRoute(c) },
  { method: "POST", path: "/api/v1/login", roles: [], public: true, summary: "password + TOTP → session cookie, CSRF token, optional bearer token", handle: (c, a: AdminAuth) => a.loginRoute(c) },
  { method: "POST", path: "/api/v1/logout", roles: ALL_ROLES, action: "logout", summary: "end this session", handle: (c, a: AdminAuth) => a.logoutRoute(c, false) },
  { method: "POST", path: "/api/v1/logout-all", roles: ALL_ROLES, action: "logout-all", summary: "end every session of this account", handle: (c, a: AdminAuth) => a.logoutRoute(c, true) },
  { method: "GET", path: "/api/v1/me", roles: ALL_ROLES, quiet: true, action: "me", summary: "who is logged in", handle: (c, a: AdminAuth) => a.meRoute(c) },
  { method: "POST", path: "/api/v1/me/totp", roles: ALL_ROLES, action: "totp-enrol", summary: "new TOTP secret and recovery codes (password needed)", handle: (c, a: AdminAuth) => a.enrolMeRoute(c) },
  { method: "POST", path: "/api/v1/me/password", roles: ALL_ROLES, action: "password-change", summary: "change own password", handle: (c, a: AdminAuth) => a.passwordRoute(c) },
  { method: "GET", path: "/api/v1/accounts", roles: ["owner"], action: "accounts-list", summary: "accounts with role, MFA, lock state", handle: (_c, a: AdminAuth) => a.listRoute() },
  { method: "POST", path: "/api/v1/accounts", roles: ["owner"], action: "account-add", summary: "add an account (TOTP enrolment returned for owner/installer)", handle: (c, a: AdminAuth) => a.addRoute(c) },
  { method: "DELETE", path: "/api/v1/accounts/{name}", roles: ["owner"], action: "account-remove", summary: "remove an account and end its sessions", handle: (c, a: AdminAuth) => a.removeRoute(c) },
  { method: "POST", path: "/api/v1/accounts/{name}/reset-mfa", roles: ["owner"], action: "mfa-reset", summary: "new TOTP secret and recovery codes for an account", handle: (c, a: AdminAuth) => a.resetMfaRoute(c) },
  { method: "POST", path: "/api/v1/accounts/{name}/unlock", roles: ["owner"], action: "unlock", summary: "lift a lockout", handle: (c, a: AdminAuth) => a.unlockRoute(c) },
]);
