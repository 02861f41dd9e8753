/**
 * The firmware's UTF-8 (hosts/moddable/utf8.ts, behind the TextEncoder/TextDecoder globals): fixed
 * vectors (RFC 3629 §3-§4, and the WHATWG Encoding rule that lone surrogates encode as U+FFFD), run on
 * Node against the JavaScript path and in the lin firmware's XS (the port contract app) against the
 * native fast path, which must give the same answers, including for views into a larger buffer.
 */
import assert from "node:assert/strict";

export interface Utf8Codec {
  utf8Encode(s: string): Uint8Array;
  utf8Decode(bytes: Uint8Array): string | undefined;
}

const VALID: readonly (readonly [string, readonly number[]])[] = [
  ["", []],
  ["abc", [0x61, 0x62, 0x63]],
  ["a\u0000b", [0x61, 0x00, 0x62]],
  ["\u007f", [0x7f]],
  ["\u0080", [0xc2, 0x80]],
  ["é", [0xc3, 0xa9]],
  ["\u07ff", [0xdf, 0xbf]],
  ["\u0800", [0xe0, 0xa0, 0x80]],
  ["€", [0xe2, 0x82, 0xac]],
  ["\uffff", [0xef, 0xbf, 0xbf]],
  ["🔒", [0xf0, 0x9f, 0x94, 0x92]],
  ["\u{10ffff}", [0xf4, 0x8f, 0xbf, 0xbf]],
  ['{"t":"é"}', [0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xc3, 0xa9, 0x22, 0x7d]],
];

/** Malformed input (RFC 3629 §3: overlongs, surrogates, above U+10FFFF, stray and truncated bytes). */
const MALFORMED: readonly (readonly number[])[] = [
  [0xc0, 0x80],
  [0xc1, 0xbf],
  [0xe0, 0x80, 0x80],
  [0xed, 0xa0, 0x80],
  [0x61, 0xed, 0xb0, 0x80],
  [0xf0, 0x80, 0x80, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0x80],
  [0x61, 0xbf],
  [0xc3],
  [0x61, 0xe2, 0x82],
  [0xff],
];

export function utf8Contract(name: string, codec: Utf8Codec): void {
  describe(`UTF-8 contract: ${name}`, () => {
    it("encodes and decodes the RFC 3629 boundary vectors", () => {
      for (const [text, bytes] of VALID) {
        assert.deepEqual([...codec.utf8Encode(text)], bytes, `encode ${JSON.stringify(text)}`);
        assert.equal(codec.utf8Decode(new Uint8Array(bytes)), text, `decode ${bytes.join(",")}`);
      }
    });

    it("encodes a lone surrogate as U+FFFD, as TextEncoder does", () => {
      assert.deepEqual([...codec.utf8Encode("\ud800")], [0xef, 0xbf, 0xbd]);
      assert.deepEqual([...codec.utf8Encode("a\udc00b")], [0x61, 0xef, 0xbf, 0xbd, 0x62]);
    });

    it("refuses malformed input, alone and after ASCII", () => {
      for (const bytes of MALFORMED) {
        assert.equal(codec.utf8Decode(new Uint8Array(bytes)), undefined, `decode ${bytes.join(",")}`);
        assert.equal(codec.utf8Decode(new Uint8Array([0x7b, 0x22, ...bytes, 0x22])), undefined, `decode {" ${bytes.join(",")} "`);
      }
    });

    it("decodes only the bytes of a view, not its whole buffer", () => {
      const buffer = new Uint8Array([0xff, 0x61, 0x62, 0x63, 0xc3]);
      assert.equal(codec.utf8Decode(buffer.subarray(1, 4)), "abc");
      assert.equal(codec.utf8Decode(buffer.subarray(1, 5)), undefined);
      assert.equal(codec.utf8Decode(buffer.subarray(2, 2)), "");
    });

    it("round-trips every ASCII character and a long mixed text", () => {
      let ascii = "";
      for (let c = 0; c < 128; c++) ascii += String.fromCharCode(c);
      const encoded = codec.utf8Encode(ascii);
      assert.equal(encoded.length, 128, `ASCII encodes to ${encoded.length} bytes`);
      for (let c = 0; c < 128; c++) assert.equal(encoded[c], c, `byte ${c} is ${encoded[c]}`);
      const decoded = codec.utf8Decode(encoded);
      assert.equal(decoded?.length, 128, `ASCII decodes to ${decoded?.length} units`);
      assert.ok(decoded === ascii, "ASCII round-trips");
      const mixed = `${"x".repeat(5000)}é🔒${"y".repeat(5000)}`;
      const bytes = codec.utf8Encode(mixed);
      assert.equal(bytes.length, 10006, `mixed encodes to ${bytes.length} bytes`);
      assert.ok(codec.utf8Decode(bytes) === mixed, "mixed round-trips");
      // An astral character followed by others: the character after it must survive.
      assert.deepEqual([...codec.utf8Encode("🔒ab")], [0xf0, 0x9f, 0x94, 0x92, 0x61, 0x62]);
    });
  });
}
