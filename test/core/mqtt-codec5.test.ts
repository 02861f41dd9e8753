/** MQTT 5 property codec and v5 packets: fast-check round trips, malformed (the mqtt-packet v5 cross-check is in test/node/mqtt5-clients.test.ts: its bundle cannot run in XS), property lists. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { Decoder, encode, type Packet } from "../../src/mqtt/codec.js";

function decode5(bytes: Uint8Array): { packets: Packet[]; error?: string } {
  const packets: Packet[] = [];
  const d = new Decoder({ onPacket: (p) => packets.push(p), version: 5 });
  const e = d.push(bytes);
  return e ? { packets, error: e.code } : { packets };
}

const str = fc.string({ maxLength: 12 }).filter((s) => !s.includes("\u0000"));
const props = fc.record(
  {
    payloadFormatIndicator: fc.constantFrom(0, 1),
    messageExpiryInterval: fc.nat({ max: 0xffffffff }),
    contentType: str,
    responseTopic: fc.constantFrom("r/1", "reply"),
    correlationData: fc.uint8Array({ maxLength: 8 }),
    userProperties: fc.array(fc.tuple(str, str), { minLength: 1, maxLength: 3 }),
    topicAlias: fc.integer({ min: 1, max: 0xffff }),
  },
  { requiredKeys: [] },
);

describe("mqtt 5 codec", () => {
  it("round-trips PUBLISH properties (fast-check)", () => {
    fc.assert(
      fc.property(props, fc.uint8Array({ maxLength: 20 }), (properties, payload) => {
        const p: Packet = { cmd: "publish", topic: "a/b", payload, qos: 1, retain: false, dup: false, packetId: 7, ...(Object.keys(properties).length ? { properties: { ...properties } } : {}) };
        const { packets, error } = decode5(encode(p, 5));
        assert.equal(error, undefined);
        assert.deepEqual(packets, [p]);
      }),
    );
  });

  it("refuses duplicated, misplaced and unknown properties (0x82) and malformed lists (0x81)", () => {
    // PUBLISH "t" QoS 0 with properties …
    const pub = (...prop: number[]) => new Uint8Array([0x30, 3 + 1 + prop.length, 0x00, 0x01, 0x74, prop.length, ...prop]);
    assert.equal(decode5(pub(0x01, 0x01, 0x01, 0x00)).error, "bad-property"); // twice
    assert.equal(decode5(pub(0x11, 0, 0, 0, 1)).error, "bad-property"); // session expiry in PUBLISH
    assert.equal(decode5(pub(0x7f, 0)).error, "bad-property"); // unknown id
    assert.equal(decode5(pub(0x01, 0x02)).error, "bad-property"); // format indicator 2
    assert.equal(decode5(pub(0x02, 0, 0)).error, "bad-length"); // u32 cut short
    assert.equal(decode5(pub(0x26, 0, 1, 0x61)).error, "bad-length"); // user property without value
    assert.equal(decode5(pub(0x03, 0, 1, 0xff)).error, "bad-utf8");
    // Repeated user properties are allowed and kept in order.
    const ok = decode5(pub(0x26, 0, 1, 0x61, 0, 1, 0x62, 0x26, 0, 1, 0x61, 0, 1, 0x63));
    assert.deepEqual(ok.packets[0]?.cmd === "publish" && ok.packets[0].properties, { userProperties: [["a", "b"], ["a", "c"]] });
  });

  it("reads short v5 acks and DISCONNECT, and refuses AUTH below level 5", () => {
    assert.deepEqual(decode5(new Uint8Array([0x40, 0x03, 0, 1, 0x10])).packets, [{ cmd: "puback", packetId: 1, reasonCode: 0x10 }]);
    assert.deepEqual(decode5(new Uint8Array([0xe0, 0x01, 0x04])).packets, [{ cmd: "disconnect", reasonCode: 4 }]);
    const d = new Decoder({ onPacket: () => {} });
    assert.equal(d.push(new Uint8Array([0xf0, 0x00]))?.code, "bad-packet-type");
  });

  it("encodes MQTT 3.1 CONNECT as MQIsdp level 3 and reads it back", () => {
    const p: Packet = { cmd: "connect", version: 3, clientId: "c", cleanSession: true, keepalive: 10 };
    const bytes = encode(p);
    assert.deepEqual([...bytes.subarray(2, 11)], [0, 6, 0x4d, 0x51, 0x49, 0x73, 0x64, 0x70, 3]);
    const got: Packet[] = [];
    new Decoder({ onPacket: (x) => got.push(x) }).push(bytes);
    assert.deepEqual(got, [p]);
  });
});
