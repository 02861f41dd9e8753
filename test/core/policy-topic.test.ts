/** Contract topic filter validation and the policy codecs (matching itself is tested in mqtt-topic.test.ts). */
import assert from "node:assert/strict";
import fc from "fast-check";
import { filterProblem } from "../../src/policy/topic.js";
import { fromBase64Canonical as base64Decode, toBase64 as base64Encode, tryUtf8 as utf8Decode, utf8 as utf8Encode, utf8Length } from "../../src/util/bytes.js";
import { parsePointer } from "../../src/policy/pointer.js";

describe("policy topic filters", () => {
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
