/** UTF-8 for MQTT strings (§1.5.3): strict decoding and encoding, no TextDecoder (absent from bare XS). */

/**
 * Decodes `buf[start, end)` as well-formed UTF-8 (Unicode Table 3-7: no overlongs, no surrogates, nothing
 * above U+10FFFF) that does not contain U+0000. Returns undefined when the bytes are not acceptable.
 */
export function decodeUtf8(buf: Uint8Array, start: number, end: number): string | undefined {
  let ascii = true;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (b === 0) return undefined;
    if (b >= 0x80) {
      ascii = false;
      break;
    }
  }
  // Fast path: topics and client ids are almost always ASCII. The chunk bound keeps apply() within
  // every engine's argument limit.
  if (ascii && end - start <= 1024) {
    return String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[]);
  }
  let s = "";
  let i = start;
  while (i < end) {
    const b0 = buf[i]!;
    if (b0 < 0x80) {
      if (b0 === 0) return undefined;
      s += String.fromCharCode(b0);
      i += 1;
      continue;
    }
    let cp: number;
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
      need = 1;
      cp = b0 & 0x1f;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      need = 2;
      cp = b0 & 0x0f;
      if (b0 === 0xe0) lo = 0xa0;
      else if (b0 === 0xed) hi = 0x9f; // U+D800..U+DFFF are not characters
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      need = 3;
      cp = b0 & 0x07;
      if (b0 === 0xf0) lo = 0x90;
      else if (b0 === 0xf4) hi = 0x8f; // nothing above U+10FFFF
    } else {
      return undefined;
    }
    if (i + need >= end) return undefined; // truncated sequence
    const b1 = buf[i + 1]!;
    if (b1 < lo || b1 > hi) return undefined;
    cp = (cp << 6) | (b1 & 0x3f);
    for (let k = 2; k <= need; k++) {
      const b = buf[i + k]!;
      if (b < 0x80 || b > 0xbf) return undefined;
      cp = (cp << 6) | (b & 0x3f);
    }
    s += String.fromCodePoint(cp);
    i += need + 1;
  }
  return s;
}

/**
 * Bytes needed to encode `s` as UTF-8, or -1 when `s` cannot be an MQTT string (a lone surrogate or
 * U+0000, §1.5.3).
 */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (c === 0) return -1;
      n += 1;
    } else if (c < 0x800) {
      n += 2;
    } else if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return -1;
      n += 4;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return -1;
    } else {
      n += 3;
    }
  }
  return n;
}

/** Writes `s` (already checked by {@link utf8Length}) at `pos`; returns the position after it. */
export function writeUtf8(buf: Uint8Array, pos: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[pos++] = c;
    } else if (c < 0x800) {
      buf[pos++] = 0xc0 | (c >> 6);
      buf[pos++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdbff) {
      c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
      buf[pos++] = 0xf0 | (c >> 18);
      buf[pos++] = 0x80 | ((c >> 12) & 0x3f);
      buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
      buf[pos++] = 0x80 | (c & 0x3f);
    } else {
      buf[pos++] = 0xe0 | (c >> 12);
      buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
      buf[pos++] = 0x80 | (c & 0x3f);
    }
  }
  return pos;
}
