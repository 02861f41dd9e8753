/** Byte codecs: RFC 4648 §10 test vectors and round-trip properties. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { constantTimeEqual, fromBase64, fromHex, fromUtf8, toBase64, toHex, utf8 } from "../../src/util/bytes.js";

describe("bytes", () => {
  it("base64 matches RFC 4648 §10", () => {
    const vectors: [string, string][] = [["", ""], ["f", "Zg=="], ["fo", "Zm8="], ["foo", "Zm9v"], ["foob", "Zm9vYg=="], ["fooba", "Zm9vYmE="], ["foobar", "Zm9vYmFy"]];
    for (const [plain, b64] of vectors) {
      assert.equal(toBase64(utf8(plain)), b64);
      assert.equal(fromUtf8(fromBase64(b64)), plain);
    }
  });
  it("base64url has no padding and uses -_", () => {
    assert.equal(toBase64(new Uint8Array([0xfb, 0xff]), true), "-_8");
    assert.deepEqual(fromBase64("-_8"), new Uint8Array([0xfb, 0xff]));
  });
  it("rejects malformed base64 and hex", () => {
    assert.throws(() => fromBase64("ab$d"), RangeError);
    assert.throws(() => fromBase64("abcde"), RangeError);
    assert.throws(() => fromHex("abc"), RangeError);
    assert.throws(() => fromHex("zz"), RangeError);
  });
  it("round-trips any bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.boolean(), (b, url) => {
        assert.deepEqual(fromBase64(toBase64(b, url)), b);
        assert.deepEqual(fromHex(toHex(b)), b);
      }),
    );
  });
  it("constant-time equality is equality", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 }), (a, b) => {
      assert.equal(constantTimeEqual(a, b), toHex(a) === toHex(b));
    }));
  });
  it("rejects invalid UTF-8", () => {
    assert.throws(() => fromUtf8(new Uint8Array([0xc3, 0x28])));
  });
});
