/** The example home's contracts under the engine, as the demo drives them. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bytes, parse, rig } from "../core/policy-helpers.js";

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../examples/home/contracts");
const load = (name: string) => readFileSync(path.join(dir, name), "utf8");

describe("policy: the example home", () => {
  function home() {
    const r = rig();
    assert.equal(r.engine.load(load("energy-insights.json"), "energy-insights.json").status, "accepted");
    assert.equal(r.engine.load(load("thermo-cloud.json"), "thermo-cloud.json").status, "accepted");
    return r;
  }
  const send = (r: ReturnType<typeof rig>, device: string, topic: string, payload: unknown) => {
    r.clock.tick(2000);
    return r.engine.evaluate({ device, topic, payload: bytes(payload) });
  };

  it("plugs and the meter: energy leaves, location and firmware are dropped, the serial only as a pseudonym after opt-in", () => {
    const r = home();
    const reading = { power_w: 41.5, energy_wh: 1200, serial: "VW-PLUG-0001", location: { room: "kitchen" }, fw: "2.0" };
    const [d] = send(r, "plug-kitchen", "home/plug-kitchen/telemetry", reading);
    assert.equal(d?.integration, "energy-insights");
    assert.equal(d?.verdict, "minimize");
    assert.deepEqual(parse(d?.payload), { power_w: 41.5, energy_wh: 1200 });
    assert.match(d?.vendorTopic ?? "", /^ingest\/energy-insights\/[A-Za-z0-9_-]{22}\/plug-energy$/);
    r.engine.setConsent("energy-insights", "identifier", "opt-in", "owner");
    const out = parse(send(r, "plug-kitchen", "home/plug-kitchen/telemetry", reading)[0]?.payload);
    assert.deepEqual(Object.keys(out), ["power_w", "energy_wh", "serial"]);
    assert.notEqual(out.serial, "VW-PLUG-0001");
    const [m] = send(r, "meter-main", "home/meter-main/telemetry", { power_w: 900, import_wh: 5, export_wh: 0, serial: "M1", gps: [52, 4] });
    assert.equal(m?.rule, "meter-energy");
    assert.deepEqual(Object.keys(parse(m?.payload)), ["power_w", "import_wh", "export_wh", "serial"]);
  });

  it("the over-collecting thermostat: occupancy and GPS minimized away, camera snapshot denied", () => {
    const r = home();
    r.engine.setConsent("thermo-cloud", "usage", "opt-in", "owner");
    const [d] = send(r, "thermostat-hall", "home/thermostat-hall/telemetry", {
      temperature_c: 20.5,
      setpoint_c: 21,
      hvac: { mode: "heat", runtime_s: 30 },
      occupancy: true,
      gps: { lat: 52.37, lon: 4.89 },
    });
    assert.equal(d?.integration, "thermo-cloud");
    assert.deepEqual(parse(d?.payload), { temperature_c: 20.5, setpoint_c: 21, hvac: { mode: "heat" } });
    assert.equal(d?.fieldsDropped, 4);
    const snap = send(r, "thermostat-hall", "home/thermostat-hall/camera-snapshot", "\xff\xd8jpeg");
    assert.deepEqual(snap.map((x) => [x.verdict, x.integration, x.reason]), [["deny", null, "no-contract"]]);
    const map = r.engine.renderDataMap();
    assert.match(map, /thermostat-hall[\s\S]*\(no contract\): allowed 0, minimized 0, denied 1/);
  });
});
