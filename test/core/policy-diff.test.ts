/** Change review classification: which contract changes are privacy-relevant (pending) and which apply at once. */
import assert from "node:assert/strict";
import { diffContracts } from "../../src/policy/diff.js";
import { contract, type Json } from "./policy-helpers.js";

const relevantPaths = (patch: (c: Json) => void) =>
  diffContracts(contract(), contract("acme", patch)).map((c) => `${c.relevant ? "!" : ""}${c.path}`);

describe("policy change review: diff", () => {
  const cases: [string, (c: Json) => void, string[]][] = [
    ["new field", (c) => c.flows[0].fields.push({ path: "/gps", class: "location" }), ["!/flows/r1/fields/gps"]],
    ["field class changed", (c) => (c.flows[0].fields[0].class = "usage"), ["!/flows/r1/fields/power"]],
    ["field removed", (c) => c.flows[0].fields.shift(), ["/flows/r1/fields/power"]],
    ["new device", (c) => c.flows[0].devices.push("plug-2"), ["!/flows/r1/devices"]],
    ["device removed", (c) => (c.flows[0].devices = ["plug-2"]), ["!/flows/r1/devices", "/flows/r1/devices"]],
    ["new topic", (c) => c.flows[0].topics.push("home/#"), ["!/flows/r1/topics"]],
    ["new flow", (c) => c.flows.push({ ...c.flows[0], id: "r2" }), ["!/flows/r2"]],
    ["flow removed", (c) => c.flows.push({ ...c.flows[0], id: "r2" }) && c.flows.shift(), ["/flows/r1", "!/flows/r2"]],
    ["new destination host", (c) => (c.destinations[0].host = "evil.example"), ["!/destinations/main/host"]],
    ["vendor key changed", (c) => (c.destinations[0].keyId = "k2"), ["!/destinations/main/keyId"]],
    ["encryption dropped", (c) => ((c.destinations[0].encryption = "none"), delete c.destinations[0].publicKey, delete c.destinations[0].keyId), ["!/destinations/main/publicKey", "!/destinations/main/keyId", "!/destinations/main/encryption"]],
    ["pin added", (c) => (c.destinations[0].pins = ["IzcOwjpmD7oIW35G0/fydyYGAjeNgyDeeq80qS6whPk="]), ["/destinations/main/pins"]],
    ["no longer pseudonymized", (c) => delete c.flows[0].pseudonymize, ["!/flows/r1/pseudonymize/serial"]],
    ["rate tightened", (c) => (c.flows[0].rate = { perMinute: 10, minIntervalMs: 100 }), ["/flows/r1/rate/perMinute", "/flows/r1/rate/minIntervalMs"]],
    ["longer retention", (c) => (c.terms.retentionDays = 31), ["!/terms/retentionDays"]],
    ["shorter retention", (c) => (c.terms.retentionDays = 1), ["/terms/retentionDays"]],
    ["weaker breach terms", (c) => (c.terms.breachNotificationHours = 96), ["!/terms/breachNotificationHours"]],
    ["stronger breach terms", (c) => (c.terms.breachNotificationHours = 24), ["/terms/breachNotificationHours"]],
    ["weaker queue", (c) => (c.terms.queue = { maxBytes: 8192, overflow: "reject-new", ttlSeconds: 601 }), ["!/terms/queue/maxBytes", "!/terms/queue/ttlSeconds", "!/terms/queue/overflow"]],
    ["consent no longer required", (c) => ((c.terms.consent.energy = true), 0), ["/terms/consent/energy"]],
    ["purpose", (c) => (c.purpose = "Something else entirely."), ["!/purpose"]],
    ["identity and SLA", (c) => ((c.vendor = "Acme Inc"), (c.version = "2"), (c.terms.sla.uptimePercent = 90)), ["/version", "/vendor", "/terms/sla/uptimePercent"]],
  ];
  for (const [name, patch, want] of cases) it(name, () => assert.deepEqual(relevantPaths(patch), want));

  it("a looser rate limit is relevant", () => {
    const a = contract("acme", (c) => (c.flows[0].rate = { perMinute: 10, minIntervalMs: 100 }));
    assert.deepEqual(diffContracts(a, contract()).map((c) => [c.path, c.relevant]), [
      ["/flows/r1/rate/perMinute", true],
      ["/flows/r1/rate/minIntervalMs", true],
    ]);
  });

  it("dropping a consent requirement is relevant", () => {
    const a = contract("acme", (c) => (c.terms.consent.energy = true));
    assert.deepEqual(diffContracts(a, contract()).map((c) => [c.path, c.relevant]), [["/terms/consent/energy", true]]);
  });
});
