/** RFC 6901 JSON Pointers, restricted to object members (SPEC.md "Contracts", "Field paths"). */

/**
 * Splits a pointer into unescaped reference tokens ("" → []). Returns undefined when it is not a valid
 * RFC 6901 pointer: it must be "" or start with "/", and "~" must be followed by "0" or "1" (§3).
 */
export function parsePointer(p: string): string[] | undefined {
  if (p === "") return [];
  if (p[0] !== "/") return undefined;
  const out: string[] = [];
  for (const raw of p.slice(1).split("/")) {
    if (/~[^01]|~$/.test(raw)) return undefined;
    out.push(raw.replace(/~1/g, "/").replace(/~0/g, "~"));
  }
  return out;
}

/** Escapes one token for a pointer (§3: "~" → "~0", "/" → "~1"). */
export function escapeToken(t: string): string {
  return t.replace(/~/g, "~0").replace(/\//g, "~1");
}

/** True when pointer `a` equals `b` or addresses an ancestor of it. */
export function isPrefix(a: readonly string[], b: readonly string[]): boolean {
  if (a.length > b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
