/** The admin API's route table: patterns, methods, roles, JSON bodies. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { AdminApi, type AdminRequest } from "../../src/admin/api.js";
import { jsonBody, matchRoute, type Route } from "../../src/admin/routes.js";
import { FlashAuditLog } from "../../src/audit/log.js";
import type { AuditEvent } from "../../src/audit/types.js";
import { ramFlash } from "../../src/flash/nor.js";
import { utf8 } from "../../src/util/bytes.js";
import { FakeClock } from "../lib/fake-clock.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";

const TOKEN = "pct_routes-test-token-not-a-secret";
const noop = () => ({ status: 204, contentType: "application/json", body: [] });

describe("admin routes", () => {
  const routes: Route[] = [
    { method: "GET", path: "/api/v1/things", roles: ["owner"], summary: "list", handle: noop },
    { method: "POST", path: "/api/v1/things/{id}/notes", roles: ["owner"], summary: "note", handle: noop },
    { method: "GET", path: "/api/v1/things/{id}", roles: ["auditor"], summary: "one", handle: noop },
  ];

  it("matches literal and {name} segments, decoded, and tells a wrong method from a missing path", () => {
    const m = matchRoute(routes, "POST", "/api/v1/things/a%2Fb/notes");
    assert.equal(m.kind, "found");
    assert.deepEqual(m.kind === "found" && { ...m.params }, { id: "a/b" });
    assert.deepEqual(matchRoute(routes, "DELETE", "/api/v1/things/x"), { kind: "method", allowed: ["GET"] });
    assert.equal(matchRoute(routes, "GET", "/api/v1/things//notes").kind, "none");
    assert.equal(matchRoute(routes, "GET", "/api/v1/things/x/y").kind, "none");
    assert.equal(matchRoute(routes, "GET", "/api/v1/things/%E0%A4%A").kind, "none"); // malformed escape
    const m2 = matchRoute(routes, "GET", "/api/v1/things/__proto__");
    assert.equal(m2.kind === "found" && m2.params["id"], "__proto__");
  });

  it("finds a route for every path it generates and for no other (property)", () => {
    const seg = fc.stringMatching(/^[a-z0-9]{1,6}$/);
    fc.assert(fc.property(seg, seg, (id, other) => {
      assert.equal(matchRoute(routes, "GET", `/api/v1/things/${id}`).kind, "found");
      assert.equal(matchRoute(routes, "GET", `/api/v1/${other}x/${id}`).kind, "none");
    }));
  });

  it("reads a JSON object body, and names what is wrong with any other", () => {
    const req = (body?: string, type?: string): AdminRequest => ({ method: "POST", target: "/", remote: "x", ...(body === undefined ? {} : { body }), ...(type ? { headers: { "content-type": type } } : {}) });
    assert.deepEqual(jsonBody(req()), { ok: true, value: {} });
    assert.deepEqual(jsonBody(req('{"a":1}', "application/json; charset=utf-8")), { ok: true, value: { a: 1 } });
    for (const [b, t, status] of [["{", undefined, 400], ["[1]", undefined, 400], ["null", undefined, 400], ['{"a":1}', "text/plain", 415]] as const) {
      const r = jsonBody(req(b, t));
      assert.equal(r.ok, false);
      assert.equal(!r.ok && r.response.status, status);
    }
  });

  it("AdminApi serves host routes after authentication, 403s a role the route does not list (recorded), 405s with Allow", async () => {
    const clock = new FakeClock();
    const random = seededRandom("routes");
    const crypto = nobleCrypto(random);
    const log = await FlashAuditLog.open({ flash: ramFlash(32 * 4096), crypto, random, keys: new MemoryKeys(), clock, timers: clock });
    const events: AuditEvent[] = [];
    const calls: string[] = [];
    const api = new AdminApi({
      crypto, clock, audit: log, tokenHash: crypto.sha256(utf8(TOKEN)), onEvent: (e) => void events.push(e), status: () => ({}),
      routes: [
        { method: "POST", path: "/api/v1/things/{id}/notes", roles: ["owner"], summary: "note", handle: (c) => (calls.push(`${c.params["id"]} ${c.principal.account} ${c.req.body}`), noop()) },
        { method: "GET", path: "/api/v1/things/{id}", roles: ["auditor"], summary: "one", handle: noop },
      ],
    });
    const call = (method: string, target: string, token: string | undefined, body?: string) =>
      api.handle({ method, target, remote: "192.0.2.9:1234", ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { body } : {}) });
    assert.equal((await call("POST", "/api/v1/things/t1/notes", undefined, "{}")).status, 401);
    assert.deepEqual(calls, []);
    assert.equal((await call("POST", "/api/v1/things/t1/notes", TOKEN, '{"x":1}')).status, 204);
    assert.deepEqual(calls, ['t1 owner-token {"x":1}']);
    assert.equal((await call("GET", "/api/v1/things/t1", TOKEN)).status, 403); // the owner token is not an auditor here
    assert.ok(events.some((e) => e.reason === "forbidden" && e.detail?.["role"] === "owner"));
    const r405 = await call("PUT", "/api/v1/status", TOKEN);
    assert.equal(r405.status, 405);
    assert.equal(r405.headers?.["Allow"], "GET");
    assert.equal((await call("GET", "/api/v1/status", TOKEN)).status, 200);
    assert.deepEqual(api.routes.map((r) => `${r.method} ${r.path}`).slice(-2), ["POST /api/v1/things/{id}/notes", "GET /api/v1/things/{id}"]);
    await log.close();
  });
});
