/** The admin API, transport-free: bearer token by hash, per-address throttling, parameters checked, records served as NDJSON. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { AdminApi, AUDIT_PAGE_MAX, AUTH_THROTTLE, addressOf, readAll, STREAM_CHUNK_CHARS } from "../../src/admin/api.js";
import { FlashAuditLog } from "../../src/audit/log.js";
import type { AuditEvent } from "../../src/audit/types.js";
import { CERT_MAX_DAYS, parseGatewayConfig } from "../../src/config.js";
import { ramFlash } from "../../src/flash/nor.js";
import { utf8 } from "../../src/util/bytes.js";
import { FakeClock } from "../lib/fake-clock.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";

const TOKEN = "pct_test-token-not-a-secret";

describe("admin API", () => {
  let api: AdminApi;
  let log: FlashAuditLog;
  let events: AuditEvent[];
  let clock: FakeClock;
  const get = (target: string, token: string | null = TOKEN) =>
    api.handle({ method: "GET", target, authorization: token === null ? undefined : `Bearer ${token}`, remote: "198.51.100.7:4000" });
  const lines = (body: readonly string[]) => body.map((l) => JSON.parse(l));

  beforeEach(async () => {
    clock = new FakeClock();
    const random = seededRandom("admin");
    const crypto = nobleCrypto(random);
    log = await FlashAuditLog.open({ flash: ramFlash(64 * 4096), crypto, random, keys: new MemoryKeys(), clock, timers: clock });
    events = [];
    api = new AdminApi({ crypto, clock, audit: log, tokenHash: crypto.sha256(utf8(TOKEN)), onEvent: (e) => void events.push(e), status: () => ({ ok: true }), exportJsonl: async (f, t) => log.exportLines(f, t), beforeRead: () => log.flushSummaries() });
    await log.append({ kind: "flow", decision: "deny", device: "cam", topic: "home/cam/x", reason: "no-contract" });
    // Allowed flows resolve once their flow commit is durable: the flush writes it now.
    const flows = [0, 1].map(() => log.aggregate({ device: "plug", integration: "energy", decision: "minimize", rule: "r1", reason: "minimized", bytes: 40, fieldsDropped: 2 }));
    await log.flushSummaries();
    await Promise.all(flows);
  });
  afterEach(() => log.close());

  it("answers 401 without, with a wrong, or with a malformed token, and records the refusal without the token", async () => {
    for (const auth of [null, "pct_wrong", ""]) assert.equal((await get("/api/v1/audit", auth)).status, 401);
    assert.equal((await api.handle({ method: "GET", target: "/api/v1/audit", authorization: `Basic ${TOKEN}`, remote: "x" })).status, 401);
    assert.equal(events.length, 4);
    assert.ok(events.every((e) => e.kind === "admin" && e.decision === "deny"));
    assert.ok(!JSON.stringify(events).includes(TOKEN), "the presented token is never recorded");
    assert.equal(events[1]?.reason, "bad-token");
    assert.equal(events[0]?.reason, "no-token");
    // The source address without the port, so the audit layer can fold one address's noise together.
    assert.deepEqual(events.map((e) => e.detail?.remote), ["198.51.100.7", "198.51.100.7", "198.51.100.7", "x"]);
  });

  it("takes the address out of a peer string, IPv4 and IPv6", () => {
    assert.equal(addressOf("192.0.2.1:5000"), "192.0.2.1");
    assert.equal(addressOf("[2001:db8::1]:443"), "2001:db8::1");
    assert.equal(addressOf("2001:db8::1"), "2001:db8::1");
    assert.equal(addressOf("::ffff:192.0.2.1"), "::ffff:192.0.2.1");
    assert.equal(addressOf("192.0.2.1"), "192.0.2.1");
  });

  describe("failed-authentication throttling", () => {
    const K = AUTH_THROTTLE.failures;
    const W = AUTH_THROTTLE.windowMs;
    const from = (remote: string, token: string | null) =>
      api.handle({ method: "GET", target: "/api/v1/status", authorization: token === null ? undefined : `Bearer ${token}`, remote });

    it("locks an address out after K failures within the window: 429 + Retry-After, even for the right token", async () => {
      for (let i = 0; i < K; i++) assert.equal((await from("203.0.113.9:1000", "pct_guess" + i)).status, 401);
      const locked = await from("203.0.113.9:1001", TOKEN);
      assert.equal(locked.status, 429);
      assert.equal(locked.headers?.["Retry-After"], String(W / 1000));
      clock.tick(W / 2);
      assert.equal((await from("203.0.113.9", "pct_more")).headers?.["Retry-After"], String(W / 2000));
      // Another address is unaffected, with the right token or a wrong one.
      assert.equal((await from("203.0.113.10:5", TOKEN)).status, 200);
      assert.equal((await from("203.0.113.11:5", "pct_wrong")).status, 401);
      clock.tick(W / 2);
      assert.equal((await from("203.0.113.9:1002", TOKEN)).status, 200, "the lockout ends with the window");
    });

    it("writes at most one record per window for a locked address, with the count it refused", async () => {
      for (let i = 0; i < K; i++) await from("203.0.113.9", "pct_guess");
      for (let i = 0; i < 500; i++) await from("203.0.113.9", i % 2 ? TOKEN : "pct_guess");
      const mine = () => events.filter((e) => e.detail?.remote === "203.0.113.9");
      assert.equal(mine().length, K, "K-1 refusals, then one `throttled` record, then silence");
      assert.deepEqual(mine().at(-1), { kind: "admin", decision: "deny", reason: "throttled", detail: { remote: "203.0.113.9", failures: K, retryAfterS: W / 1000 } });
      clock.tick(W);
      await from("198.51.100.1", TOKEN); // any later request closes the finished lockout
      assert.equal(mine().length, K + 1);
      assert.deepEqual(mine().at(-1)?.detail, { remote: "203.0.113.9", refused: 500 });
    });

    it("counts failures over a sliding window: spread wider than W they never lock; a success does not wipe them", async () => {
      for (let i = 0; i < 3 * K; i++) {
        assert.equal((await from("203.0.113.9", "pct_guess")).status, 401);
        clock.tick(W / (K - 1)); // K-1 failures per window at most
      }
      for (let i = 0; i < K - 1; i++) await from("203.0.113.8", "pct_guess");
      assert.equal((await from("203.0.113.8", TOKEN)).status, 200);
      assert.equal((await from("203.0.113.8", "pct_guess")).status, 401, "the K-th failure is still checked (and answered 401)");
      assert.equal((await from("203.0.113.8", TOKEN)).status, 429, "…and locks the address despite the success in between");
    });

    it("shares one overflow entry once the address table is full, so the table never grows", async () => {
      const small = new AdminApi({
        crypto: nobleCrypto(seededRandom("t")), clock, audit: log, tokenHash: nobleCrypto(seededRandom("t")).sha256(utf8(TOKEN)),
        onEvent: (e) => void events.push(e), status: () => ({}), throttle: { failures: 2, addresses: 2 },
      });
      const knock = (remote: string, token = "pct_guess") => small.handle({ method: "GET", target: "/api/v1/status", authorization: `Bearer ${token}`, remote });
      await knock("10.0.0.1");
      await knock("10.0.0.2");
      await knock("10.0.0.3"); // overflow "*": 1 failure
      assert.equal((await knock("10.0.0.4")).status, 401); // "*": 2 failures, locked
      assert.equal((await knock("10.0.0.5", TOKEN)).status, 429, "an untracked address falls under the locked overflow entry");
      assert.equal((await knock("10.0.0.1", TOKEN)).status, 200, "tracked addresses keep their own state");
      assert.ok(events.some((e) => e.reason === "throttled" && e.detail?.remote === "*"));
    });

    it("refuses bad throttle limits at construction", () => {
      for (const throttle of [{ failures: 0 }, { windowMs: 1.5 }, { addresses: -1 }]) {
        assert.throws(() => new AdminApi({ crypto: nobleCrypto(seededRandom("t")), clock, audit: log, tokenHash: new Uint8Array(32), onEvent: () => undefined, status: () => ({}), throttle }), /throttle/);
      }
    });

    it("property: no address gets more than K wrong tokens checked within any window", async () => {
      const op = fc.record({ who: fc.constantFrom("a", "b", "c"), good: fc.boolean(), wait: fc.constantFrom(0, 0, 0, 0, 1000, W / 4, W) });
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 20, maxLength: 80 }), async (ops) => {
          const t = new FakeClock();
          const c = nobleCrypto(seededRandom("p"));
          const p = new AdminApi({ crypto: c, clock: t, audit: log, tokenHash: c.sha256(utf8(TOKEN)), onEvent: () => undefined, status: () => ({}) });
          const checked = new Map<string, number[]>(); // when each wrong token was checked (got 401)
          for (const o of ops) {
            t.tick(o.wait);
            const r = await p.handle({ method: "GET", target: "/api/v1/status", authorization: `Bearer ${o.good ? TOKEN : "pct_bad"}`, remote: o.who });
            if (r.status === 401) checked.set(o.who, [...(checked.get(o.who) ?? []), t.monotonic()]);
            if (r.status === 429) assert.ok(Number(r.headers?.["Retry-After"]) >= 1);
            const times = checked.get(o.who) ?? [];
            const inWindow = times.filter((x) => t.monotonic() - x < W).length;
            assert.ok(inWindow <= K, `${inWindow} wrong tokens checked within one window for ${o.who}`);
          }
        }),
        { numRuns: 60 },
      );
    });
  });

  it("serves every decision, expanding summary rows, in sequence order", async () => {
    const r = await get("/api/v1/audit?since=0&limit=100");
    assert.equal(r.status, 200);
    assert.equal(r.contentType, "application/x-ndjson");
    const recs = lines(r.body);
    const deny = recs.find((x) => x.decision === "deny");
    assert.deepEqual([deny.device, deny.topic, deny.reason, deny.integration, deny.rule], ["cam", "home/cam/x", "no-contract", null, null]);
    const row = recs.find((x) => x.kind === "flow-summary" && x.reason !== "commit");
    assert.deepEqual([row.decision, row.device, row.integration, row.rule, row.count, row.bytes, row.fieldsDropped], ["minimize", "plug", "energy", "r1", 2, 80, 4]);
    const seqs = recs.map((x) => x.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
  });

  it("filters by kind, device and integration, down to summary rows", async () => {
    assert.ok(lines((await get("/api/v1/audit?kind=flow")).body).every((x) => x.kind === "flow"));
    assert.ok(lines((await get("/api/v1/audit?device=plug")).body).every((x) => x.device === "plug"));
    assert.equal(lines((await get("/api/v1/audit?integration=nobody")).body).length, 0);
  });

  it("refuses bad parameters with 400 naming them, and unknown routes and methods", async () => {
    for (const [q, re] of [["since=-1", /since/], ["limit=abc", /limit/], ["kind=nope", /unknown kind/], ["from=yesterday", /from/]] as const) {
      const r = await get(`/api/v1/audit?${q}`);
      assert.equal(r.status, 400, q);
      assert.match(JSON.parse(r.body[0]!).error, re);
    }
    assert.equal((await get("/api/v1/nothing")).status, 404);
    assert.equal((await get("/elsewhere")).status, 404);
    assert.equal((await api.handle({ method: "POST", target: "/api/v1/audit", authorization: `Bearer ${TOKEN}`, remote: "x" })).status, 405);
  });

  it("caps a page at the maximum, whatever the client asks", async () => {
    // A log double that hands back as many records as asked: the cap must come from the API itself.
    const asked: (number | undefined)[] = [];
    const rec = (seq: number) => ({ seq, time: 0, timeSet: true, kind: "admin" as const, decision: "info" as const });
    const many = new AdminApi({
      crypto: nobleCrypto(seededRandom("cap")),
      clock,
      audit: { nextSeq: 1, stats: () => ({ records: 0, bytesUsed: 0, bytesTotal: 0 }), append: async () => 0, query: (q) => (asked.push(q.limit), Array.from({ length: q.limit ?? 5000 }, (_, i) => rec(i + 1))) },
      tokenHash: nobleCrypto(seededRandom("cap")).sha256(utf8(TOKEN)),
      onEvent: () => undefined,
      status: () => ({}),
    });
    const r = await many.handle({ method: "GET", target: `/api/v1/audit?limit=${AUDIT_PAGE_MAX * 5}`, authorization: `Bearer ${TOKEN}`, remote: "x" });
    assert.equal(r.body.length, AUDIT_PAGE_MAX);
    await many.handle({ method: "GET", target: "/api/v1/audit", authorization: `Bearer ${TOKEN}`, remote: "x" });
    assert.deepEqual(asked, [AUDIT_PAGE_MAX, 100]);
  });

  it("exports after a seal, records the export, and answers 400 for a range past the end", async () => {
    const r = await get("/api/v1/audit/export");
    assert.equal(r.status, 200);
    const text = await readAll(r);
    assert.ok(text.trimEnd().split("\n").map((l) => JSON.parse(l) as { kind?: string }).some((x) => x.kind === "seal"));
    assert.ok(events.some((e) => e.kind === "admin" && e.reason === "export"));
    const bad = await get("/api/v1/audit/export?from=999999");
    assert.equal(bad.status, 400);
    assert.equal(bad.stream, undefined);
  });

  it("streams a large export byte-identical to the whole one, holding at most one chunk of lines ahead of the host", async () => {
    for (let i = 0; i < 3000; i++) await log.append({ kind: "flow", decision: "deny", device: `cam${i % 7}`, topic: `home/cam/${i}`, reason: "no-contract" });
    let made = 0;
    let closed = 0;
    const counting = new AdminApi({
      crypto: nobleCrypto(seededRandom("count")), clock, audit: log, tokenHash: nobleCrypto(seededRandom("t")).sha256(utf8(TOKEN)), onEvent: () => undefined, status: () => ({}),
      exportJsonl: async (f, t) => {
        const inner = log.exportLines(f, t);
        return { next: () => { const r = inner.next(); if (!r.done) made++; return r; }, return: (v?: unknown) => { closed++; return inner.return(v); } } as Iterator<string>;
      },
    });
    const r = await counting.handle({ method: "GET", target: "/api/v1/audit/export", authorization: `Bearer ${TOKEN}`, remote: "x" });
    assert.equal(r.status, 200);
    assert.ok(r.stream);
    let text = r.body.join("");
    let sent = text.split("\n").length - 1;
    let most = 0;
    let chunks = 0;
    for (let c = await r.stream.next(); c !== undefined; c = await r.stream.next()) {
      assert.ok(c.length <= STREAM_CHUNK_CHARS + 400, "a chunk is about STREAM_CHUNK_CHARS");
      // The host has this chunk; everything made so far is in it or already sent.
      most = Math.max(most, made - sent);
      text += c;
      sent += c.split("\n").length - 1;
      chunks++;
    }
    r.stream.close();
    assert.ok(chunks > 50, `${chunks} chunks`);
    assert.ok(most <= 60, `at most one chunk of lines made ahead of what was sent (saw ${most})`);
    assert.equal(made, sent);
    assert.equal(closed, 1, "the line source is released once");
    assert.equal(text, log.exportJsonl().join("\n") + "\n", "the same bytes as the whole export");
  });

  it("an export stream closed early releases its source and ends", async () => {
    let closed = 0;
    const inner = log.exportLines();
    const early = new AdminApi({
      crypto: nobleCrypto(seededRandom("e")), clock, audit: log, tokenHash: nobleCrypto(seededRandom("t")).sha256(utf8(TOKEN)), onEvent: () => undefined, status: () => ({}),
      exportJsonl: async () => ({ next: () => inner.next(), return: (v?: unknown) => { closed++; return inner.return(v); } }) as Iterator<string>,
    });
    const r = await early.handle({ method: "GET", target: "/api/v1/audit/export", authorization: `Bearer ${TOKEN}`, remote: "x" });
    r.stream!.close();
    r.stream!.close();
    assert.equal(closed, 1);
    assert.equal(await r.stream!.next(), undefined);
  });

  describe("gateway.json admin options", () => {
    const parse = (admin: unknown) => parseGatewayConfig(JSON.stringify({ devices: [], admin }), []);
    it("accepts the documented options and keeps absent ones absent", () => {
      const r = parse({ host: "192.168.1.2", maxConnections: 4, headerTimeoutMs: 5000, idleTimeoutMs: 20000, authFailures: 3, authWindowMs: 30000, certValidityDays: 397, certRenewDays: 14 });
      assert.ok(r.ok);
      assert.deepEqual(r.config.admin, { host: "192.168.1.2", maxConnections: 4, headerTimeoutMs: 5000, idleTimeoutMs: 20000, authFailures: 3, authWindowMs: 30000, certValidityDays: 397, certRenewDays: 14 });
      const none = parseGatewayConfig(JSON.stringify({ devices: [] }), []);
      assert.ok(none.ok && none.config.admin === undefined);
      assert.ok(parse({ host: "::" }).ok);
    });
    it("names each bad option by its path", () => {
      const r = parse({ host: "my-laptop", maxConnections: 0, headerTimeoutMs: "10", certValidityDays: CERT_MAX_DAYS + 1, certRenewDays: 400, colour: "red" });
      assert.ok(!r.ok);
      assert.deepEqual(r.errors.map((e) => e.path).sort(), ["/admin/certValidityDays", "/admin/colour", "/admin/headerTimeoutMs", "/admin/host", "/admin/maxConnections"]);
      const renew = parse({ certValidityDays: 90, certRenewDays: 90 });
      assert.ok(!renew.ok && renew.errors[0]?.path === "/admin/certRenewDays");
      assert.ok(!parse([1]).ok);
    });
  });
});
