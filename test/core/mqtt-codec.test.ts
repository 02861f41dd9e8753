/** The MQTT 3.1.1 codec against byte fixtures (good and malformed), under any chunking, and by round trip. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { Decoder, encode, MAX_PACKET_BYTES, type DecodeError, type Packet } from "../../src/mqtt/codec.js";
import { bad, good, hex, lengthBoundaries, publishOfLength } from "../fixtures/mqtt/packets.js";
import { packet as anyPacket } from "../fixtures/mqtt/arbitraries.js";

interface Run {
  packets: Packet[];
  error: DecodeError | undefined;
}

/** Feeds `bytes` split at `cuts` (sorted offsets) and collects what comes out. */
function decodeChunks(bytes: Uint8Array, cuts: readonly number[], maxPacketBytes?: number): Run {
  const packets: Packet[] = [];
  const decoder = new Decoder({ onPacket: (p) => packets.push(p), ...(maxPacketBytes ? { maxPacketBytes } : {}) });
  let error: DecodeError | undefined;
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    // A fresh copy per chunk, scribbled over afterwards: the decoder must not keep views of input.
    const chunk = bytes.slice(at, cut);
    error = decoder.push(chunk) ?? error;
    chunk.fill(0xee);
    at = cut;
  }
  return { packets, error };
}

const oneByOne = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe("mqtt codec: good fixtures", () => {
  for (const f of good) {
    it(`decodes ${f.name} whole, byte by byte, and encodes it back`, () => {
      assert.deepEqual(decodeChunks(f.bytes, []), { packets: [f.packet], error: undefined });
      assert.deepEqual(decodeChunks(f.bytes, oneByOne(f.bytes.length)), { packets: [f.packet], error: undefined });
      assert.deepEqual(encode(f.packet), f.bytes);
    });
  }

  it("decodes all fixtures concatenated in one stream, split at random points", () => {
    const all = new Uint8Array(good.reduce((n, f) => n + f.bytes.length, 0));
    let at = 0;
    for (const f of good) {
      all.set(f.bytes, at);
      at += f.bytes.length;
    }
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: all.length - 1 }), { maxLength: 40 }), (cuts) => {
        const run = decodeChunks(all, cuts.sort((a, b) => a - b));
        assert.equal(run.error, undefined);
        assert.deepEqual(run.packets, good.map((f) => f.packet));
      }),
      { numRuns: 200 },
    );
  });
});

describe("mqtt codec: Remaining Length boundaries (§2.2.3)", () => {
  for (const { length, encoded } of lengthBoundaries) {
    it(`length ${length} encodes as ${Array.from(encoded, (b) => b.toString(16)).join(" ")}`, () => {
      if (length < 3 || length > 2097152) {
        // Too large to materialise: the header alone must parse to exactly this length.
        const run = decodeChunks(Uint8Array.of(0x30, ...encoded), []);
        if (length > 0) assert.match(run.error!.message, new RegExp(`packet of ${1 + encoded.length + length} bytes`));
        return;
      }
      const { bytes, packet } = publishOfLength(length, encoded);
      assert.deepEqual(encode(packet), bytes);
      const max = Math.max(MAX_PACKET_BYTES, bytes.length);
      const cuts = length < 20000 ? oneByOne(bytes.length) : [1, 2, 3, 4, 5, 1000, 65536, bytes.length - 1];
      assert.deepEqual(decodeChunks(bytes, cuts, max), { packets: [packet], error: undefined });
    });
  }

  it("refuses a packet one byte over the limit and accepts one at it", () => {
    const { bytes } = publishOfLength(16380, hex("fc 7f")); // 1 + 2 + 16380 = 16383 bytes
    assert.equal(decodeChunks(bytes, [], 16383).error, undefined);
    assert.equal(decodeChunks(bytes, [], 16382).error?.code, "packet-too-large");
  });
});

describe("mqtt codec: malformed fixtures", () => {
  for (const f of bad) {
    it(`refuses ${f.name} with ${f.code}, whole and byte by byte`, () => {
      const whole = decodeChunks(f.bytes, []);
      assert.equal(whole.error?.code, f.code, whole.error?.message);
      assert.deepEqual(whole.packets, []);
      assert.equal(decodeChunks(f.bytes, oneByOne(f.bytes.length)).error?.code, f.code);
    });
  }

  it("refuses every malformed fixture with its code under random chunking, after a good packet", () => {
    fc.assert(
      fc.property(fc.constantFrom(...bad), fc.array(fc.nat(), { maxLength: 5 }), (f, rawCuts) => {
        const bytes = new Uint8Array(2 + f.bytes.length);
        bytes.set([0xc0, 0x00]); // PINGREQ first: the error must not eat what came before it
        bytes.set(f.bytes, 2);
        const cuts = [...new Set(rawCuts.map((c) => c % bytes.length))].filter((c) => c > 0).sort((a, b) => a - b);
        const run = decodeChunks(bytes, cuts);
        assert.equal(run.error?.code, f.code);
        assert.deepEqual(run.packets, [{ cmd: "pingreq" }]);
      }),
      { numRuns: 500 },
    );
  });

  it("copies payloads out of the input even when the input's slice() returns a view (like node's Buffer)", () => {
    const input = hex("30 07 0003 612f62 6869");
    Object.defineProperty(input, "slice", { value: (start?: number, end?: number) => input.subarray(start, end) });
    const packets: Packet[] = [];
    new Decoder({ onPacket: (p) => packets.push(p) }).push(input);
    input.fill(0);
    const p = packets[0]!;
    assert.ok(p.cmd === "publish");
    assert.deepEqual(p.payload, hex("6869"));
    assert.equal(Object.getPrototypeOf(p.payload), Uint8Array.prototype);
  });

  it("emits the packets before a malformed one, then stays failed", () => {
    const packets: Packet[] = [];
    const d = new Decoder({ onPacket: (p) => packets.push(p) });
    const err = d.push(Uint8Array.of(0xc0, 0x00, 0xf0, 0x00, 0xc0, 0x00));
    assert.equal(err?.code, "bad-packet-type");
    assert.deepEqual(packets, [{ cmd: "pingreq" }]);
    assert.equal(d.push(Uint8Array.of(0xc0, 0x00)), err);
    assert.equal(d.error, err);
    assert.equal(packets.length, 1);
  });

  it("stop() drops the rest of the current chunk", () => {
    const packets: Packet[] = [];
    const d = new Decoder({
      onPacket: (p) => {
        packets.push(p);
        d.stop();
      },
    });
    assert.equal(d.push(Uint8Array.of(0xc0, 0x00, 0xc0, 0x00)), undefined);
    assert.equal(packets.length, 1);
  });

  it("never throws and never emits after an error, on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 1, max: 8 }), (bytes, step) => {
        let afterError = false;
        let failed: DecodeError | undefined;
        const d = new Decoder({ onPacket: () => assert.equal(afterError, false), maxPacketBytes: 128 });
        for (let i = 0; i < bytes.length; i += step) {
          const e = d.push(bytes.subarray(i, i + step));
          if (failed) assert.equal(e, failed);
          if (e) {
            failed = e;
            afterError = true;
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("rejects bad options at once", () => {
    assert.throws(() => new Decoder({} as never), TypeError);
    assert.throws(() => new Decoder({ onPacket: () => {}, maxPacketBytes: 1 }), RangeError);
  });
});

describe("mqtt codec: encoder refuses invalid packets", () => {
  const cases: [string, Packet][] = [
    ["wildcard topic", { cmd: "publish", topic: "a/#", payload: new Uint8Array(0), qos: 0, retain: false, dup: false }],
    ["QoS 1 without id", { cmd: "publish", topic: "a", payload: new Uint8Array(0), qos: 1, retain: false, dup: false }],
    ["DUP on QoS 0", { cmd: "publish", topic: "a", payload: new Uint8Array(0), qos: 0, retain: false, dup: true }],
    ["id 0", { cmd: "puback", packetId: 0 }],
    ["lone surrogate", { cmd: "connect", clientId: "\ud800", cleanSession: true, keepalive: 0 }],
    ["U+0000", { cmd: "connect", clientId: "a\u0000", cleanSession: true, keepalive: 0 }],
    ["password without username", { cmd: "connect", clientId: "a", cleanSession: true, keepalive: 0, password: new Uint8Array(1) }],
    ["empty subscribe", { cmd: "subscribe", packetId: 1, subscriptions: [] }],
    ["bad filter", { cmd: "unsubscribe", packetId: 1, filters: ["a/#/b"] }],
  ];
  for (const [name, p] of cases) it(name, () => assert.throws(() => encode(p), RangeError));
});

describe("mqtt codec: round trip", () => {
  it("decode(encode(p)) = p for arbitrary valid packets, in random chunks", () => {
    fc.assert(
      fc.property(anyPacket, fc.array(fc.nat(), { maxLength: 6 }), (p, rawCuts) => {
        const bytes = encode(p);
        const cuts = [...new Set(rawCuts.map((c) => c % bytes.length))].filter((c) => c > 0).sort((a, b) => a - b);
        assert.deepEqual(decodeChunks(bytes, cuts), { packets: [p], error: undefined });
      }),
      { numRuns: 1000 },
    );
  });
});
