/**
 * Text helpers of the audit format: well-formed strings and canonical JSON (RFC 8785 JCS for our value
 * set: strings, finite numbers, booleans, null, arrays and plain objects). Bytes: src/util/bytes.ts.
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
