/** Policy engine unit tests: decisions, minimization, pseudonyms, rate limits, limits, quarantine, data map. */
import assert from "node:assert/strict";
import { bytes, contract, parse, rig, text } from "./policy-helpers.js";
import { MemoryKeys } from "../lib/memory-keys.js";

const msg = (payload: unknown, device = "plug-1", topic = "home/plug-1/telemetry") => ({ device, topic, payload: bytes(payload) });

describe("policy engine: decisions", () => {
  it("denies a message no contract claims, exactly once, integration null", () => {
    const { engine } = rig();
    assert.deepEqual(engine.evaluate(msg({ power: 1 })), [
      { verdict: "deny", integration: null, rule: "default-deny", reason: "no-contract", fieldsDropped: 0, fieldsUndeclared: 0, classes: [] },
    ]);
    assert.equal(engine.load(text(contract()), "acme.json").status, "accepted");
    assert.equal(engine.evaluate(msg({ power: 1 }, "plug-2"))[0]?.reason, "no-contract");
    assert.equal(engine.evaluate(msg({ power: 1 }, "plug-1", "home/plug-1/other"))[0]?.reason, "no-contract");
  });

  it("allows an unchanged payload, re-serialized, with the vendor topic and destination", () => {
    const { engine } = rig();
    engine.load(text(contract("acme", (c) => delete c.flows[0].pseudonymize)), "a");
    const [d] = engine.evaluate(msg('{ "power": 12.5,  "serial": "SN1" }'));
    assert.equal(d?.verdict, "allow");
    assert.equal(d?.reason, "ok");
    assert.equal(d?.rule, "r1");
    assert.equal(d?.vendorTopic, "v/acme/plug-1/r1");
    assert.equal(d?.destination, "main");
    assert.deepEqual(parse(d?.payload), { power: 12.5, serial: "SN1" });
    assert.deepEqual(d?.classes, ["energy", "identifier"]);
  });

  it("minimizes: drops everything not contracted, keeps paths and values, pseudonymizes", () => {
    const { engine } = rig();
    engine.load(
      text(contract("acme", (c) => c.flows[0].fields.push({ path: "/meta/fw~1ver", class: "diagnostic" }) && (c.terms.consent.diagnostic = false))),
      "a",
    );
    const [d] = engine.evaluate(msg({ power: 3, serial: "SN1", gps: { lat: 1, lon: 2 }, meta: { "fw/ver": "1.2", room: "kitchen" } }));
    assert.equal(d?.verdict, "minimize");
    const out = parse(d?.payload);
    assert.deepEqual(Object.keys(out).sort(), ["meta", "power", "serial"]);
    assert.deepEqual(out.meta, { "fw/ver": "1.2" });
    assert.match(out.serial, /^[A-Za-z0-9_-]{22}$/);
    assert.notEqual(out.serial, "SN1");
    assert.equal(d?.fieldsDropped, 3); // gps.lat, gps.lon, meta.room
  });

  it("takes arrays and objects whole at a contracted path, and never looks inside arrays", () => {
    const { engine } = rig();
    engine.load(text(contract("acme", (c) => ((c.flows[0].fields = [{ path: "/readings", class: "energy" }, { path: "/list/0", class: "energy" }]), delete c.flows[0].pseudonymize))), "a");
    const [d] = engine.evaluate(msg({ readings: [{ w: 1 }, { w: 2 }], list: [5, 6] }));
    assert.deepEqual(parse(d?.payload), { readings: [{ w: 1 }, { w: 2 }] });
  });

  it("drops a pseudonymized field that holds an object (fail closed)", () => {
    const { engine } = rig();
    engine.load(text(contract()), "a");
    const [d] = engine.evaluate(msg({ power: 1, serial: { raw: "SN1" } }));
    assert.deepEqual(parse(d?.payload), { power: 1 });
  });

  it("denies non-JSON, nothing-allowed, and oversized payloads; raw flows pass bytes unchanged", () => {
    const { engine } = rig({ limits: { payloadBytes: 64 } });
    engine.load(text(contract()), "a");
    assert.equal(engine.evaluate(msg("not json"))[0]?.reason, "not-json");
    assert.equal(engine.evaluate({ device: "plug-1", topic: "home/plug-1/telemetry", payload: Uint8Array.of(0xff, 0x7b) })[0]?.reason, "not-json");
    assert.equal(engine.evaluate(msg({ other: 1 }))[0]?.reason, "nothing-allowed");
    assert.equal(engine.evaluate(msg({ power: "x".repeat(80) }))[0]?.reason, "payload-too-large");
    engine.load(
      text(contract("cam", (c) => {
        c.flows[0].topics = ["home/plug-1/blob"];
        c.flows[0].fields = [{ path: "", class: "diagnostic" }];
        c.flows[0].raw = true;
        delete c.flows[0].pseudonymize;
        c.terms.consent = { diagnostic: false };
      })),
      "c",
    );
    const payload = Uint8Array.of(0, 1, 2, 255);
    const [d] = engine.evaluate({ device: "plug-1", topic: "home/plug-1/blob", payload });
    assert.equal(d?.verdict, "allow");
    assert.deepEqual(d?.payload, payload);
  });

  it("rate-limits per flow and device: minimum interval and messages per minute", () => {
    const { engine, clock } = rig();
    engine.load(text(contract("acme", (c) => (c.flows[0].rate = { perMinute: 3, minIntervalMs: 1000 }))), "a");
    const v = () => engine.evaluate(msg({ power: 1 }))[0]?.reason;
    assert.equal(v(), "ok");
    assert.equal(v(), "rate-limited");
    clock.tick(1000);
    assert.equal(v(), "ok");
    clock.tick(1000);
    assert.equal(v(), "ok");
    clock.tick(1000);
    assert.equal(v(), "rate-limited"); // 3 tokens spent; 3 s refilled only 0.15 of one
    clock.tick(20000);
    assert.equal(v(), "ok");
  });

  it("one decision per matching integration; a broken text never replaces the approved version in force", () => {
    const { engine, events } = rig();
    engine.load(text(contract("acme")), "acme.json");
    engine.load(text(contract("beta")), "beta.json");
    assert.deepEqual(engine.evaluate(msg({ power: 1 })).map((d) => [d.integration, d.verdict]), [["acme", "allow"], ["beta", "allow"]]);
    const bad = contract("beta", (c) => (c.flows[0].fields[0].class = "locaton"));
    const r = engine.load(text(bad), "beta.json");
    assert.equal(r.status, "rejected");
    assert.deepEqual(r.status === "rejected" && r.errors, [{ path: "/flows/0/fields/0/class", message: 'unknown data class "locaton"' }]);
    assert.deepEqual(engine.evaluate(msg({ power: 1 })).map((d) => [d.integration, d.verdict, d.reason]), [
      ["acme", "allow", "ok"],
      ["beta", "allow", "ok"],
    ]);
    const beta = engine.integrations().find((i) => i.id === "beta");
    assert.equal(beta?.state, "active");
    assert.equal(beta?.broken.length, 1, "the broken text is listed while the approved version stays in force");
    const ev = events.at(-1);
    assert.equal(ev?.kind, "contract");
    assert.equal(ev?.reason, "contract-invalid");
    assert.equal(ev?.integration, "beta");
    assert.equal(ev?.detail?.blocked, false);
    assert.equal(ev?.detail?.inForce, "1");
    assert.equal(engine.load("{ not json", "x.json").status, "rejected");
    assert.equal(engine.load(text(contract("beta")), "beta.json").status, "accepted");
    assert.equal(engine.evaluate(msg({ power: 1 }))[1]?.verdict, "allow");
    assert.equal(engine.integrations().find((i) => i.id === "beta")?.broken.length, 0, "a good text clears the break");
  });

  it("quarantine denies everything for one integration until release, and survives a restart", () => {
    const keys = new MemoryKeys();
    const { engine } = rig({}, keys);
    engine.load(text(contract()), "a");
    engine.quarantine("acme", "vendor breach notified", "owner");
    assert.equal(engine.evaluate(msg({ power: 1 }))[0]?.reason, "quarantined");
    const again = rig({}, keys).engine;
    again.load(text(contract()), "a");
    assert.equal(again.evaluate(msg({ power: 1 }))[0]?.reason, "quarantined");
    again.release("acme", "owner");
    assert.equal(again.evaluate(msg({ power: 1 }))[0]?.verdict, "allow");
  });

  it("resolves device groups, and rejects a contract naming an unknown group", () => {
    const { engine } = rig({ groups: { plugs: ["plug-1", "plug-2"] } });
    const r = engine.load(text(contract("acme", (c) => (c.flows[0].groups = ["plugs", "lamps"]))), "a");
    assert.deepEqual(r.status === "rejected" && r.errors, [{ path: "/flows/0/groups/1", message: 'unknown device group "lamps"' }]);
    engine.load(text(contract("acme", (c) => ((c.flows[0].groups = ["plugs"]), (c.flows[0].topics = ["home/+/telemetry"])))), "a");
    assert.equal(engine.evaluate(msg({ power: 1 }, "plug-2", "home/plug-2/telemetry"))[0]?.verdict, "allow");
  });

  it("expands {device-pseudonym} and {topic} in the vendor topic", () => {
    const { engine } = rig();
    engine.load(text(contract("acme", (c) => (c.destinations[0].topic = "x/{device-pseudonym}/{topic}"))), "a");
    const [d] = engine.evaluate(msg({ power: 1 }));
    assert.match(d?.vendorTopic ?? "", /^x\/[A-Za-z0-9_-]{22}\/home\/plug-1\/telemetry$/);
  });
});

describe("policy engine: limits are rejected at load", () => {
  it("integrations", () => {
    const { engine } = rig({ limits: { integrations: 2 } });
    assert.equal(engine.load(text(contract("a1")), "1").status, "accepted");
    assert.equal(engine.load(text(contract("a2")), "2").status, "accepted");
    const r = engine.load(text(contract("a3")), "3");
    assert.deepEqual(r.status === "rejected" && r.errors, [{ path: "", message: "more than the limit of 2 integrations" }]);
    assert.equal(engine.load(text(contract("a2")), "2").status, "accepted"); // a known one still reloads
  });
  it("rules per contract and fields per rule", () => {
    const { engine } = rig({ limits: { rulesPerContract: 1, fieldsPerRule: 1 } });
    const r = engine.load(text(contract("acme", (c) => c.flows.push({ ...c.flows[0], id: "r2" }))), "a");
    assert.ok(r.status === "rejected");
    assert.deepEqual(r.errors.map((e) => e.path), ["/flows"]);
    const r2 = engine.load(text(contract()), "a");
    assert.deepEqual(r2.status === "rejected" && r2.errors.map((e) => e.message), ["more than the limit of 1 fields per rule"]);
  });
  it("bad options throw at once", () => {
    assert.throws(() => rig({ limits: { payloadBytes: 0 } }), /payloadBytes/);
  });
});

describe("policy engine: data map", () => {
  it("counts per device and integration, marks declared-never-seen and attempted-denied", () => {
    const { engine } = rig();
    engine.load(text(contract("acme", (c) => c.flows[0].devices.push("plug-9"))), "a");
    engine.evaluate(msg({ power: 1 }));
    engine.evaluate(msg({ power: 1, gps: 2 }));
    engine.evaluate(msg("junk"));
    engine.evaluate(msg({ x: 1 }, "cam-1", "home/cam-1/video"));
    const map = engine.dataMap();
    assert.deepEqual(map.devices.map((d) => d.device), ["cam-1", "plug-1", "plug-9"]);
    const plug = map.devices[1]!;
    assert.deepEqual(plug.integrations[0]?.counts, { allowed: 1, minimized: 1, denied: 1, bytesIn: 34, bytesOut: 22 });
    assert.equal(plug.integrations[0]?.attemptedDenied, true);
    assert.deepEqual(plug.classes.map((c) => [c.class, c.integrations[0]?.seen]), [["energy", true], ["identifier", false]]);
    assert.equal(map.devices[2]?.integrations[0]?.declaredNeverSeen, true);
    assert.deepEqual(map.devices[0]?.integrations.map((i) => [i.integration, i.counts.denied]), [[null, 1]]);
    const txt = engine.renderDataMap();
    assert.match(txt, /plug-9[\s\S]*declared but never seen/);
    assert.match(txt, /\(no contract\): allowed 0, minimized 0, denied 1/);
  });
  it("bounds its counters: devices beyond the limit share one bucket", () => {
    const { engine } = rig({ limits: { mapDevices: 2 } });
    for (const d of ["a", "b", "c", "d"]) engine.evaluate(msg({}, d, "t"));
    assert.deepEqual(engine.dataMap().devices.map((d) => d.device), ["*other*", "a", "b"]);
  });
});

describe("policy engine: fails closed", () => {
  it("denies with key-unavailable when the KeyStore fails, and recovers", () => {
    const keys = new MemoryKeys();
    const { engine } = rig({}, keys);
    engine.load(text(contract()), "a");
    const set = keys.set.bind(keys);
    keys.set = () => {
      throw new RangeError("flash full");
    };
    assert.equal(engine.evaluate(msg({ power: 1, serial: "S" }))[0]?.reason, "key-unavailable");
    keys.set = set;
    assert.equal(engine.evaluate(msg({ power: 1, serial: "S" }))[0]?.verdict, "minimize");
  });
  it("survives deeply nested payloads within the size limit", () => {
    const { engine } = rig();
    engine.load(text(contract()), "a");
    const deep = `{"power":1,"x":${"[".repeat(2000)}${"]".repeat(2000)}}`;
    const [d] = engine.evaluate({ device: "plug-1", topic: "home/plug-1/telemetry", payload: bytes(deep) });
    assert.deepEqual(parse(d?.payload), { power: 1 });
    assert.equal(d?.fieldsDropped, 1);
  });
  it("a throwing onEvent sink does not turn a load into an exception", () => {
    const { engine } = rig({
      onEvent: () => {
        throw new Error("sink down");
      },
    });
    assert.equal(engine.load(text(contract()), "a").status, "accepted");
  });
});
