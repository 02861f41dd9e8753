/**
 * Admin authentication (src/admin/{auth,accounts,totp,sessions,guard}.ts): RFC 6238 vectors, first-boot
 * setup, login with password + TOTP (replay refused, recovery codes single-use), cookie + CSRF and
 * bearer sessions, idle and absolute expiry, back-off and lockout per account and per address with an
 * injected clock, bounded failure records under a flood, one audit record per admin action, and the
 * role × route × method matrix over every route of `api.routes`.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { AdminApi, type AdminRequest, type AdminResponse } from "../../src/admin/api.js";
import { AccountStore, PBKDF2_ITERATIONS, RECOVERY_CODES } from "../../src/admin/accounts.js";
import { LOGIN_GUARD, LoginGuard } from "../../src/admin/guard.js";
import type { Role } from "../../src/admin/routes.js";
import { roleMatrix } from "../lib/admin-matrix.js";
import { SESSION_COOKIE, SESSION_DEFAULTS } from "../../src/admin/sessions.js";
import { base32Decode, base32Encode, hotp, totpAt, verifyTotp } from "../../src/admin/totp.js";
import type { AuditEvent, AuditLog } from "../../src/audit/types.js";
import { parseGatewayConfig } from "../../src/config.js";
import { utf8 } from "../../src/util/bytes.js";
import { FakeClock } from "../lib/fake-clock.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";

const TOKEN = "pct_auth-test-token-not-a-secret";
const PASSWORD = "correct horse battery";

const noLog = { nextSeq: 1, stats: () => ({ records: 0, bytesUsed: 0, bytesTotal: 0 }), append: async () => 0, query: () => [] } as unknown as AuditLog;

interface Opts {
  headers?: Record<string, string>;
  authorization?: string;
  body?: unknown;
  remote?: string;
}

function world(extra: { sessionIdleMs?: number; sessionMaxMs?: number; maxSessions?: number } = {}) {
  const clock = new FakeClock(Date.UTC(2026, 0, 1), true);
  const random = seededRandom("auth");
  const crypto = nobleCrypto(random);
  const keys = new MemoryKeys();
  const events: AuditEvent[] = [];
  const codes: string[] = [];
  const alarms: string[] = [];
  const api = new AdminApi({
    crypto, clock, audit: noLog, tokenHash: crypto.sha256(utf8(TOKEN)), onEvent: (e) => void events.push(e), status: () => ({ ok: true }),
    exportJsonl: async () => ['{"seq":1}'].values(), checkpoint: async () => ({}) as never,
    auth: { keys, random, timers: clock, iterations: 2, onSetupCode: (c) => void codes.push(c), onAlarm: (t) => void alarms.push(t), ...extra },
  });
  const call = (method: string, target: string, o: Opts = {}): Promise<AdminResponse> => {
    const req: AdminRequest = {
      method, target, remote: o.remote ?? "192.0.2.10:5000",
      ...(o.authorization !== undefined ? { authorization: o.authorization } : {}),
      headers: { ...(o.body !== undefined ? { "content-type": "application/json" } : {}), ...o.headers },
      ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
    };
    return api.handle(req);
  };
  const json = (r: AdminResponse): Record<string, unknown> => JSON.parse(r.body.join("")) as Record<string, unknown>;
  const secrets = new Map<string, Uint8Array>();
  const totp = (name: string): string => totpAt(crypto, secrets.get(name)!, clock.now());
  /** Creates the first owner through setup. */
  const setupOwner = async (name = "alice"): Promise<Record<string, unknown>> => {
    const r = await call("POST", "/api/v1/setup", { body: { code: codes.at(-1), account: name, password: PASSWORD } });
    assert.equal(r.status, 201, r.body.join(""));
    const b = json(r);
    secrets.set(name, base32Decode((b.totp as { secret: string }).secret));
    return b;
  };
  /** Logs in (a new TOTP step each time: the clock moves 30 s first). */
  const login = async (name: string, o: { password?: string; remote?: string; bearer?: boolean } = {}): Promise<AdminResponse> => {
    clock.tick(30_000);
    return call("POST", "/api/v1/login", { remote: o.remote ?? "192.0.2.10", body: { account: name, password: o.password ?? PASSWORD, ...(secrets.has(name) ? { totp: totp(name) } : {}), ...(o.bearer ? { bearer: true } : {}) } });
  };
  const cookieOf = (r: AdminResponse): string => {
    const m = new RegExp(`${SESSION_COOKIE}=([^;]*)`).exec(r.headers?.["Set-Cookie"] ?? "");
    assert.ok(m, "a session cookie");
    return `${SESSION_COOKIE}=${m[1]}`;
  };
  const addAccount = async (owner: string, name: string, role: Role): Promise<void> => {
    const r = await call("POST", "/api/v1/accounts", { authorization: `Bearer ${TOKEN}`, body: { name, role, password: PASSWORD } });
    assert.equal(r.status, 201, r.body.join(""));
    const b = json(r);
    if (b.totp) secrets.set(name, base32Decode((b.totp as { secret: string }).secret));
    void owner;
  };
  return { clock, crypto, keys, events, codes, alarms, api, call, json, secrets, totp, setupOwner, login, cookieOf, addAccount };
}

describe("admin authentication", () => {
  describe("TOTP (RFC 6238)", () => {
    const c = nobleCrypto(seededRandom("totp"));
    const key = utf8("12345678901234567890");
    // RFC 6238 Appendix B, SHA-1 rows: time (s) → 8-digit TOTP.
    const vectors: [number, string][] = [
      [59, "94287082"], [1111111109, "07081804"], [1111111111, "14050471"], [1234567890, "89005924"], [2000000000, "69279037"], [20000000000, "65353130"],
    ];
    it("matches the Appendix B vectors (8 digits) and their 6-digit truncation", () => {
      for (const [t, code] of vectors) {
        assert.equal(totpAt(c, key, t * 1000, 8), code, `T = ${t}`);
        assert.equal(totpAt(c, key, t * 1000), code.slice(2), `6 digits at T = ${t}`);
      }
    });
    it("matches RFC 4226 Appendix D HOTP values", () => {
      const d = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
      d.forEach((v, i) => assert.equal(hotp(c, key, i), v));
    });
    it("accepts ±1 step, refuses ±2, and refuses a step already used", () => {
      const t = 1111111111 * 1000;
      const now = Math.floor(t / 30000);
      for (const d of [-1, 0, 1]) assert.equal(verifyTotp(c, key, hotp(c, key, now + d), t, -1), now + d);
      for (const d of [-2, 2]) assert.equal(verifyTotp(c, key, hotp(c, key, now + d), t, -1), undefined);
      assert.equal(verifyTotp(c, key, hotp(c, key, now), t, now), undefined, "replay");
      assert.equal(verifyTotp(c, key, hotp(c, key, now - 1), t, now), undefined, "an older code after a newer one");
      assert.equal(verifyTotp(c, key, "12345", t, -1), undefined);
      assert.equal(verifyTotp(c, key, "abcdef", t, -1), undefined);
    });
    it("base32 round-trips any bytes (RFC 4648 §10 vectors too)", () => {
      assert.equal(base32Encode(utf8("foobar")), "MZXW6YTBOI");
      assert.equal(base32Encode(utf8("fo")), "MZXQ");
      fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (b) => assert.deepEqual(base32Decode(base32Encode(b)), b)), { numRuns: 200 });
      assert.throws(() => base32Decode("AB1"), /base32/);
    });
  });

  describe("accounts in the key store", () => {
    it("keeps only salted PBKDF2 hashes, survives a restart, and the default count is the measured one", () => {
      const random = seededRandom("acct");
      const crypto = nobleCrypto(random);
      const keys = new MemoryKeys();
      const store = new AccountStore({ keys, crypto, random, iterations: 3 });
      const e = store.create("bob", "owner", PASSWORD);
      assert.equal(e?.recoveryCodes.length, RECOVERY_CODES);
      assert.match(e!.uri, /^otpauth:\/\/totp\/Portcullis:bob\?secret=[A-Z2-7]{32}&issuer=Portcullis&algorithm=SHA1&digits=6&period=30$/);
      store.create("carol", "auditor", PASSWORD);
      const stored = [...keys.map.values()].map((v) => new TextDecoder().decode(v)).join("\n");
      assert.ok(!stored.includes(PASSWORD), "no password in clear");
      for (const c of e!.recoveryCodes) assert.ok(!stored.includes(c), "no recovery code in clear");
      const again = new AccountStore({ keys, crypto, random, iterations: 3 });
      assert.ok(again.checkPassword("bob", PASSWORD));
      assert.ok(!again.checkPassword("bob", PASSWORD + "x"));
      assert.ok(!again.checkPassword("nobody", PASSWORD));
      assert.equal(again.get("carol")?.totp, undefined);
      assert.ok(PBKDF2_ITERATIONS >= 1000);
      assert.throws(() => store.create("bob", "owner", PASSWORD), /exists/);
      assert.throws(() => store.create("Bad Name", "owner", PASSWORD), /account name/);
      assert.throws(() => store.create("dave", "owner", "short"), /password/);
    });
  });

  describe("first-boot setup", () => {
    it("shows a code once; the code makes one owner and is then spent", async () => {
      const w = world();
      assert.equal(w.codes.length, 1);
      assert.match(w.codes[0]!, /^[A-Z2-7]{4}(-[A-Z2-7]{4}){3}$/);
      assert.equal((await w.call("POST", "/api/v1/setup", { body: { code: "AAAA-AAAA-AAAA-AAAA", account: "alice", password: PASSWORD } })).status, 401);
      const b = await w.setupOwner();
      assert.equal(b.role, "owner");
      assert.equal((b.recoveryCodes as string[]).length, 10);
      assert.match((b.totp as { uri: string }).uri, /^otpauth:\/\/totp\//);
      assert.equal((await w.call("POST", "/api/v1/setup", { body: { code: w.codes[0], account: "mallory", password: PASSWORD } })).status, 409, "single use");
      assert.ok(w.events.some((e) => e.reason === "setup" && e.decision === "allow" && e.detail?.who === "alice" && e.detail?.remote === "192.0.2.10"));
      assert.ok(!JSON.stringify(w.events).includes(w.codes[0]!), "the code is never recorded");
    });
    it("an expired code is refused and a new one goes to the console", async () => {
      const w = world();
      w.clock.tick(60 * 60_000);
      const r = await w.call("POST", "/api/v1/setup", { body: { code: w.codes[0], account: "alice", password: PASSWORD } });
      assert.equal(r.status, 410);
      assert.equal(w.codes.length, 2);
      await w.setupOwner();
    });
    it("refuses the setup route once accounts exist at boot", async () => {
      const w = world();
      await w.setupOwner();
      const again = new AdminApi({ crypto: w.crypto, clock: w.clock, audit: noLog, tokenHash: new Uint8Array(32), onEvent: () => undefined, status: () => ({}), auth: { keys: w.keys, random: seededRandom("x"), iterations: 2, onSetupCode: () => assert.fail("no code when an account exists") } });
      assert.equal(again.auth?.setupOpen, false);
    });
  });

  describe("login and sessions", () => {
    it("needs password AND TOTP for an owner; a code is accepted once; a recovery code once", async () => {
      const w = world();
      const setup = await w.setupOwner();
      w.clock.tick(30_000);
      assert.equal((await w.call("POST", "/api/v1/login", { body: { account: "alice", password: PASSWORD } })).status, 401, "no TOTP");
      assert.equal((await w.call("POST", "/api/v1/login", { body: { account: "alice", password: "wrong password!", totp: w.totp("alice") } })).status, 401, "wrong password");
      const code = w.totp("alice");
      const ok = await w.call("POST", "/api/v1/login", { body: { account: "alice", password: PASSWORD, totp: code } });
      assert.equal(ok.status, 200);
      assert.equal((await w.call("POST", "/api/v1/login", { body: { account: "alice", password: PASSWORD, totp: code } })).status, 401, "replayed code");
      const rc = (setup.recoveryCodes as string[])[3]!;
      assert.equal((await w.call("POST", "/api/v1/login", { body: { account: "alice", password: PASSWORD, totp: rc.toUpperCase() } })).status, 200, "recovery code");
      assert.equal((await w.call("POST", "/api/v1/login", { body: { account: "alice", password: PASSWORD, totp: rc } })).status, 401, "recovery code used up");
      const set = ok.headers?.["Set-Cookie"] ?? "";
      for (const attr of ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"]) assert.ok(set.includes(attr), attr);
      assert.ok(!("token" in w.json(ok)), "the page's login body carries no token");
      assert.ok(w.alarms.some((a) => a.includes("recovery code")));
    });

    it("the bad clock case: TOTP refused when the gateway's time is not set, recovery codes still work", async () => {
      const w = world();
      const setup = await w.setupOwner();
      const unset = new AdminApi({ crypto: w.crypto, clock: { monotonic: () => w.clock.monotonic(), now: () => w.clock.now(), isSet: () => false }, audit: noLog, tokenHash: new Uint8Array(32), onEvent: () => undefined, status: () => ({}), auth: { keys: w.keys, random: seededRandom("y"), iterations: 2 } });
      const body = (totp: string) => ({ method: "POST", target: "/api/v1/login", remote: "192.0.2.1", headers: { "content-type": "application/json" }, body: JSON.stringify({ account: "alice", password: PASSWORD, totp }) });
      const r = await unset.handle(body(w.totp("alice")));
      assert.equal(r.status, 401);
      assert.match(r.body.join(""), /clock is not set/);
      assert.equal((await unset.handle(body((setup.recoveryCodes as string[])[0]!))).status, 200);
    });

    it("cookie sessions need the CSRF header on changes; bearer sessions do not", async () => {
      const w = world();
      await w.setupOwner();
      const r = await w.login("alice", { bearer: true });
      const { csrf, token } = w.json(r) as { csrf: string; token: string };
      const cookie = w.cookieOf(r);
      assert.equal((await w.call("GET", "/api/v1/accounts", { headers: { cookie } })).status, 200, "a read needs no CSRF");
      const add = { name: "ivan", role: "installer", password: PASSWORD };
      assert.equal((await w.call("POST", "/api/v1/accounts", { headers: { cookie }, body: add })).status, 403);
      assert.equal((await w.call("POST", "/api/v1/accounts", { headers: { cookie, "x-csrf-token": "nope" }, body: add })).status, 403);
      assert.ok(w.events.some((e) => e.reason === "csrf" && e.detail?.who === "alice"));
      assert.equal((await w.call("POST", "/api/v1/accounts", { headers: { cookie, "x-csrf-token": csrf }, body: add })).status, 201);
      assert.equal((await w.call("POST", "/api/v1/accounts", { authorization: `Bearer ${token}`, body: { ...add, name: "ivan2" } })).status, 201);
      assert.equal((await w.call("GET", "/api/v1/me", { authorization: `Bearer ${token}` })).status, 200);
      // Logout ends the session for both forms.
      assert.equal((await w.call("POST", "/api/v1/logout", { headers: { cookie, "x-csrf-token": csrf } })).status, 200);
      assert.equal((await w.call("GET", "/api/v1/me", { authorization: `Bearer ${token}` })).status, 401);
      assert.equal((await w.call("GET", "/api/v1/me", { headers: { cookie } })).status, 401);
    });

    it("logout-all ends every session of the account, not others'", async () => {
      const w = world();
      await w.setupOwner();
      await w.addAccount("alice", "ann", "auditor");
      const a1 = (w.json(await w.login("alice", { bearer: true })) as { token: string }).token;
      const a2 = (w.json(await w.login("alice", { bearer: true })) as { token: string }).token;
      const b = (w.json(await w.login("ann", { bearer: true })) as { token: string }).token;
      const r = await w.call("POST", "/api/v1/logout-all", { authorization: `Bearer ${a1}` });
      assert.equal(w.json(r).ended, 2);
      for (const t of [a1, a2]) assert.equal((await w.call("GET", "/api/v1/me", { authorization: `Bearer ${t}` })).status, 401);
      assert.equal((await w.call("GET", "/api/v1/me", { authorization: `Bearer ${b}` })).status, 200);
    });

    it("a session ends after 15 min idle and after 12 h however busy", async () => {
      const w = world();
      await w.setupOwner();
      const idleTok = (w.json(await w.login("alice", { bearer: true })) as { token: string }).token;
      const busyTok = (w.json(await w.login("alice", { bearer: true })) as { token: string }).token;
      const me = (t: string) => w.call("GET", "/api/v1/me", { authorization: `Bearer ${t}` });
      w.clock.tick(SESSION_DEFAULTS.idleMs - 1000);
      assert.equal((await me(busyTok)).status, 200);
      w.clock.tick(1000);
      assert.equal((await me(idleTok)).status, 401, "idle timeout");
      for (let t = 0; t < SESSION_DEFAULTS.maxMs; t += 10 * 60_000) {
        w.clock.tick(10 * 60_000);
        const s = (await me(busyTok)).status;
        if (w.clock.monotonic() - 60_000 < SESSION_DEFAULTS.maxMs - 10 * 60_000) assert.equal(s, 200);
      }
      assert.equal((await me(busyTok)).status, 401, "absolute timeout");
    });

    it("the session table is bounded: the least recently used goes first", async () => {
      const w = world({ maxSessions: 2 });
      await w.setupOwner();
      const t = [];
      for (let i = 0; i < 3; i++) t.push((w.json(await w.login("alice", { bearer: true })) as { token: string }).token);
      assert.equal(w.api.auth!.sessions.size, 2);
      assert.equal((await w.call("GET", "/api/v1/me", { authorization: `Bearer ${t[0]}` })).status, 401);
      assert.equal((await w.call("GET", "/api/v1/me", { authorization: `Bearer ${t[2]}` })).status, 200);
    });
  });

  describe("gateway.json admin.sessionIdleMs / sessionMaxMs", () => {
    const parse = (admin: unknown) => parseGatewayConfig(JSON.stringify({ devices: [], admin }), []);
    it("accepts them in range, names them when out of range or idle > max, and the API uses them", async () => {
      const r = parse({ sessionIdleMs: 120_000, sessionMaxMs: 3_600_000 });
      assert.ok(r.ok);
      assert.deepEqual(r.config.admin, { sessionIdleMs: 120_000, sessionMaxMs: 3_600_000 });
      const bad = parse({ sessionIdleMs: 10, sessionMaxMs: 8 * 86_400_000 });
      assert.ok(!bad.ok);
      assert.deepEqual(bad.errors.map((e) => e.path).sort(), ["/admin/sessionIdleMs", "/admin/sessionMaxMs"]);
      const order = parse({ sessionIdleMs: 7_200_000, sessionMaxMs: 3_600_000 });
      assert.ok(!order.ok && order.errors[0]?.path === "/admin/sessionIdleMs");
      const w = world({ sessionIdleMs: 120_000, sessionMaxMs: 3_600_000 });
      await w.setupOwner();
      const login = w.json(await w.login("alice", { bearer: true })) as { token: string; idleMs: number; maxMs: number };
      assert.deepEqual([login.idleMs, login.maxMs], [120_000, 3_600_000]);
      w.clock.tick(120_000);
      assert.equal((await w.call("GET", "/api/v1/me", { authorization: `Bearer ${login.token}` })).status, 401);
    });
  });

  describe("back-off and lockout", () => {
    it("after 5 failures: 429 with a doubling Retry-After, no password check; at 20 the account locks until an owner unlocks", async () => {
      const w = world();
      await w.setupOwner();
      await w.addAccount("alice", "ivan", "installer");
      const bad = (remote: string) => w.call("POST", "/api/v1/login", { remote, body: { account: "ivan", password: "not the password", totp: "000000" } });
      // A new address each time, so the account's own count is what holds.
      const waits: number[] = [];
      let failures = 0;
      for (let i = 0; failures < LOGIN_GUARD.lockAfter; i++) {
        const r = await bad(`198.51.100.${i}`);
        if (r.status === 429) {
          const s = Number(r.headers?.["Retry-After"]);
          waits.push(s);
          w.clock.tick(s * 1000);
          continue;
        }
        assert.equal(r.status, 401, `attempt ${i}`);
        failures++;
      }
      assert.deepEqual(waits.slice(0, 6), [1, 2, 4, 8, 16, 32]);
      assert.equal(waits.length, LOGIN_GUARD.lockAfter - LOGIN_GUARD.backoffAfter, "one refusal after each failure from the 5th on");
      assert.equal(Math.max(...waits), LOGIN_GUARD.backoffMaxMs / 1000, "the back-off is capped");
      // Locked now: even the right password and code are refused.
      w.clock.tick(LOGIN_GUARD.backoffMaxMs);
      assert.equal((await w.login("ivan")).status, 423);
      assert.ok(w.events.some((e) => e.reason === "lockout" && e.detail?.who === "ivan"));
      assert.ok(w.events.some((e) => e.kind === "alarm" && e.reason === "account-locked"));
      assert.ok(w.keys.get("acct.ivan") && JSON.parse(new TextDecoder().decode(w.keys.get("acct.ivan"))).locked, "the lock is persisted");
      // An owner unlocks (with the break-glass token here); then the right password works.
      assert.equal((await w.call("POST", "/api/v1/accounts/ivan/unlock", { authorization: `Bearer ${TOKEN}` })).status, 200);
      assert.equal((await w.login("ivan", { remote: "203.0.113.9" })).status, 200);
    });

    it("the console clears a lockout (who: console)", async () => {
      const w = world({});
      await w.setupOwner();
      await w.addAccount("alice", "ann", "auditor");
      for (let i = 0; i < LOGIN_GUARD.lockAfter; i++) {
        w.clock.tick(LOGIN_GUARD.backoffMaxMs);
        await w.call("POST", "/api/v1/login", { remote: `10.0.0.${i}`, body: { account: "ann", password: "guess guess guess" } });
      }
      assert.equal((await w.login("ann")).status, 423);
      assert.ok(w.api.auth!.unlock("ann", "console"));
      assert.ok(w.events.some((e) => e.reason === "unlock" && e.detail?.who === "console" && e.detail?.target === "ann"));
      assert.equal((await w.login("ann", { remote: "10.9.9.9" })).status, 200);
    });

    it("back-off per address: one address guessing many names is slowed too", async () => {
      const w = world();
      await w.setupOwner();
      for (let i = 0; i < LOGIN_GUARD.backoffAfter; i++) {
        assert.equal((await w.call("POST", "/api/v1/login", { remote: "192.0.2.99", body: { account: `u${i}`, password: "x".repeat(12) } })).status, 401);
      }
      const r = await w.call("POST", "/api/v1/login", { remote: "192.0.2.99", body: { account: "alice", password: PASSWORD, totp: w.totp("alice") } });
      assert.equal(r.status, 429, "the right password from a backed-off address waits too (no oracle)");
      assert.equal((await w.login("alice", { remote: "192.0.2.100" })).status, 200, "other addresses are not held back");
    });

    for (const [label, addresses] of [["one address", 1], ["50 addresses", 50]] as const) {
      it(`1,000 wrong passwords from ${label}: bounded records, the lockout holds, the right password works after unlock`, async () => {
        const w = world();
        await w.setupOwner();
        await w.addAccount("alice", "bob", "owner");
        const before = w.events.length;
        const from = (i: number) => `198.18.0.${i % addresses}`;
        const guess = (i: number) => w.call("POST", "/api/v1/login", { remote: from(i), body: { account: "bob", password: `guess-${i}-xxxxx`, totp: "123456" } });
        // The flood: 1,000 attempts in 100 s.
        for (let i = 0; i < 1000; i++) {
          w.clock.tick(100);
          const r = await guess(i);
          assert.ok([401, 423, 429].includes(r.status), `status ${r.status}`);
        }
        w.clock.tick(60_000);
        w.api.close();
        const recs = w.events.slice(before);
        const rows = recs.filter((e) => e.reason === "login-failed");
        const checked = rows.reduce((n, e) => n + (e.detail?.count as number), 0);
        const refused = rows.reduce((n, e) => n + (e.detail?.refused as number), 0);
        assert.equal(checked + refused, 1000, "every attempt is counted in some row");
        assert.ok(checked <= LOGIN_GUARD.lockAfter, `the back-off let only ${checked} passwords be checked`);
        // One row per claimed account × address × minute (2–3 minutes here), plus the alarm.
        assert.ok(rows.length <= 3 * addresses, `${rows.length} rows`);
        assert.ok(recs.length <= rows.length + 3, `${recs.length} records for 1000 attempts`);
        // Slowly (past each back-off) until the account locks: then it holds against the right password.
        for (let i = 0; i < 40 && !w.api.auth!.accounts.get("bob")!.locked; i++) {
          w.clock.tick(LOGIN_GUARD.backoffMaxMs);
          await guess(i);
        }
        assert.ok(w.api.auth!.accounts.get("bob")!.locked, "locked after 20 failures");
        assert.equal(w.events.filter((e) => e.reason === "lockout").length, 1);
        w.clock.tick(LOGIN_GUARD.backoffMaxMs);
        assert.equal((await w.login("bob", { remote: "203.0.113.1" })).status, 423);
        assert.equal((await w.call("POST", "/api/v1/accounts/bob/unlock", { authorization: `Bearer ${TOKEN}` })).status, 200);
        assert.equal((await w.login("bob", { remote: "203.0.113.1" })).status, 200);
      });
    }

    it("property: an allowed check of an account or address always comes after its back-off; every attempt lands in a row", () => {
      fc.assert(
        fc.property(fc.array(fc.record({ a: fc.integer({ min: 0, max: 3 }), r: fc.integer({ min: 0, max: 80 }), dt: fc.integer({ min: 0, max: 20_000 }) }), { maxLength: 300 }), (ops) => {
          const clock = new FakeClock();
          const out: AuditEvent[] = [];
          const g = new LoginGuard(clock, (e) => void out.push(e));
          const last = new Map<string, { n: number; at: number }>();
          let allowed = 0;
          for (const op of ops) {
            clock.tick(op.dt);
            const acct = `a${op.a}`;
            const remote = `10.0.0.${op.r}`;
            if (!g.check(acct, acct, remote).ok) continue;
            allowed++;
            const prev = last.get(acct);
            if (prev) assert.ok(clock.monotonic() - prev.at >= g.delayMs(prev.n), `${acct}: checked ${clock.monotonic() - prev.at} ms after failure ${prev.n}`);
            g.failed(acct, acct, remote);
            last.set(acct, { n: (prev?.n ?? 0) + 1, at: clock.monotonic() });
          }
          g.flush(true);
          const rows = out.filter((e) => e.reason === "login-failed");
          assert.equal(rows.reduce((n, e) => n + (e.detail?.count as number), 0), allowed);
          assert.equal(rows.reduce((n, e) => n + (e.detail?.count as number) + (e.detail?.refused as number), 0), ops.length);
          assert.ok(g.tracked <= LOGIN_GUARD.remotes + 1);
        }),
        { numRuns: 100 },
      );
    });

    it("a burst of failures in one minute raises one alarm record", async () => {
      const w = world();
      await w.setupOwner();
      for (let i = 0; i < 40; i++) await w.call("POST", "/api/v1/login", { remote: `172.16.0.${i}`, body: { account: `x${i}`, password: "y".repeat(12) } });
      assert.equal(w.events.filter((e) => e.kind === "alarm" && e.reason === "login-burst").length, 1);
    });
  });

  describe("audit records of admin actions", () => {
    it("login, failed login, reads, exports, changes, logout: kind admin, reason = action, who/role/via/remote/result", async () => {
      const w = world();
      await w.setupOwner();
      const r = await w.login("alice", { bearer: true, remote: "192.0.2.44" });
      const token = (w.json(r) as { token: string }).token;
      const auth = { authorization: `Bearer ${token}`, remote: "192.0.2.44:1234" };
      await w.call("GET", "/api/v1/audit", auth);
      await w.call("GET", "/api/v1/audit/export?from=1", auth);
      await w.call("POST", "/api/v1/accounts", { ...auth, body: { name: "ann", role: "auditor", password: PASSWORD } });
      await w.call("GET", "/api/v1/status", auth); // quiet with a session
      await w.call("GET", "/api/v1/status", { authorization: `Bearer ${TOKEN}` }); // never quiet with the break-glass token
      await w.call("POST", "/api/v1/logout", auth);
      await w.call("POST", "/api/v1/login", { remote: "192.0.2.45", body: { account: "alice", password: "wrong wrong wrong" } });
      w.clock.tick(60_000);
      w.api.close();
      const admin = w.events.filter((e) => e.kind === "admin");
      const find = (reason: string) => admin.find((e) => e.reason === reason);
      for (const reason of ["login", "audit-read", "export", "account-add", "logout"]) {
        const e = find(reason);
        assert.ok(e, `a record for ${reason}`);
        assert.deepEqual([e.detail?.who, e.detail?.role, e.detail?.remote, e.detail?.result], ["alice", "owner", "192.0.2.44", reason === "export" ? "requested" : "ok"], reason);
      }
      assert.equal(find("export")?.detail?.path, "/api/v1/audit/export?from=1");
      assert.equal(find("audit-read")?.detail?.via, "session");
      const statuses = admin.filter((e) => e.reason === "status");
      assert.equal(statuses.length, 1);
      assert.equal(statuses[0]?.detail?.via, "token");
      const failed = find("login-failed");
      assert.deepEqual([failed?.detail?.who, failed?.detail?.remote, failed?.detail?.count], ["alice", "192.0.2.45", 1]);
      assert.ok(!JSON.stringify(w.events).includes(PASSWORD), "no password in any record");
      assert.ok(!JSON.stringify(w.events).includes(token), "no session token in any record");
    });

    it("account routes: add, list, reset MFA, remove (not the last owner), change own password, re-enrol", async () => {
      const w = world();
      await w.setupOwner();
      const tok = (w.json(await w.login("alice", { bearer: true })) as { token: string }).token;
      const a = { authorization: `Bearer ${tok}` };
      assert.equal((await w.call("POST", "/api/v1/accounts", { ...a, body: { name: "ivan", role: "installer", password: "short" } })).status, 400);
      const bad = w.json(await w.call("POST", "/api/v1/accounts", { ...a, body: { name: "ivan", role: "root", password: PASSWORD } }));
      assert.equal(bad.field, "role");
      const add = w.json(await w.call("POST", "/api/v1/accounts", { ...a, body: { name: "ivan", role: "installer", password: PASSWORD } }));
      assert.equal((add.recoveryCodes as string[]).length, 10);
      const list = w.json(await w.call("GET", "/api/v1/accounts", a)).accounts as { name: string; mfa: boolean }[];
      assert.deepEqual(list.map((x) => [x.name, x.mfa]), [["alice", true], ["ivan", true]]);
      const reset = w.json(await w.call("POST", "/api/v1/accounts/ivan/reset-mfa", a));
      assert.match((reset.totp as { uri: string }).uri, /otpauth/);
      assert.equal((await w.call("DELETE", "/api/v1/accounts/alice", a)).status, 409, "last owner");
      assert.equal((await w.call("DELETE", "/api/v1/accounts/ivan", a)).status, 200);
      assert.equal((await w.call("DELETE", "/api/v1/accounts/ivan", a)).status, 404);
      assert.equal((await w.call("POST", "/api/v1/me/password", { ...a, body: { password: "wrong", newPassword: "a new long password" } })).status, 403);
      assert.equal((await w.call("POST", "/api/v1/me/password", { ...a, body: { password: PASSWORD, newPassword: "a new long password" } })).status, 200);
      assert.equal((await w.login("alice")).status, 401, "the old password is gone");
      w.clock.tick(LOGIN_GUARD.backoffMaxMs);
      const again = await w.login("alice", { password: "a new long password", bearer: true });
      assert.equal(again.status, 200);
      const enrol = w.json(await w.call("POST", "/api/v1/me/totp", { authorization: `Bearer ${(w.json(again) as { token: string }).token}`, body: { password: "a new long password" } }));
      assert.equal((enrol.recoveryCodes as string[]).length, 10);
      assert.equal((await w.call("POST", "/api/v1/me/totp", { authorization: `Bearer ${TOKEN}`, body: { password: "x" } })).status, 400, "the token has no account");
    });
  });

  describe("role × route × method matrix", () => {
    it("every route of api.routes: no credential and wrong credentials are refused, each role gets exactly its rows", async () => {
      const w = world({ maxSessions: 10_000 });
      await w.setupOwner();
      await w.addAccount("alice", "ann", "auditor");
      await w.addAccount("alice", "ivan", "installer");
      const r = await roleMatrix(w.api, (ms) => w.clock.tick(ms), TOKEN, { owner: "alice", auditor: "ann", installer: "ivan" });
      assert.deepEqual(r.unexpected, []);
      assert.ok(r.checked >= w.api.routes.length * 12);
    });
  });
});
