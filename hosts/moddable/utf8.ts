/**
 * Strict UTF-8 (RFC 3629) for the firmware's TextEncoder/TextDecoder globals (globals.ts). Decoding builds
 * strings 32 code points per String.fromCodePoint call: spreading more arguments than that (the core's
 * src/policy/codec.ts spreads up to 1024) overflows a 512-slot XS stack. No imports, so Node tests it;
 * the native fast path runs only in the firmware (test/contract/utf8.contract.ts checks it there).
 */

/**
 * XS's native conversions (Moddable's String.fromArrayBuffer and ArrayBuffer.fromString, absent on
 * Node and in xsnap's CESU-8 build): they copy the engine's internal UTF-8 in C, but are not strict
 * (overlongs and surrogates pass, and XS keeps lone surrogates as 3-byte forms). So they are used
 * only where their answer is provably the strict one: text that is all ASCII, which is what MQTT
 * topics and JSON payloads nearly always are. A string is all ASCII exactly when its byte length
 * equals its length in UTF-16 units (any other character takes more bytes than units); everything
 * else takes the strict JavaScript path below. The JS path costs ~50 µs for 100 bytes in XS on x86.
 */
const nativeDecode = xsDecoder((String as unknown as { fromArrayBuffer?: (buffer: ArrayBufferLike, offset?: number, length?: number) => string }).fromArrayBuffer);
const nativeEncode = xsEncoder((ArrayBuffer as unknown as { fromString?: (text: string) => ArrayBuffer }).fromString);

/** XS's decoder throws on a stray continuation byte; a look-alike (a test shim on Node) that does not is not used. */
function xsDecoder(f: ((buffer: ArrayBufferLike, offset?: number, length?: number) => string) | undefined): typeof f {
  if (typeof f !== "function") return undefined;
  try {
    f.call(String, new Uint8Array([0x80]).buffer);
  } catch {
    return f;
  }
  return undefined;
}

/** XS's encoder gives UTF-8 ("é" is 2 bytes); anything else is not used. */
function xsEncoder(f: ((text: string) => ArrayBuffer) | undefined): typeof f {
  try {
    return typeof f === "function" && f.call(ArrayBuffer, "\u00e9").byteLength === 2 ? f : undefined;
  } catch {
    return undefined;
  }
}

/** UTF-8 bytes of a string; lone surrogates become U+FFFD, as TextEncoder does (WHATWG Encoding §4.2). */
export function utf8Encode(s: string): Uint8Array {
  if (nativeEncode !== undefined) {
    const buffer = nativeEncode.call(ArrayBuffer, s); // it constructs through `this`
    if (buffer.byteLength === s.length) return new Uint8Array(buffer);
  }
  return encodeStrict(s);
}

/**
 * The strict encoder in JavaScript (every board; the fallback of {@link utf8Encode}). It walks code
 * points with the string iterator, never by index: the lin firmware's XS counts a string's length and
 * indexes in code points (an astral character is 1, not 2 as on Node), so an index loop that skips the
 * second half of a surrogate pair dropped the character after every emoji there (found by
 * test/contract/utf8.contract.ts in the port contract app).
 */
function encodeStrict(s: string): Uint8Array {
  let length = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    length += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  const out = new Uint8Array(length);
  let o = 0;
  for (const ch of s) {
    let cp = ch.codePointAt(0)!;
    if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd;
    if (cp < 0x80) out[o++] = cp;
    else if (cp < 0x800) {
      out[o++] = 0xc0 | (cp >> 6);
      out[o++] = 0x80 | (cp & 63);
    } else if (cp < 0x10000) {
      out[o++] = 0xe0 | (cp >> 12);
      out[o++] = 0x80 | ((cp >> 6) & 63);
      out[o++] = 0x80 | (cp & 63);
    } else {
      out[o++] = 0xf0 | (cp >> 18);
      out[o++] = 0x80 | ((cp >> 12) & 63);
      out[o++] = 0x80 | ((cp >> 6) & 63);
      out[o++] = 0x80 | (cp & 63);
    }
  }
  return out;
}

/** Code points per String.fromCodePoint call: bounded stack use. */
const BATCH = 32;

/** Strict UTF-8 decoding (RFC 3629 §4: no overlongs, surrogates, or code points above U+10FFFF); undefined when malformed. */
export function utf8Decode(bytes: Uint8Array): string | undefined {
  if (nativeDecode !== undefined && bytes.length > 0) {
    let text: string | undefined;
    try {
      text = nativeDecode.call(String, bytes.buffer, bytes.byteOffset, bytes.length);
    } catch {
      text = undefined; // not even loosely UTF-8: the strict path says so
    }
    if (text !== undefined && text.length === bytes.length) return text;
  }
  return decodeStrict(bytes);
}

/** The strict decoder in JavaScript (every board; the fallback of {@link utf8Decode}). */
function decodeStrict(bytes: Uint8Array): string | undefined {
  let out = "";
  const batch: number[] = [];
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    const n = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
    if (n === 0) return undefined;
    let cp = n === 1 ? b : b & (0xff >> (n + 1));
    if (i + n > bytes.length) return undefined;
    for (let k = 1; k < n; k++) {
      const c = bytes[i + k]!;
      if ((c & 0xc0) !== 0x80) return undefined;
      cp = (cp << 6) | (c & 0x3f);
    }
    if ((n === 3 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) || (n === 4 && (cp < 0x10000 || cp > 0x10ffff))) return undefined;
    batch.push(cp);
    if (batch.length === BATCH) {
      out += String.fromCodePoint.apply(null, batch);
      batch.length = 0;
    }
    i += n;
  }
  return out + String.fromCodePoint.apply(null, batch);
}

