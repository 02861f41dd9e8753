/** MQTT 5 property codec and v5 packets: fast-check round trips, mqtt-packet v5 cross-check, malformed property lists. */
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

  it("matches mqtt-packet's v5 generate and parse for PUBLISH, CONNACK and SUBSCRIBE", async () => {
    const mp = (await import("mqtt-packet")).default;
    const cases: [Packet, object][] = [
      [
        { cmd: "publish", topic: "t", payload: new Uint8Array([1, 2]), qos: 1, retain: false, dup: false, packetId: 3, properties: { contentType: "x", userProperties: [["a", "b"]], messageExpiryInterval: 60 } },
        { cmd: "publish", topic: "t", payload: Buffer.from([1, 2]), qos: 1, retain: false, dup: false, messageId: 3, properties: { contentType: "x", userProperties: { a: "b" }, messageExpiryInterval: 60 } },
      ],
      [
        { cmd: "connack", sessionPresent: false, returnCode: 0, properties: { receiveMaximum: 8, maximumPacketSize: 16384, topicAliasMaximum: 8 } },
        { cmd: "connack", sessionPresent: false, reasonCode: 0, properties: { receiveMaximum: 8, maximumPacketSize: 16384, topicAliasMaximum: 8 } },
      ],
      [
        { cmd: "subscribe", packetId: 2, subscriptions: [{ filter: "a/#", qos: 1, nl: true, rap: true, rh: 2 }] },
        { cmd: "subscribe", messageId: 2, subscriptions: [{ topic: "a/#", qos: 1, nl: true, rap: true, rh: 2 }] },
      ],
    ];
    for (const [ours, theirs] of cases) {
      // Property order is free (§2.2.2), so compare decoded packets both ways, not bytes.
      const theirBytes = mp.generate(theirs as never, { protocolVersion: 5 });
      const mine = decode5(new Uint8Array(theirBytes));
      assert.equal(mine.error, undefined, ours.cmd);
      assert.deepEqual(mine.packets, [ours], ours.cmd);
      assert.equal(encode(ours, 5).length, theirBytes.length, ours.cmd);
      const parser = mp.parser({ protocolVersion: 5 });
      let got: Record<string, unknown> | undefined;
      parser.on("packet", (p: unknown) => void (got = p as Record<string, unknown>));
      parser.parse(Buffer.from(encode(ours, 5)));
      const norm = (x: unknown): string => JSON.stringify(x, (_k, v: unknown) => (v && typeof v === "object" && !Array.isArray(v) && !(v instanceof Uint8Array) ? Object.fromEntries(Object.entries(v).sort((a, b) => (a[0] < b[0] ? -1 : 1))) : v));
      for (const [k, v] of Object.entries(theirs)) assert.equal(norm(got?.[k]), norm(v), `${ours.cmd}.${k}`);
    }
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
