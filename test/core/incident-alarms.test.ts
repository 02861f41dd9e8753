/** The gateway's own alarms (src/incident/alarms.ts): thresholds, windows, once per window, bounded keys. */
import assert from "node:assert/strict";
import type { AuditEvent } from "../../src/audit/types.js";
import { AlarmDetector, MAX_ALARM_KEYS } from "../../src/incident/alarms.js";
import { FakeClock } from "../lib/fake-clock.js";
import fc from "fast-check";
import { countLeaves, countUndeclared, type FieldRule } from "../../src/policy/minimize.js";
import { bytes, contract, rig, text } from "./policy-helpers.js";

describe("incident alarms", () => {
  let clock: FakeClock;
  let raised: AuditEvent[];
  let d: AlarmDetector;
  beforeEach(() => {
    clock = new FakeClock();
    raised = [];
    d = new AlarmDetector({ clock, thresholds: { undeclaredFields: 3, rateLimited: 4, authFailures: 5, windowMs: 10_000 }, raise: (e) => raised.push(e) });
  });

  it("undeclared fields: the threshold within a window raises once; spread over windows never", () => {
    for (let i = 0; i < 2; i++) d.flow("t", "tc", "minimize", "minimized", 1);
    d.flow("t", "tc", "minimize", "minimized", 0);
    d.flow("t", "tc", "allow", "ok", 0);
    assert.equal(raised.length, 0, "a message that lost nothing does not count");
    d.flow("t", "tc", "minimize", "minimized", 2);
    d.flow("t", "tc", "minimize", "minimized", 2);
    assert.deepEqual(raised.map((e) => [e.reason, e.device, e.integration, e.detail?.count]), [["undeclared-fields", "t", "tc", 3]]);
    for (let i = 0; i < 6; i++) {
      clock.tick(6_000);
      d.flow("u", "tc", "minimize", "minimized", 1);
    }
    assert.equal(raised.filter((e) => e.device === "u").length, 0);
  });

  it("rate limits from the broker tally (with its count) and from contracts add up per device", () => {
    d.event({ kind: "flow", decision: "deny", device: "p", reason: "rate-limit", detail: { count: 3 } });
    d.flow("p", "x", "deny", "rate-limited", 0);
    assert.deepEqual(raised.map((e) => [e.reason, e.device, e.detail?.count]), [["rate-limited", "p", 4]]);
  });

  it("auth failures per address (port dropped), MQTT and HTTPS apart", () => {
    for (let i = 0; i < 4; i++) d.event({ kind: "auth", decision: "deny", reason: "not-authorized", detail: { remote: `203.0.113.5:${4000 + i}` } });
    for (let i = 0; i < 4; i++) d.event({ kind: "admin", decision: "deny", reason: "bad-token", detail: { remote: "203.0.113.5" } });
    assert.equal(raised.length, 0);
    d.event({ kind: "admin", decision: "deny", reason: "no-token", detail: { remote: "203.0.113.5" } });
    assert.deepEqual(raised.map((e) => [e.reason, e.detail?.via, e.detail?.remote]), [["auth-failures", "HTTPS", "203.0.113.5"]]);
    d.event({ kind: "auth", decision: "deny", reason: "not-authorized", detail: { op: "subscribe", remote: "203.0.113.5" } });
    assert.equal(raised.length, 1, "a refused subscribe is not a failed login");
  });

  it("a vendor TLS or pin failure raises at once, once per window per integration", () => {
    d.event({ kind: "uplink", decision: "deny", integration: "tc", reason: "tls", detail: { detail: "pin mismatch" } });
    d.event({ kind: "uplink", decision: "deny", integration: "tc", reason: "tls", detail: { detail: "pin mismatch" } });
    d.event({ kind: "uplink", decision: "info", integration: "tc", reason: "network" });
    assert.deepEqual(raised.map((e) => [e.reason, e.integration, e.detail?.what]), [["tls-mismatch", "tc", "pin mismatch"]]);
  });

  it("log near full only under hold, once per crossing", () => {
    d.logFill(95, 100, undefined);
    d.logFill(89, 100, "incident inc-1");
    assert.equal(raised.length, 0);
    d.logFill(90, 100, "incident inc-1");
    d.logFill(95, 100, "incident inc-1");
    assert.equal(raised.length, 1);
    d.logFill(50, 100, "incident inc-1");
    d.logFill(91, 100, "incident inc-1");
    assert.deepEqual(raised.map((e) => e.reason), ["log-near-full", "log-near-full"]);
  });

  it("keeps at most MAX_ALARM_KEYS counters", () => {
    for (let i = 0; i < MAX_ALARM_KEYS * 3; i++) d.event({ kind: "auth", decision: "deny", reason: "not-authorized", detail: { remote: `198.51.100.${i % 250}:1` } });
    // A key pushed out and counted again restarts its window: bounded memory, never a false alarm.
    assert.equal(raised.length, 0);
  });
});

describe("undeclared fields: the policy engine's count (FlowDecision.fieldsUndeclared)", () => {
  const msg = (payload: unknown) => ({ device: "plug-1", topic: "home/plug-1/telemetry", payload: bytes(payload) });

  it("counts only fields no contract of the device declares; a declared field without consent is not counted", () => {
    const { engine } = rig();
    engine.load(text(contract()), "acme.json"); // power and serial declared
    engine.setConsent("acme", "identifier", "opt-out", "owner");
    const [d] = engine.evaluate(msg({ power: 3, serial: "SN1" }));
    assert.equal(d?.verdict, "minimize");
    assert.equal(d?.fieldsDropped, 1, "serial withheld: the household refused identifiers");
    assert.equal(d?.fieldsUndeclared, 0);
    const [e] = engine.evaluate(msg({ power: 3, serial: "SN1", gps: { lat: 1, lon: 2 }, ssid: "x" }));
    assert.equal(e?.fieldsDropped, 4);
    assert.equal(e?.fieldsUndeclared, 3);
  });

  it("a field one integration declares is declared for the device, even when another's flow drops it", () => {
    const { engine } = rig();
    engine.load(text(contract()), "acme.json");
    assert.equal(engine.load(text(contract("other", (c) => { c.flows[0].fields = [{ path: "/gps", class: "location" }]; delete c.flows[0].pseudonymize; c.terms.consent.location = false; })), "other.json").status, "accepted");
    for (const i of ["acme", "other"]) for (const cls of ["energy", "identifier", "location"]) engine.setConsent(i, cls, "opt-in", "owner");
    const ds = engine.evaluate(msg({ power: 3, gps: { lat: 1, lon: 2 }, fw: "1" }));
    assert.deepEqual(ds.map((d) => [d.integration, d.fieldsDropped, d.fieldsUndeclared]), [["acme", 3, 1], ["other", 2, 1]]);
  });

  it("property: countUndeclared is the leaves outside every declared path (= countLeaves when nothing is declared, 0 when the root is)", () => {
    const key = fc.constantFrom("a", "b", "c");
    const doc = fc.dictionary(key, fc.oneof(fc.integer(), fc.dictionary(key, fc.oneof(fc.integer(), fc.constant(null)), { maxKeys: 3 })), { maxKeys: 3 });
    const paths = fc.array(fc.array(key, { minLength: 1, maxLength: 2 }), { maxLength: 4 });
    fc.assert(
      fc.property(doc, paths, (d, ps) => {
        const rules: FieldRule[] = ps.map((tokens) => ({ path: "/" + tokens.join("/"), tokens, class: "energy", pseudonymize: false }));
        // Independent: a declared leaf is one under a path present in the document.
        let declared = 0;
        const covered = new Set<unknown>();
        for (const r of rules) {
          let cur: unknown = d;
          let ok = true;
          for (const t of r.tokens) {
            if (typeof cur === "object" && cur !== null && !Array.isArray(cur) && Object.prototype.hasOwnProperty.call(cur, t)) cur = (cur as Record<string, unknown>)[t];
            else ok = false;
            if (!ok) break;
          }
          if (ok && !covered.has(r.path)) {
            // Paths nested under another declared path count once.
            if (!rules.some((o) => o !== r && o.tokens.length < r.tokens.length && o.tokens.every((t, i) => r.tokens[i] === t) && reaches(d, o.tokens))) declared += countLeaves(cur);
            covered.add(r.path);
          }
        }
        assert.equal(countUndeclared(d, [rules]), countLeaves(d) - declared);
        assert.equal(countUndeclared(d, []), countLeaves(d));
        assert.equal(countUndeclared(d, [[{ path: "", tokens: [], class: "energy", pseudonymize: false }]]), 0);
      }),
    );
  });
});

function reaches(d: unknown, tokens: readonly string[]): boolean {
  let cur = d;
  for (const t of tokens) {
    if (typeof cur === "object" && cur !== null && !Array.isArray(cur) && Object.prototype.hasOwnProperty.call(cur, t)) cur = (cur as Record<string, unknown>)[t];
    else return false;
  }
  return true;
}
