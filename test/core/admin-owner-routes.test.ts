/**
 * The owner's actions over the admin API (src/admin/owner-routes.ts over src/gateway/actions.ts), on
 * the whole gateway on in-memory ports: every route's success, each bad field, unknown ids,
 * conflicts, the role table, and the audit record of who acted. Runs on Node and inside XS.
 */
import assert from "node:assert/strict";
import type { Board, Console, Uplink, UplinkOptions } from "../../src/ports.js";
import { ramFlash } from "../../src/flash/nor.js";
import { startGateway, type Gateway } from "../../src/gateway.js";
import { FLASH_BYTES_NEEDED } from "../../src/gateway/outbound.js";
import { makeDeviceSecret, parseGatewayConfig } from "../../src/config.js";
import type { Principal, Role } from "../../src/admin/routes.js";
import type { AdminResponse } from "../../src/admin/api.js";
import { changeInWords } from "../../src/gateway/actions.js";
import { localMidnight } from "../../src/gateway/today.js";
import type { AuditRecord } from "../../src/audit/types.js";
import { toBase64, utf8 } from "../../src/util/bytes.js";
import { encode } from "../../src/mqtt/codec.js";
import { FakeSocket } from "../fixtures/mqtt/fake-socket.js";
import { FakeClock } from "../lib/fake-clock.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";

/** A vendor that is always up and acknowledges everything. */
class Vendor implements Uplink {
  readonly sent: { topic: string; payload: Uint8Array }[] = [];
  connect(o: UplinkOptions) {
    Promise.resolve().then(() => o.onConnect());
    return {
      publish: (topic: string, payload: Uint8Array) => (this.sent.push({ topic, payload: payload.slice() }), Promise.resolve()),
      close: () => undefined,
    };
  }
}

const contract = (publicKey: string, version = "1.0.0", retentionDays = 30) =>
  JSON.stringify({
    format: 1, id: "thermo-cloud", version, vendor: "ThermoCloud", contact: "privacy@thermocloud.example",
    purpose: "Shows the hall temperature in the vendor's app.", effective: "2026-01-01",
    destinations: [{ id: "tc", protocol: "mqtts", host: "vendor.example", port: 8883, topic: "tc/{device-pseudonym}/state", encryption: "hpke", publicKey, keyId: "tc-test" }],
    flows: [{ id: "state", destination: "tc", devices: ["thermostat"], topics: ["home/thermostat/telemetry"],
      fields: [{ path: "/temperature_c", class: "environment" }, { path: "/hvac_mode", class: "usage" }], rate: { perMinute: 600, minIntervalMs: 0 } }],
    terms: { retentionDays, consent: { environment: false, usage: true }, sla: { uptimePercent: 99, maxLatencyMs: 1000 },
      exit: { exportFormat: "json", deletionDays: 30 }, queue: { maxBytes: 8192, overflow: "drop-oldest", ttlSeconds: 3600 } },
  });

async function settle(clock: FakeClock, ms = 50): Promise<void> {
  for (let i = 0; i < 20; i++) {
    clock.tick(Math.ceil(ms / 20));
    await Promise.resolve();
    await new Promise<void>((r) => Promise.resolve().then(() => r()));
  }
}

/** The route × role table these routes promise (SPEC.md "Owner actions over HTTPS"). */
const TABLE: readonly [string, string, readonly Role[]][] = [
  ["GET", "/api/v1/integrations", ["owner", "auditor", "installer"]],
  ["POST", "/api/v1/integrations/{id}/quarantine", ["owner"]],
  ["POST", "/api/v1/integrations/{id}/release", ["owner"]],
  ["POST", "/api/v1/integrations/{id}/rotate", ["owner"]],
  ["DELETE", "/api/v1/integrations/{id}", ["owner"]],
  ["GET", "/api/v1/contracts", ["owner", "auditor", "installer"]],
  ["GET", "/api/v1/contracts/pending", ["owner", "auditor", "installer"]],
  ["POST", "/api/v1/contracts/{id}/approve", ["owner"]],
  ["POST", "/api/v1/contracts/{id}/reject", ["owner"]],
  ["GET", "/api/v1/consent", ["owner", "auditor"]],
  ["POST", "/api/v1/consent", ["owner"]],
  ["POST", "/api/v1/audit/hold", ["owner"]],
  ["POST", "/api/v1/audit/unhold", ["owner"]],
  ["POST", "/api/v1/audit/seal", ["owner"]],
  ["GET", "/api/v1/datamap", ["owner", "auditor"]],
  ["GET", "/api/v1/devices", ["owner", "installer"]],
  ["GET", "/api/v1/today", ["owner", "auditor", "installer"]],
  ["POST", "/api/v1/devices", ["owner", "installer"]],
  ["DELETE", "/api/v1/devices/{id}", ["owner", "installer"]],
];

describe("owner actions over the admin API", () => {
  const random = seededRandom("owner-routes-test");
  const crypto = nobleCrypto(random);
  const vendor = crypto.p256Generate();
  const pub = toBase64(vendor.publicKey);
  let clock: FakeClock;
  let g: Gateway;
  let token: string;
  let board: Board;
  let store: Map<string, string>;

  async function boot(contractText: string, fresh: boolean): Promise<void> {
    await g?.stop();
    if (fresh) {
      clock = new FakeClock();
      store = new Map();
      const konsole: Console = { start: () => undefined, write: () => undefined };
      board = {
        clock, timers: clock, random, crypto, flash: ramFlash(FLASH_BYTES_NEEDED), keys: new MemoryKeys(), console: konsole,
        network: { listen: () => { throw new Error("not used"); } },
        uplink: new Vendor(),
      };
    }
    const secret = makeDeviceSecret(crypto, new Uint8Array(16), "device-password");
    const parsed = parseGatewayConfig(JSON.stringify({ name: "test home", devices: [{ id: "thermostat", secret, groups: ["hall"] }], audit: { groupCommitMs: 0 } }), [{ source: "tc.json", text: contractText }]);
    assert.ok(parsed.ok, JSON.stringify(parsed));
    g = await startGateway(board, parsed.config, {
      onVerificationKey: () => undefined,
      onOwnerToken: (t) => (token = t),
      contractStore: { get: (id) => store.get(id), set: (id, text) => void store.set(id, text) },
    });
    await settle(clock);
  }

  /** Boots v1, then v1.1.0 with a longer retention (a change that waits for approval). */
  async function bootWithPending(): Promise<void> {
    await boot(contract(pub), true);
    await boot(contract(pub, "1.1.0", 90), false);
  }

  beforeEach(async () => {
    await boot(contract(pub), true);
  });
  afterEach(async () => {
    await g?.stop();
  });

  /** Through the real AdminApi with the owner's bearer token. */
  async function call(method: string, target: string, body?: unknown, type = "application/json"): Promise<{ status: number; json: Record<string, unknown> & { [k: string]: unknown } }> {
    const r = await g.admin.handle({
      method, target, authorization: `Bearer ${token}`, remote: "192.0.2.9:50100",
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body), headers: { "content-type": type } }),
    });
    return { status: r.status, json: r.body.length ? JSON.parse(r.body.join("")) : {} };
  }

  /** As another principal: the same route table and role check as AdminApi.handle. */
  async function as(role: Role, method: string, path: string): Promise<AdminResponse> {
    const who: Principal = { account: `${role}-1`, role, via: "session", remote: "192.0.2.10" };
    const m = g.admin.match(method, path);
    assert.equal(m.kind, "found", `${method} ${path}`);
    if (m.kind !== "found") throw new Error("unreachable");
    if (!m.route.roles.includes(role)) return { status: 403, contentType: "application/json", body: [] };
    return m.route.handle({ req: { method, target: path, remote: who.remote }, path, query: new Map(), params: m.params, principal: who, remote: who.remote }, m.ctx as never);
  }

  async function records(): Promise<AuditRecord[]> {
    await settle(clock);
    return g.audit.log.query({ since: 1, limit: 1000 });
  }

  /** The actor's record of `reason`: who, role, via and remote of the caller. */
  async function actorRecord(reason: string): Promise<AuditRecord> {
    const r = (await records()).filter((x) => x.kind === "admin" && x.reason === reason).at(-1);
    assert.ok(r, `an admin record "${reason}"`);
    return r;
  }

  function assertOwnerToken(r: AuditRecord): void {
    assert.deepEqual({ who: r.detail?.who, role: r.detail?.role, via: r.detail?.via, remote: r.detail?.remote }, { who: "owner-token", role: "owner", via: "token", remote: "192.0.2.9" });
  }

  it("serves every route with the role table of SPEC.md; other roles get 403", async () => {
    const mine = g.admin.routes.filter((r) => TABLE.some(([m, p]) => m === r.method && p === r.path));
    assert.equal(mine.length, TABLE.length, "every route of the table is served");
    for (const [method, path, roles] of TABLE) {
      const route = g.admin.routes.find((r) => r.method === method && r.path === path)!;
      assert.deepEqual([...route.roles].sort(), [...roles].sort(), `${method} ${path}`);
    }
    let refused = 0;
    for (const [method, path, roles] of TABLE) {
      const concrete = path.replace("{id}", "thermo-cloud");
      for (const role of ["auditor", "installer"] as const) {
        const r = await as(role, method, concrete);
        if (roles.includes(role)) assert.notEqual(r.status, 403, `${role} ${method} ${concrete}`);
        else (assert.equal(r.status, 403, `${role} ${method} ${concrete}`), refused++);
      }
    }
    assert.equal(refused, 25, "38 (route, role) pairs, 13 of them allowed");
    // The owner's token reaches every read; no route answers 404/405 for its own method.
    for (const [method, path] of TABLE.filter(([m]) => m === "GET")) assert.equal((await call(method, path)).status, 200, path);
    assert.equal((await call("GET", "/api/v1/integrations/thermo-cloud")).status, 405);
  });

  it("the installer never sees flow details or consent; the auditor changes nothing", async () => {
    assert.equal((await as("installer", "GET", "/api/v1/datamap")).status, 403);
    assert.equal((await as("installer", "GET", "/api/v1/consent")).status, 403);
    for (const [m, p] of TABLE.filter(([m]) => m !== "GET")) assert.equal((await as("auditor", m, p.replace("{id}", "thermo-cloud"))).status, 403, `${m} ${p}`);
  });

  it("GET integrations, contracts, consent, datamap and devices answer JSON", async () => {
    const i = (await call("GET", "/api/v1/integrations")).json.integrations as Record<string, unknown>[];
    assert.equal(i.length, 1);
    assert.deepEqual({ id: i[0]!.id, state: i[0]!.state, version: i[0]!.version, vendor: i[0]!.vendor, quarantine: i[0]!.quarantine }, { id: "thermo-cloud", state: "active", version: "1.0.0", vendor: "ThermoCloud", quarantine: null });
    const c = (await call("GET", "/api/v1/contracts")).json.contracts as Record<string, unknown>[];
    assert.deepEqual(c[0], { integration: "thermo-cloud", version: "1.0.0", vendor: "ThermoCloud", purpose: "Shows the hall temperature in the vendor's app.", retentionDays: 30, classes: ["environment", "usage"], destinations: ["vendor.example:8883"], pendingVersion: null });
    assert.deepEqual((await call("GET", "/api/v1/contracts/pending")).json, { pending: [] });
    const consent = (await call("GET", "/api/v1/consent")).json.consent as Record<string, unknown>[];
    assert.deepEqual(consent.map((x) => [x.class, x.required, x.state]), [["environment", false, null], ["usage", true, null]]);
    const map = (await call("GET", "/api/v1/datamap")).json as { devices: { device: string; integrations: { integration: string; declaredNeverSeen: boolean }[] }[] };
    assert.equal(map.devices[0]!.device, "thermostat");
    assert.equal(map.devices[0]!.integrations[0]!.declaredNeverSeen, true, "declared, not yet observed");
    const d = (await call("GET", "/api/v1/devices")).json.devices as Record<string, unknown>[];
    assert.deepEqual(d, [{ id: "thermostat", username: "thermostat", groups: ["hall"], connected: false, remote: null, connectedSeconds: null, source: "config", disabled: false }]);
  });

  it("GET /devices shows a device disabled over the API as disabled, and enabled again", async () => {
    const shown = async () => ((await call("GET", "/api/v1/devices")).json.devices as { id: string; disabled: boolean }[]).map((d) => [d.id, d.disabled]);
    assert.equal((await call("POST", "/api/v1/devices/thermostat/disable")).status, 200);
    assert.deepEqual(await shown(), [["thermostat", true]]);
    assert.equal((await call("POST", "/api/v1/devices/thermostat/enable")).status, 200);
    assert.deepEqual(await shown(), [["thermostat", false]]);
  });

  it("POST /consent grants and withdraws, recorded with who acted; each bad field is named", async () => {
    const ok = await call("POST", "/api/v1/consent", { integration: "thermo-cloud", class: "usage", grant: true });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.deepEqual(ok.json, { integration: "thermo-cloud", class: "usage", state: "opt-in", previous: null });
    assert.equal(g.policy.engine.consent("thermo-cloud")["usage"]?.state, "opt-in");
    assert.equal(g.policy.engine.consent("thermo-cloud")["usage"]?.who, "owner-token");
    const r = await actorRecord("consent");
    assertOwnerToken(r);
    assert.deepEqual({ i: r.integration, c: r.detail?.class, s: r.detail?.state }, { i: "thermo-cloud", c: "usage", s: "opt-in" });
    const w = await call("POST", "/api/v1/consent", { integration: "thermo-cloud", class: "usage", grant: false });
    assert.deepEqual(w.json, { integration: "thermo-cloud", class: "usage", state: "withdrawn", previous: "opt-in" });
    assert.ok((await records()).some((x) => x.kind === "consent" && x.reason === "withdrawn" && x.detail?.who === "owner-token"));
    assert.equal((await call("POST", "/api/v1/consent", { integration: "thermo-cloud", class: "usage", state: "opt-out" })).json.state, "opt-out");

    const bad: [unknown, number, string | undefined][] = [
      [{ class: "usage", grant: true }, 400, "integration"],
      [{ integration: 7, class: "usage", grant: true }, 400, "integration"],
      [{ integration: "nope", class: "usage", grant: true }, 404, "integration"],
      [{ integration: "thermo-cloud", grant: true }, 400, "class"],
      [{ integration: "thermo-cloud", class: "shoe-size", grant: true }, 400, "class"],
      [{ integration: "thermo-cloud", class: "usage" }, 400, "grant"],
      [{ integration: "thermo-cloud", class: "usage", grant: "yes" }, 400, "grant"],
      [{ integration: "thermo-cloud", class: "usage", grant: true, state: "opt-in" }, 400, "grant"],
      [{ integration: "thermo-cloud", class: "usage", state: "maybe" }, 400, "state"],
      [{ integration: "thermo-cloud", class: "usage", grant: true, extra: 1 }, 400, "extra"],
      ["{not json", 400, "body"],
      ["[1,2]", 400, "body"],
    ];
    for (const [body, status, field] of bad) {
      const res = await call("POST", "/api/v1/consent", body);
      assert.equal(res.status, status, JSON.stringify(body));
      assert.equal(res.json.field, field, JSON.stringify(body));
      assert.equal(typeof res.json.error, "string");
    }
    assert.equal((await call("POST", "/api/v1/consent", "integration=x", "text/plain")).status, 415);
    assert.equal(g.policy.engine.consent("thermo-cloud")["usage"]?.state, "opt-out", "no bad request changed anything");
  });

  it("contract review: the pending change in words, approve (then 409), reject, unknown id 404", async () => {
    await bootWithPending();
    const p = (await call("GET", "/api/v1/contracts/pending")).json.pending as { integration: string; from: string; to: string; summary: string; changes: { path: string; relevant: boolean; words: string }[] }[];
    assert.equal(p.length, 1);
    assert.deepEqual({ i: p[0]!.integration, f: p[0]!.from, t: p[0]!.to }, { i: "thermo-cloud", f: "1.0.0", t: "1.1.0" });
    const retention = p[0]!.changes.find((c) => c.path === "/terms/retentionDays");
    assert.equal(retention?.words, "retention days: 30 → 90 (needs your approval)");
    assert.match(p[0]!.summary, /^ThermoCloud v1\.0\.0 → v1\.1\.0: 2 changes, 1 needing your approval$/);
    assert.equal((await call("POST", "/api/v1/contracts/nope/approve")).status, 404);
    assert.equal((await call("POST", "/api/v1/contracts/thermo-cloud/approve", { now: true })).json.field, "now");
    const a = await call("POST", "/api/v1/contracts/thermo-cloud/approve");
    assert.equal(a.status, 200, JSON.stringify(a.json));
    assert.deepEqual(a.json, { integration: "thermo-cloud", version: "1.1.0" });
    assert.equal(g.policy.engine.contract("thermo-cloud")?.terms.retentionDays, 90);
    assertOwnerToken(await actorRecord("contract-approved"));
    assert.ok((await records()).some((x) => x.kind === "contract" && x.reason === "approved" && x.detail?.who === "owner-token"));
    const again = await call("POST", "/api/v1/contracts/thermo-cloud/approve");
    assert.deepEqual([again.status, again.json.field], [409, "integration"]);
    assert.equal((await call("POST", "/api/v1/contracts/thermo-cloud/reject")).status, 409);
    assert.equal(store.get("thermo-cloud"), contract(pub, "1.1.0", 90), "the approved text is the new baseline");
  });

  it("rejecting a pending version keeps the one in force", async () => {
    await bootWithPending();
    const r = await call("POST", "/api/v1/contracts/thermo-cloud/reject");
    assert.deepEqual([r.status, r.json], [200, { integration: "thermo-cloud", version: "1.1.0" }]);
    assert.equal(g.policy.engine.contract("thermo-cloud")?.version, "1.0.0");
    assertOwnerToken(await actorRecord("contract-rejected"));
    assert.deepEqual((await call("GET", "/api/v1/contracts/pending")).json, { pending: [] });
  });

  it("quarantine denies every flow and release lifts it; rotate makes a new key; bad reason and unknown ids named", async () => {
    const q = await call("POST", "/api/v1/integrations/thermo-cloud/quarantine", { reason: "breach reported" });
    assert.deepEqual([q.status, q.json], [200, { integration: "thermo-cloud", reason: "breach reported" }]);
    const d = g.policy.engine.evaluate({ device: "thermostat", topic: "home/thermostat/telemetry", payload: utf8('{"temperature_c":20}') });
    assert.equal(d[0]!.reason, "quarantined");
    assertOwnerToken(await actorRecord("quarantine"));
    assert.ok((await records()).some((x) => x.kind === "incident" && x.reason === "quarantined" && x.detail?.who === "owner-token"));
    assert.equal(((await call("GET", "/api/v1/integrations")).json.integrations as { state: string }[])[0]!.state, "quarantined");
    const rel = await call("POST", "/api/v1/integrations/thermo-cloud/release");
    assert.deepEqual([rel.status, rel.json], [200, { integration: "thermo-cloud" }]);
    assert.equal(g.policy.engine.evaluate({ device: "thermostat", topic: "home/thermostat/telemetry", payload: utf8('{"temperature_c":20}') })[0]!.verdict, "allow");
    assertOwnerToken(await actorRecord("release"));

    assert.equal((await call("POST", "/api/v1/integrations/thermo-cloud/quarantine", { reason: 5 })).json.field, "reason");
    assert.equal((await call("POST", "/api/v1/integrations/thermo-cloud/quarantine", { reason: "x".repeat(121) })).json.field, "reason");
    assert.equal((await call("POST", "/api/v1/integrations/thermo-cloud/quarantine", { reason: "a\nb" })).json.field, "reason");
    assert.equal((await call("POST", "/api/v1/integrations/thermo-cloud/release", { reason: "x" })).json.field, "reason");
    for (const verb of ["quarantine", "release", "rotate"]) {
      const u = await call("POST", `/api/v1/integrations/nope/${verb}`);
      assert.deepEqual([u.status, u.json.field], [404, "integration"], verb);
    }
    assert.equal(g.policy.engine.integrations()[0]!.state, "active", "no bad request quarantined it");

    const rot = await call("POST", "/api/v1/integrations/thermo-cloud/rotate");
    assert.deepEqual([rot.status, rot.json], [200, { integration: "thermo-cloud" }]);
    assertOwnerToken(await actorRecord("key-rotate"));
    assert.ok((await records()).some((x) => x.kind === "admin" && x.reason === "key-rotated" && x.detail?.who === "owner-token"));
  });

  it("DELETE an integration ends it; a second time it is unknown", async () => {
    const r = await call("DELETE", "/api/v1/integrations/thermo-cloud");
    assert.deepEqual([r.status, r.json], [200, { integration: "thermo-cloud" }]);
    assertOwnerToken(await actorRecord("integration-removed"));
    assert.equal((await call("DELETE", "/api/v1/integrations/thermo-cloud")).status, 404);
  });

  it("hold, unhold and seal: records say who; a missing reason is named, a second unhold is a conflict", async () => {
    assert.equal((await call("POST", "/api/v1/audit/hold", {})).json.field, "reason");
    assert.equal((await call("POST", "/api/v1/audit/hold", { reason: ["x"] })).json.field, "reason");
    const h = await call("POST", "/api/v1/audit/hold", { reason: "case 7" });
    assert.equal(h.status, 200);
    assert.equal(h.json.reason, "case 7");
    assert.equal(g.audit.held, "case 7");
    const hr = await actorRecord("legal-hold");
    assertOwnerToken(hr);
    assert.equal(hr.detail?.record, h.json.seq);
    const s = await call("POST", "/api/v1/audit/seal");
    assert.equal(s.status, 200);
    assert.equal(typeof s.json.seq, "number");
    assert.equal(g.audit.log.query({ since: s.json.seq as number, limit: 1 })[0]!.kind, "seal");
    assertOwnerToken(await actorRecord("seal"));
    const u = await call("POST", "/api/v1/audit/unhold");
    assert.equal(u.status, 200);
    assert.equal(g.audit.held, undefined);
    assertOwnerToken(await actorRecord("legal-hold-released"));
    assert.equal((await call("POST", "/api/v1/audit/unhold")).status, 409);
  });

  it("the console calls the same actions: its records name the console", async () => {
    assert.match(await g.shell.execute("quarantine thermo-cloud test"), /quarantined: every flow denied/);
    const r = await actorRecord("quarantine");
    assert.deepEqual({ who: r.detail?.who, role: r.detail?.role, via: r.detail?.via, remote: r.detail?.remote }, { who: "console", role: "owner", via: "console", remote: "console" });
    assert.match(await g.shell.execute("hold case 9"), /legal hold placed \(record \d+\)/);
    assert.equal((await actorRecord("legal-hold")).detail?.who, "console");
    assert.match(await g.shell.execute("unhold"), /^legal hold lifted \(record \d+\)$/);
    assert.equal((await actorRecord("legal-hold-released")).detail?.via, "console");
    assert.equal(await g.shell.execute("unhold"), "no legal hold");
    assert.match(await g.shell.execute("seal"), /^sealed \(record \d+\)$/);
  });

  /** A device's CONNECT; the CONNACK return code (0 accepted, 5 not authorized). */
  async function connect(id: string, password: string): Promise<{ code: number | undefined; socket: FakeSocket }> {
    const socket = new FakeSocket();
    socket.handler = g.broker.accept(socket);
    socket.handler.onData(encode({ cmd: "connect", cleanSession: true, keepalive: 60, clientId: id, username: id, password: utf8(password) }));
    await settle(clock);
    return { code: (socket.received[0] as { returnCode?: number } | undefined)?.returnCode, socket };
  }

  it("GET /today counts what left since the local midnight from the audit log: it survives a reboot and starts again at midnight", async () => {
    const { socket } = await connect("thermostat", "device-password");
    const publish = async (t: number) => {
      socket.handler!.onData(encode({ cmd: "publish", topic: "home/thermostat/telemetry", payload: utf8(JSON.stringify({ temperature_c: t, hvac_mode: "heat" })), qos: 0, retain: false, dup: false }));
      await settle(clock, 2500); // a flow commit within audit.flowCommitMs (2 s)
    };
    await publish(20);
    await publish(21);
    type T = { since: number; utcOffsetMinutes: number; clockSet: boolean; integrations: { integration: string; messages: number; minimized: number; bytes: number }[] };
    const today = async () => (await call("GET", "/api/v1/today")).json as unknown as T;
    const first = await today();
    assert.deepEqual([first.since, first.utcOffsetMinutes, first.clockSet], [Date.UTC(2026, 0, 1), 0, true]);
    assert.deepEqual(first.integrations.map((x) => [x.integration, x.messages]), [["thermo-cloud", 2]], "the flow commits count the messages at once");
    await settle(clock, 6 * 60_000); // the per-minute rows are written (audit.summaryEveryMs, 5 min)
    const rows = (await today()).integrations[0]!;
    assert.deepEqual([rows.messages, rows.minimized], [2, 2], "usage waits for consent: both left minimized");
    assert.ok(rows.bytes > 0);
    assert.equal((await records()).filter((r) => r.kind === "admin" && r.reason === "GET /api/v1/today").length, 2, "polled with the token: recorded (a session's reads are quiet)");
    await boot(contract(pub), false);
    assert.deepEqual((await today()).integrations, [rows], "a reboot reads the same from the log");
    clock.tick(Date.UTC(2026, 0, 2) - clock.now()); // midnight
    await settle(clock);
    const next = await today();
    assert.deepEqual([next.since, next.integrations], [Date.UTC(2026, 0, 2), []], "a new day starts from zero");
  });

  it("today starts at the local midnight of the configured UTC offset", () => {
    assert.equal(localMidnight(Date.UTC(2026, 0, 1, 23, 30), 60), Date.UTC(2026, 0, 1, 23, 0), "UTC+1: 00:30 local");
    assert.equal(localMidnight(Date.UTC(2026, 0, 1, 22, 30), 60), Date.UTC(2025, 11, 31, 23, 0), "UTC+1: 23:30 local, the day before");
    assert.equal(localMidnight(Date.UTC(2026, 0, 1, 3, 0), -300), Date.UTC(2025, 11, 31, 5, 0), "UTC-5: 22:00 the evening before");
    assert.equal(localMidnight(Date.UTC(2026, 0, 1), 0), Date.UTC(2026, 0, 1));
    const bad = parseGatewayConfig(JSON.stringify({ name: "x", utcOffsetMinutes: 900, devices: [] }), []);
    assert.ok(!bad.ok && bad.errors.some((e) => e.path === "/utcOffsetMinutes"));
    const good = parseGatewayConfig(JSON.stringify({ name: "x", utcOffsetMinutes: 60, devices: [] }), []);
    assert.ok(good.ok && good.config.utcOffsetMinutes === 60);
  });

  it("POST /devices adds a device with a password shown once that survives a restart; DELETE removes it and closes its session", async () => {
    const r = await call("POST", "/api/v1/devices", { id: "window-sensor" });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    assert.equal(r.json.id, "window-sensor");
    assert.equal(r.json.username, "window-sensor");
    const password = r.json.password as string;
    assert.match(password, /^[A-Za-z0-9_-]{32}$/, "192 random bits");
    const added = await actorRecord("device-added");
    assertOwnerToken(added);
    assert.equal(added.detail?.device, "window-sensor");
    assert.ok(!JSON.stringify(await records()).includes(password), "the password is in no record");
    assert.equal((await connect("window-sensor", password)).code, 0);
    assert.equal((await connect("window-sensor", "wrong")).code, 5);

    await boot(contract(pub), false);
    const listed = ((await call("GET", "/api/v1/devices")).json.devices as { id: string; source: string }[]).map((d) => [d.id, d.source]);
    assert.deepEqual(listed, [["thermostat", "config"], ["window-sensor", "added"]]);
    const live = await connect("window-sensor", password);
    assert.equal(live.code, 0, "a restart keeps the device");

    const bad: [unknown, number, string][] = [
      [{}, 400, "id"],
      [{ id: "has space" }, 400, "id"],
      [{ id: "x".repeat(65) }, 400, "id"],
      [{ id: "ok", username: 5 }, 400, "username"],
      [{ id: "window-sensor" }, 409, "id"],
      [{ id: "thermostat" }, 409, "id"],
      [{ id: "ok", password: "mine" }, 400, "password"],
    ];
    for (const [body, status, field] of bad) {
      const res = await call("POST", "/api/v1/devices", body);
      assert.deepEqual([res.status, res.json.field], [status, field], JSON.stringify(body));
    }
    assert.deepEqual([(await call("DELETE", "/api/v1/devices/thermostat")).status], [409], "a gateway.json device is removed there");
    const del = await call("DELETE", "/api/v1/devices/window-sensor");
    assert.deepEqual([del.status, del.json], [200, { id: "window-sensor" }]);
    assert.ok(live.socket.closed, "its session is closed");
    const removed = await actorRecord("device-removed");
    assert.deepEqual([removed.detail?.device, removed.detail?.disconnected], ["window-sensor", true]);
    assert.equal((await connect("window-sensor", password)).code, 5);
    assert.equal((await call("DELETE", "/api/v1/devices/window-sensor")).status, 404);
    await boot(contract(pub), false);
    assert.equal((await connect("window-sensor", password)).code, 5, "removal survives a restart");
  });

  it("refuses more added devices than the key store entry holds", async () => {
    for (let i = 0; i < 12; i++) assert.equal((await call("POST", "/api/v1/devices", { id: `d${i}-`.padEnd(64, "x"), username: `u${i}-`.padEnd(64, "y") })).status, 201);
    const r = await call("POST", "/api/v1/devices", { id: "d12" });
    assert.deepEqual([r.status, r.json.field], [409, "id"]);
    assert.equal(((await call("GET", "/api/v1/devices")).json.devices as unknown[]).length, 13);
    assert.ok(board.keys.get("devices")!.length <= 4000, "the longest ids fit one NVS blob");
  });

  it("a device list in the key store that does not parse admits none of the added devices, with an alarm", async () => {
    const r = await call("POST", "/api/v1/devices", { id: "plug" });
    board.keys.set("devices", utf8("{broken"));
    await boot(contract(pub), false);
    assert.equal((await connect("plug", r.json.password as string)).code, 5);
    assert.equal((await connect("thermostat", "device-password")).code, 0, "gateway.json devices still get in");
    assert.ok((await records()).some((x) => x.kind === "alarm" && x.reason === "device-list-unreadable"));
  });

  it("puts changes in plain words", () => {
    assert.equal(changeInWords({ path: "/flows/state/fields/hvac_mode", what: "added", relevant: true }), 'flow "state" fields hvac_mode: added (needs your approval)');
    assert.equal(changeInWords({ path: "/destinations/tc/host", what: "a → b", relevant: true }), 'destination "tc" host: a → b (needs your approval)');
    assert.equal(changeInWords({ path: "/version", what: "1 → 2", relevant: false }), "version: 1 → 2 (applies without approval)");
  });
});
