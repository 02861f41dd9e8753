/**
 * Text helpers the audit format needs and ES2022 lacks without a host: UTF-8 (RFC 3629), lowercase
 * hex, well-formed strings, and canonical JSON (RFC 8785 JCS for our value set: strings, finite
 * numbers, booleans, null, arrays and plain objects).
 */

/** Replaces lone UTF-16 surrogates with U+FFFD so every string has exactly one UTF-8 encoding. */
export function wellFormed(s: string): string {
  let out = "";
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    const next = s.charCodeAt(i + 1);
    if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      i++;
      continue;
    }
    out += s.slice(from, i) + "\ufffd";
    from = i + 1;
  }
  return from === 0 ? s : out + s.slice(from);
}

/** UTF-8 encoding of a well-formed string. */
export function utf8(s: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return Uint8Array.from(out);
}

/**
 * Strict UTF-8 decoding.
 * @throws RangeError on malformed input (overlong forms, surrogates, truncation).
 */
export function fromUtf8(b: Uint8Array, start = 0, end = b.length): string {
  let s = "";
  for (let i = start; i < end; ) {
    const c = b[i++]!;
    let cp: number;
    let need: number;
    let min: number;
    if (c < 0x80) {
      s += String.fromCharCode(c);
      continue;
    } else if (c >= 0xc2 && c < 0xe0) [cp, need, min] = [c & 31, 1, 0x80];
    else if (c >= 0xe0 && c < 0xf0) [cp, need, min] = [c & 15, 2, 0x800];
    else if (c >= 0xf0 && c < 0xf5) [cp, need, min] = [c & 7, 3, 0x10000];
    else throw new RangeError("malformed UTF-8");
    if (i + need > end) throw new RangeError("truncated UTF-8");
    for (let k = 0; k < need; k++) {
      const d = b[i++]!;
      if ((d & 0xc0) !== 0x80) throw new RangeError("malformed UTF-8");
      cp = (cp << 6) | (d & 63);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) throw new RangeError("malformed UTF-8");
    s += String.fromCodePoint(cp);
  }
  return s;
}

const HEX = "0123456789abcdef";

export function toHex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += HEX[b[i]! >> 4]! + HEX[b[i]! & 15]!;
  return s;
}

/** @throws RangeError unless `s` is lowercase hex of even length. */
export function fromHex(s: string): Uint8Array {
  if (s.length % 2 !== 0 || !/^[0-9a-f]*$/.test(s)) throw new RangeError("expected lowercase hex");
  const b = new Uint8Array(s.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return b;
}

/** JSON value as the audit format allows it. */
export type Json = string | number | boolean | null | readonly Json[] | { readonly [k: string]: Json | undefined };

/**
 * Canonical JSON (RFC 8785): no whitespace, object keys sorted by UTF-16 code units, numbers and
 * strings as ECMAScript's JSON.stringify writes them; undefined members are left out.
 * @throws RangeError on a non-finite number.
 */
export function canonicalJson(v: Json): string {
  if (v === null || typeof v === "string" || typeof v === "boolean") return JSON.stringify(v);
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new RangeError("non-finite number");
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return "[" + (v as readonly Json[]).map(canonicalJson).join(",") + "]";
  const o = v as { readonly [k: string]: Json | undefined };
  const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonicalJson(o[k]!)).join(",") + "}";
}
