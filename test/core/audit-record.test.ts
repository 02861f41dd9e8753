/** Audit record encodings: UTF-8 and hex, canonical JSON, and the compact body's round trip (properties). */
import assert from "node:assert/strict";
import fc from "fast-check";
import { canonicalJson, wellFormed } from "../../src/audit/text.js";
import { fromHex, fromUtf8, toHex, utf8 } from "../../src/util/bytes.js";
import { canonicalBytes, decodeBody, encodeBody, normalizeEvent } from "../../src/audit/record.js";
import { AuditKinds, type AuditEvent, type AuditRecord, type FlowSummaryRow } from "../../src/audit/types.js";

const str = fc.string({ unit: "grapheme", maxLength: 40 });
const detailValue = fc.oneof(str, fc.boolean(), fc.constant(null), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.maxSafeInteger());
const row: fc.Arbitrary<FlowSummaryRow> = fc.record({
  minute: fc.integer({ min: 29_000_000, max: 29_000_100 }).map((m) => m * 60000),
  device: fc.constantFrom("shelly-1", "shelly-2", "hue-bridge", "ünï"),
  integration: fc.constantFrom(null, "cloud", "vendor"),
  decision: fc.constantFrom("allow" as const, "minimize" as const),
  rule: fc.constantFrom(null, "r1", "telemetry"),
  count: fc.nat(1000),
  bytes: fc.nat(1e9),
  fieldsDropped: fc.nat(50),
});
const event: fc.Arbitrary<AuditEvent> = fc.record(
  {
    kind: fc.constantFrom(...AuditKinds),
    decision: fc.constantFrom("allow" as const, "minimize" as const, "deny" as const, "info" as const),
    device: str, integration: str, topic: str, rule: str, reason: str,
    detail: fc.dictionary(fc.string({ maxLength: 10 }), detailValue, { maxKeys: 6 }),
    summary: fc.uniqueArray(row, { maxLength: 30, selector: (r) => [r.device, r.integration, r.decision, r.rule, r.minute].join("|") }),
  },
  { requiredKeys: ["kind", "decision"] },
);

describe("audit text helpers", () => {
  it("UTF-8 matches known encodings and rejects malformed input", () => {
    assert.equal(toHex(utf8("a€𝄞")), "61e282acf09d849e");
    assert.equal(fromUtf8(fromHex("61e282acf09d849e")), "a€𝄞");
    for (const bad of ["c0af", "e282", "eda080", "f4908080", "80"]) assert.throws(() => fromUtf8(fromHex(bad)), TypeError, bad);
    assert.equal(wellFormed("a\ud800b"), "a\ufffdb");
    fc.assert(fc.property(fc.string({ unit: "grapheme" }), (s) => assert.equal(fromUtf8(utf8(s)), s)));
  });

  it("canonical JSON sorts keys and writes numbers as ECMAScript does (RFC 8785)", () => {
    assert.equal(canonicalJson({ b: [1, 2.5, "x"], a: null, c: { z: true, y: 1e21 } }), '{"a":null,"b":[1,2.5,"x"],"c":{"y":1e+21,"z":true}}');
    assert.equal(canonicalJson({ "\u00e9": 1, e: 2 }), '{"e":2,"\u00e9":1}');
    assert.throws(() => canonicalJson({ x: Infinity }), RangeError);
  });
});

describe("audit record body", () => {
  it("decode(encode(r)) = r, and the canonical bytes survive the round trip (property)", () => {
    fc.assert(
      fc.property(event, fc.nat(2 ** 45), fc.boolean(), fc.nat(2 ** 32 - 1), (e, time, timeSet, seq) => {
        const n = normalizeEvent(e);
        const r: AuditRecord = { ...n, seq, time, timeSet };
        const back = decodeBody(seq, encodeBody(r));
        assert.deepEqual(back, r);
        assert.deepEqual(canonicalBytes(back), canonicalBytes(r));
      }),
      { numRuns: 300 },
    );
  });

  it("keeps a detail key named __proto__ as an entry, never as the prototype", () => {
    const e = normalizeEvent({ kind: "boot", decision: "allow", detail: JSON.parse('{"__proto__":null,"a":1}') });
    assert.deepEqual(Object.keys(e.detail!), ["__proto__", "a"]);
    assert.equal(Object.getPrototypeOf(e.detail), Object.prototype);
    const back = decodeBody(3, encodeBody({ ...e, seq: 3, time: 0, timeSet: false }));
    assert.deepEqual(Object.keys(back.detail!), ["__proto__", "a"]);
    assert.equal(Object.getPrototypeOf(back.detail), Object.prototype);
    assert.match(new TextDecoder().decode(canonicalBytes(back)), /"detail":\{"__proto__":null,"a":1\}/);
  });

  it("codes a steady device's minutes as one run: 50 devices × 5 minutes in well under 1 KiB", () => {
    const summary: FlowSummaryRow[] = [];
    for (let m = 0; m < 5; m++) for (let d = 0; d < 50; d++) {
      summary.push({ minute: (29_000_000 + m) * 60000, device: `shelly-plug-${d.toString(16).padStart(6, "0")}`, integration: "vendor-cloud", decision: "allow", rule: "telemetry", count: 2, bytes: 360, fieldsDropped: 0 });
    }
    const r = { ...normalizeEvent({ kind: "flow-summary", decision: "info", summary }), seq: 1, time: 0, timeSet: true };
    const body = encodeBody(r);
    assert.ok(body.length < 1024, `${body.length} bytes`);
    assert.equal(decodeBody(1, body).summary!.length, 250);
  });

  it("rejects duplicate summary rows and malformed bodies", () => {
    const x: FlowSummaryRow = { minute: 60000, device: "d", integration: null, decision: "allow", rule: null, count: 1, bytes: 1, fieldsDropped: 0 };
    assert.throws(() => normalizeEvent({ kind: "flow-summary", decision: "info", summary: [x, x] }), /duplicate/);
    const body = encodeBody({ ...normalizeEvent({ kind: "admin", decision: "info", device: "d" }), seq: 1, time: 5, timeSet: true });
    assert.throws(() => decodeBody(1, body.subarray(0, body.length - 1)), RangeError);
    assert.throws(() => decodeBody(1, Uint8Array.from([...body, 0])), /trailing/);
    assert.throws(() => decodeBody(1, Uint8Array.from([9, ...body.subarray(1)])), /version/);
  });
});
