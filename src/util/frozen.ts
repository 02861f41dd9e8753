/**
 * Tables built once at module level and frozen, array and entries. On the device a preloaded module's
 * frozen objects are kept in flash with the code, so a table of commands or routes costs no RAM at
 * run time; the same literals built inside a function cost RAM on every boot (DESIGN.md "Inside
 * startGateway": ~12 slots and ~128 chunk bytes per route-shaped entry on lin).
 */
export function frozenTable<T extends object>(entries: T[]): readonly T[] {
  for (const e of entries) {
    // One level down too (a route's `roles` array), so the preload leaves nothing writable behind.
    for (const v of Object.values(e)) if (typeof v === "object" && v !== null) Object.freeze(v);
    Object.freeze(e);
  }
  return Object.freeze(entries);
}
