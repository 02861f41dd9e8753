/** The gateway's own alarms (src/incident/alarms.ts): thresholds, windows, once per window, bounded keys. */
import assert from "node:assert/strict";
import type { AuditEvent } from "../../src/audit/types.js";
import { AlarmDetector, MAX_ALARM_KEYS } from "../../src/incident/alarms.js";
import { FakeClock } from "../lib/fake-clock.js";

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
