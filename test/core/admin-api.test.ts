/** The admin API, transport-free: bearer token by hash, parameters checked, records served as NDJSON. */
import assert from "node:assert/strict";
import { AdminApi, AUDIT_PAGE_MAX } from "../../src/admin/api.js";
import { FlashAuditLog } from "../../src/audit/log.js";
import type { AuditEvent } from "../../src/audit/types.js";
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
    api = new AdminApi({ crypto, audit: log, tokenHash: crypto.sha256(utf8(TOKEN)), onEvent: (e) => void events.push(e), status: () => ({ ok: true }), exportJsonl: async (f, t) => log.exportJsonl(f, t), beforeRead: () => log.flushSummaries() });
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
    assert.ok(lines(r.body).some((x) => x.kind === "seal"));
    assert.ok(events.some((e) => e.kind === "admin" && e.reason === "export"));
    assert.equal((await get("/api/v1/audit/export?from=999999")).status, 400);
  });
});
