/** topicMatches against the MQTT 3.1.1 §4.7 examples and a reference matcher; filter validation; codecs. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { filterProblem, topicMatches } from "../../src/policy/topic.js";
import { base64Decode, base64Encode, utf8Decode, utf8Encode, utf8Length } from "../../src/policy/codec.js";
import { parsePointer } from "../../src/policy/pointer.js";

/** The obvious split-based matcher, as the reference. */
function reference(filter: string, topic: string): boolean {
  if (topic.startsWith("$") && (filter.startsWith("+") || filter.startsWith("#"))) return false;
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

describe("policy topic matching", () => {
  it("follows the MQTT 3.1.1 §4.7 examples", () => {
    const cases: [string, string, boolean][] = [
      ["sport/tennis/player1/#", "sport/tennis/player1", true],
      ["sport/tennis/player1/#", "sport/tennis/player1/ranking", true],
      ["sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true],
      ["sport/#", "sport", true],
      ["#", "sport/tennis", true],
      ["sport/tennis/+", "sport/tennis/player1", true],
      ["sport/tennis/+", "sport/tennis/player1/ranking", false],
      ["sport/+", "sport", false],
      ["sport/+", "sport/", true],
      ["+/+", "/finance", true],
      ["/+", "/finance", true],
      ["+", "/finance", false],
      ["#", "$SYS/x", false],
      ["+/monitor/Clients", "$SYS/monitor/Clients", false],
      ["$SYS/#", "$SYS/x", true],
      ["home/plug-1/telemetry", "home/plug-1/telemetry", true],
      ["home/plug-1/telemetry", "home/plug-1/telemetry/x", false],
    ];
    for (const [f, t, want] of cases) assert.equal(topicMatches(f, t), want, `${f} vs ${t}`);
  });

  it("agrees with the reference matcher on random filters and topics", () => {
    const level = fc.constantFrom("a", "b", "", "$x", "home");
    const topic = fc.array(level, { minLength: 1, maxLength: 5 }).map((l) => l.join("/")).filter((t) => t.length > 0);
    const filter = fc
      .tuple(fc.array(fc.oneof(level, fc.constant("+")), { minLength: 1, maxLength: 5 }), fc.boolean())
      .map(([l, hash]) => (hash ? [...l, "#"] : l).join("/"))
      .filter((f) => f.length > 0 && filterProblem(f) === undefined);
    fc.assert(fc.property(filter, topic, (f, t) => topicMatches(f, t) === reference(f, t)), { numRuns: 2000 });
  });

  it("rejects malformed filters", () => {
    assert.equal(filterProblem("a/#/b"), '"#" must be a whole last level');
    assert.equal(filterProblem("a/b#"), '"#" must be a whole last level');
    assert.equal(filterProblem("a+/b"), '"+" must be a whole level');
    assert.equal(filterProblem(""), "topic filter is empty");
    assert.equal(filterProblem("a/+/#"), undefined);
  });
});

describe("policy codecs", () => {
  it("base64 and base64url follow RFC 4648 §10 vectors", () => {
    const v: [string, string][] = [["", ""], ["f", "Zg=="], ["fo", "Zm8="], ["foo", "Zm9v"], ["foob", "Zm9vYg=="], ["fooba", "Zm9vYmE="], ["foobar", "Zm9vYmFy"]];
    for (const [plain, enc] of v) {
      assert.equal(base64Encode(utf8Encode(plain)), enc);
      assert.equal(utf8Decode(base64Decode(enc) as Uint8Array), plain);
    }
    assert.equal(base64Encode(Uint8Array.of(0xfb, 0xff), true), "-_8");
    assert.equal(base64Decode("Zm9=v"), undefined);
    assert.equal(base64Decode("Zh=="), undefined, "non-canonical padding bits");
  });
  it("UTF-8 round-trips and rejects invalid sequences", () => {
    fc.assert(fc.property(fc.string({ unit: "grapheme" }), (s) => utf8Decode(utf8Encode(s)) === s && utf8Length(s) === utf8Encode(s).length));
    for (const bad of [[0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0x80]]) {
      assert.equal(utf8Decode(Uint8Array.from(bad)), undefined, String(bad));
    }
  });
  it("JSON Pointer tokens unescape per RFC 6901 §4", () => {
    assert.deepEqual(parsePointer("/a~1b/m~0n"), ["a/b", "m~n"]);
    assert.deepEqual(parsePointer(""), []);
    assert.deepEqual(parsePointer("/"), [""]);
    assert.equal(parsePointer("a"), undefined);
    assert.equal(parsePointer("/a~2"), undefined);
  });
});
