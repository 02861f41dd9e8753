/** Retained messages on flash: replay across remounts, encrypted at rest, compaction, power cuts. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { MemoryKeys } from "../lib/memory-keys.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { FaultyFlash } from "../lib/faulty-flash.js";
import { FlashRing } from "../../src/flash/ring.js";
import { NorFlash, RamStore } from "../../src/flash/nor.js";
import type { Flash, KeyStore } from "../../src/ports.js";
import { RETAINED_RING_TAG, RetainedFlash } from "../../src/broker-local/retained-flash.js";
import { RetainedStore } from "../../src/mqtt/retained.js";

const enc = new TextEncoder();
const random = seededRandom("retained");
const atRest = (keys: KeyStore) => ({ crypto: nobleCrypto(random), keys, random });
const mount = (flash: Flash, keys: KeyStore) => new RetainedFlash(FlashRing.mount({ flash, tag: RETAINED_RING_TAG }), atRest(keys));
const view = (r: RetainedFlash) => r.messages().map((m) => [m.topic, new TextDecoder().decode(m.payload), m.qos]).sort();

function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let k = 0; k < needle.length; k++) if (hay[i + k] !== needle[k]) continue outer;
    return true;
  }
  return false;
}

describe("mqtt retained on flash", () => {
  it("comes back after a remount: stored, replaced, cleared; nothing in clear on flash", async () => {
    const store = new RamStore(4 * 4096);
    const flash = new NorFlash({ size: 4 * 4096, store });
    const keys = new MemoryKeys();
    const r = mount(flash, keys);
    await r.change("stored", { topic: "stat/plug/POWER", payload: enc.encode("secret-ON"), qos: 1 });
    await r.change("stored", { topic: "stat/plug/RESULT", payload: enc.encode("x"), qos: 0 });
    await r.change("replaced", { topic: "stat/plug/POWER", payload: enc.encode("secret-OFF"), qos: 0 });
    await r.change("cleared", { topic: "stat/plug/RESULT", payload: new Uint8Array(0), qos: 0 });
    const again = mount(flash, keys);
    assert.deepEqual(view(again), [["stat/plug/POWER", "secret-OFF", 0]]);
    assert.equal(again.lost, 0);
    const image = store.bytes;
    assert.ok(!contains(image, enc.encode("secret")), "payloads encrypted at rest");
    assert.ok(!contains(image, enc.encode("stat/plug")), "topics encrypted at rest");
  });

  it("keeps an MQTT 5 publisher's properties across a remount and a compaction (SET5 records)", async () => {
    const flash = new NorFlash({ size: 4 * 4096, store: new RamStore(4 * 4096) });
    const keys = new MemoryKeys();
    const r = mount(flash, keys);
    const properties = { payloadFormatIndicator: 1, contentType: "application/json", responseTopic: "cmnd/plug/POWER", correlationData: new Uint8Array([1, 2, 3]), userProperties: [["unit", "W"], ["unit", "kW"]] as [string, string][] };
    await r.change("stored", { topic: "tele/plug/SENSOR", payload: enc.encode('{"w":5}'), qos: 1, properties });
    await r.change("stored", { topic: "tele/plug/LWT", payload: enc.encode("Online"), qos: 0 });
    const back = (x: RetainedFlash) => x.messages().map((m) => [m.topic, m.properties]);
    assert.deepEqual(back(mount(flash, keys)), [["tele/plug/SENSOR", properties], ["tele/plug/LWT", undefined]]);
    // Fill the area until the oldest sector is compacted: the message is copied forward with its properties.
    for (let i = 0; i < 400; i++) await r.change("replaced", { topic: "tele/plug/LWT", payload: enc.encode(`Online ${i}`.padEnd(200, ".")), qos: 0 });
    const again = mount(flash, keys);
    assert.equal(again.lost, 0);
    assert.deepEqual(back(again).find(([t]) => t === "tele/plug/SENSOR"), ["tele/plug/SENSOR", properties]);
  });

  it("another key store (another device) reads nothing back", async () => {
    const flash = new NorFlash({ size: 4 * 4096, store: new RamStore(4 * 4096) });
    const r = mount(flash, new MemoryKeys());
    await r.change("stored", { topic: "a", payload: enc.encode("1"), qos: 0 });
    const other = mount(flash, new MemoryKeys());
    assert.deepEqual(view(other), []);
    assert.equal(other.lost, 1);
  });

  it("compacts: thousands of changes on a 4-sector area keep the live set", async () => {
    const flash = new NorFlash({ size: 4 * 4096, store: new RamStore(4 * 4096) });
    const keys = new MemoryKeys();
    const r = mount(flash, keys);
    const model = new RetainedStore(20, 3000);
    for (let i = 0; i < 3000; i++) {
      const topic = `t/${i % 17}`;
      const payload = i % 5 === 4 ? new Uint8Array(0) : enc.encode(`v${i}`.padEnd(40 + (i % 60), "."));
      const o = model.set(topic, payload, 1);
      if (o === "stored" || o === "replaced" || o === "cleared") await r.change(o, { topic, payload, qos: 1 });
    }
    const expected = model.all().map((m) => [m.topic, new TextDecoder().decode(m.payload), m.qos]).sort();
    assert.deepEqual(view(r), expected);
    assert.deepEqual(view(mount(flash, keys)), expected);
  });

  it("a power cut loses at most the change being written (property over cut points)", async () => {
    let cuts = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 400 }), fc.constantFrom("bits" as const, "half" as const), async (cutAt, tear) => {
        const inner = new NorFlash({ size: 4 * 4096, store: new RamStore(4 * 4096) });
        const keys = new MemoryKeys();
        const flash = new FaultyFlash(inner, { cutAt, tear });
        let r: RetainedFlash;
        try {
          r = mount(flash, keys);
        } catch {
          return; // cut before the area was even mounted
        }
        const model = new RetainedStore(20, 3000);
        const states: string[][][] = [snapshot(model)];
        for (let i = 0; i < 300; i++) {
          const topic = `t/${i % 7}`;
          const payload = i % 4 === 3 ? new Uint8Array(0) : enc.encode(`v${i}`.padEnd(100, "."));
          const properties = i % 2 === 0 ? { contentType: `c${i}`, userProperties: [["k", `${i}`]] as [string, string][] } : undefined;
          const o = model.set(topic, payload, 0, properties);
          if (o !== "stored" && o !== "replaced" && o !== "cleared") continue;
          try {
            await r.change(o, properties === undefined ? { topic, payload, qos: 0 } : { topic, payload, qos: 0, properties });
          } catch {
            states.push(snapshot(model)); // the change being written may or may not have landed
            cuts++;
            break;
          }
          states.splice(0, states.length, snapshot(model));
        }
        const back = mount(inner, keys).messages().map((m) => [m.topic, new TextDecoder().decode(m.payload), JSON.stringify(m.properties ?? null)]).sort();
        assert.ok(states.some((s) => JSON.stringify(s) === JSON.stringify(back)), `cut at ${cutAt}: got ${JSON.stringify(back)}`);
      }),
      { numRuns: 60 },
    );
    assert.ok(cuts >= 30, `most runs cut mid-way (${cuts} of 60)`);
  });
});

function snapshot(m: RetainedStore): string[][] {
  return m.all().map((x) => [x.topic, new TextDecoder().decode(x.payload), JSON.stringify(x.properties ?? null)]).sort();
}
