/** Consent ledger, pseudonym keys and change review: unit tests with their audit events. */
import assert from "node:assert/strict";
import { bytes, contract, parse, rig, text } from "./policy-helpers.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { toBase64 as base64Encode, utf8 as utf8Encode } from "../../src/util/bytes.js";

const msg = (payload: unknown) => ({ device: "plug-1", topic: "home/plug-1/telemetry", payload: bytes(payload) });
const needsConsent = (id = "acme") => contract(id, (c) => (c.terms.consent = { energy: true, identifier: true }));

describe("policy engine: consent", () => {
  it("denies classes that need consent until opt-in; withdrawal takes effect on the very next message", () => {
    const { engine, events } = rig();
    engine.load(text(needsConsent()), "a");
    assert.equal(engine.evaluate(msg({ power: 1, serial: "S" }))[0]?.reason, "consent-missing");
    engine.setConsent("acme", "energy", "opt-in", "owner");
    const [d] = engine.evaluate(msg({ power: 1, serial: "S" }));
    assert.equal(d?.verdict, "minimize");
    assert.deepEqual(parse(d?.payload), { power: 1 });
    assert.deepEqual(d?.classes, ["energy"]);
    engine.setConsent("acme", "energy", "withdrawn", "owner");
    assert.equal(engine.evaluate(msg({ power: 1 }))[0]?.reason, "consent-withdrawn");
    engine.setConsent("acme", "energy", "opt-out", "owner");
    assert.equal(engine.evaluate(msg({ power: 1 }))[0]?.reason, "consent-refused");
    const consent = events.filter((e) => e.kind === "consent");
    assert.deepEqual(consent.map((e) => [e.reason, e.detail?.class, e.detail?.who, e.detail?.previous]), [
      ["opt-in", "energy", "owner", null],
      ["withdrawn", "energy", "owner", "opt-in"],
      ["opt-out", "energy", "owner", "withdrawn"],
    ]);
  });

  it("an opt-out wins even for a class that needs no consent", () => {
    const { engine } = rig();
    engine.load(text(contract()), "a");
    engine.setConsent("acme", "identifier", "opt-out", "owner");
    assert.deepEqual(parse(engine.evaluate(msg({ power: 1, serial: "S" }))[0]?.payload), { power: 1 });
  });

  it("persists the ledger with time and who in the KeyStore (names fit the port's rules)", () => {
    const keys = new MemoryKeys();
    const a = rig({}, keys);
    a.engine.setConsent("acme", "energy", "opt-in", "owner");
    for (const name of keys.map.keys()) assert.match(name, /^[a-z0-9._-]{1,15}$/);
    const b = rig({}, keys);
    b.engine.load(text(needsConsent()), "a");
    assert.deepEqual(b.engine.consent("acme").energy, { state: "opt-in", time: a.clock.now(), who: "owner" });
    assert.equal(b.engine.evaluate(msg({ power: 1 }))[0]?.verdict, "allow");
  });

  it("rejects bad consent calls with an exception (programmer error)", () => {
    const { engine } = rig();
    assert.throws(() => engine.setConsent("acme", "locaton", "opt-in", "owner"), /unknown data class/);
    assert.throws(() => engine.setConsent("acme", "energy", "maybe" as never, "owner"), /unknown consent state/);
    assert.throws(() => engine.setConsent("acme", "energy", "opt-in", ""), /who/);
  });
});

describe("policy engine: pseudonyms", () => {
  const serialOut = (engine: ReturnType<typeof rig>["engine"], serial: string) => parse(engine.evaluate(msg({ serial }))[0]?.payload).serial as string;

  it("are stable per integration, differ across integrations, change on rotation (audited)", () => {
    const { engine, events } = rig();
    engine.load(text(contract("acme")), "a");
    engine.load(text(contract("beta")), "b");
    const [a1, b1] = engine.evaluate(msg({ serial: "SN-42" })).map((d) => parse(d.payload).serial);
    const [a2, b2] = engine.evaluate(msg({ serial: "SN-42" })).map((d) => parse(d.payload).serial);
    assert.equal(a1, a2);
    assert.equal(b1, b2);
    assert.notEqual(a1, b1);
    engine.rotate("acme", "owner");
    assert.notEqual(serialOut(engine, "SN-42"), a1);
    const ev = events.at(-1);
    assert.equal(ev?.kind, "admin");
    assert.equal(ev?.reason, "key-rotated");
    assert.match(String(ev?.detail?.key), /^[0-9a-f]{8}$/);
  });

  it("match HMAC-SHA256(key, JSON text) truncated to 16 bytes, base64url", () => {
    const keys = new MemoryKeys();
    const { engine } = rig({}, keys);
    engine.load(text(contract()), "a");
    const p = serialOut(engine, "SN-1");
    const [key] = Array.from(keys.map.entries()).filter(([n]) => n.startsWith("ps."));
    assert.ok(key);
    // Recompute with the test Crypto port: the pseudonym of "SN-1" is HMAC over its JSON text "\"SN-1\"".
    const want = recompute(key[1], '"SN-1"');
    assert.equal(p, want);
  });

  it("the key is destroyed on withdrawal and on removal; pseudonyms after it are unlinkable", () => {
    const keys = new MemoryKeys();
    const { engine, events } = rig({}, keys);
    engine.load(text(contract()), "a");
    const before = serialOut(engine, "SN-1");
    engine.setConsent("acme", "identifier", "withdrawn", "owner");
    assert.equal([...keys.map.keys()].filter((n) => n.startsWith("ps.")).length, 0);
    assert.equal(events.at(-1)?.reason, "key-destroyed");
    engine.setConsent("acme", "identifier", "opt-in", "owner");
    assert.notEqual(serialOut(engine, "SN-1"), before);
    assert.equal(engine.remove("acme", "owner"), true);
    assert.equal([...keys.map.keys()].length, 0, "key, ledger and approval are all gone");
    assert.equal(engine.evaluate(msg({ power: 1 }))[0]?.reason, "no-contract");
  });
});

describe("policy engine: change review", () => {
  it("keeps enforcing the old version while a privacy-relevant change is pending; approval switches", () => {
    const { engine, events } = rig();
    engine.load(text(contract()), "a");
    const v2 = contract("acme", (c) => {
      c.version = "2";
      c.flows[0].fields.push({ path: "/gps", class: "location" });
      c.terms.consent.location = false;
      c.terms.retentionDays = 365;
    });
    const r = engine.load(text(v2), "a");
    assert.equal(r.status, "pending-review");
    assert.deepEqual(r.status === "pending-review" && r.changes.filter((c) => c.relevant).map((c) => c.path).sort(), [
      "/flows/r1/fields/gps",
      "/terms/consent/location",
      "/terms/retentionDays",
    ]);
    assert.equal(events.at(-1)?.reason, "pending-review");
    assert.match(String(events.at(-1)?.detail?.changes), /retentionDays 30 → 365/);
    assert.deepEqual(parse(engine.evaluate(msg({ power: 1, gps: 5 }))[0]?.payload), { power: 1 });
    assert.equal(engine.integrations()[0]?.state, "pending-review");
    assert.equal(engine.approve("acme", "owner"), true);
    assert.equal(events.at(-1)?.reason, "approved");
    assert.equal(events.at(-1)?.detail?.who, "owner");
    assert.deepEqual(parse(engine.evaluate(msg({ power: 1, gps: 5 }))[0]?.payload), { power: 1, gps: 5 });
    assert.equal(engine.approve("acme", "owner"), false);
  });

  it("applies other changes at once, with a contract event carrying the diff", () => {
    const { engine, events } = rig();
    engine.load(text(contract()), "a");
    const r = engine.load(text(contract("acme", (c) => ((c.version = "1.1"), (c.terms.retentionDays = 7), c.flows[0].fields.pop(), (c.flows[0].pseudonymize = [])))), "a");
    assert.equal(r.status === "rejected" ? "rejected" : "ok", "rejected", "an empty pseudonymize list is invalid");
    const r2 = engine.load(text(contract("acme", (c) => ((c.version = "1.1"), (c.terms.retentionDays = 7), c.flows[0].fields.pop(), delete c.flows[0].pseudonymize))), "a");
    assert.equal(r2.status, "accepted");
    assert.equal(events.at(-1)?.reason, "updated");
    assert.match(String(events.at(-1)?.detail?.changes), /retentionDays 30 → 7/);
    assert.deepEqual(parse(engine.evaluate(msg({ power: 1, serial: "S" }))[0]?.payload), { power: 1 });
  });

  it("rejecting a pending change keeps the old version", () => {
    const { engine } = rig();
    engine.load(text(contract()), "a");
    engine.load(text(contract("acme", (c) => c.flows[0].devices.push("plug-2"))), "a");
    assert.equal(engine.reject("acme", "owner"), true);
    assert.equal(engine.integrations()[0]?.state, "active");
    assert.equal(engine.evaluate({ ...msg({ power: 1 }), device: "plug-2" })[0]?.reason, "no-contract");
  });

  it("after a restart, a changed text without its approved baseline is denied until approved", () => {
    const keys = new MemoryKeys();
    rig({}, keys).engine.load(text(contract()), "a");
    const v2 = text(contract("acme", (c) => (c.terms.retentionDays = 90)));
    const blind = rig({}, keys).engine;
    assert.equal(blind.load(v2, "a").status, "pending-review");
    assert.equal(blind.evaluate(msg({ power: 1 }))[0]?.reason, "pending-review");
    const informed = rig({}, keys).engine;
    const r = informed.load(v2, "a", text(contract()));
    assert.deepEqual(r.status === "pending-review" && r.changes.map((c) => c.path), ["/terms/retentionDays"]);
    assert.equal(informed.evaluate(msg({ power: 1 }))[0]?.verdict, "allow");
    assert.equal(blind.approve("acme", "owner"), true);
    assert.equal(blind.evaluate(msg({ power: 1 }))[0]?.verdict, "allow");
    assert.equal(rig({}, keys).engine.load(v2, "a").status, "accepted");
  });

  it("an unreviewed integration stays denied whatever other text is loaded, until the approved text returns", () => {
    const keys = new MemoryKeys();
    rig({}, keys).engine.load(text(contract()), "a");
    const { engine } = rig({}, keys);
    assert.equal(engine.load(text(contract("acme", (c) => (c.vendor = "B"))), "a").status, "pending-review");
    assert.equal(engine.load(text(contract("acme", (c) => (c.vendor = "C"))), "a").status, "pending-review");
    assert.equal(engine.evaluate(msg({ power: 1 }))[0]?.reason, "pending-review");
    assert.equal(engine.reject("acme", "owner"), true);
    assert.equal(engine.evaluate(msg({ power: 1 }))[0]?.reason, "pending-review");
    assert.equal(engine.load(text(contract()), "a").status, "accepted");
    assert.equal(engine.evaluate(msg({ power: 1 }))[0]?.verdict, "allow");
  });
});

function recompute(key: Uint8Array, jsonText: string): string {
  return base64Encode(nobleCrypto(seededRandom()).hmacSha256(key, utf8Encode(jsonText)).subarray(0, 16), true);
}
