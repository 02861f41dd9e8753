/**
 * The subset of `node:assert/strict` the core's tests use, for the XS bundle (esbuild aliases
 * `node:assert/strict` here). Strict semantics throughout: `equal` is `Object.is`, `deepEqual` is
 * deep-strict (prototypes, typed arrays by content, Map/Set by entries).
 */
class AssertionError extends Error {
  // A field, not an assignment: the firmware freezes Error.prototype (see src/errors.ts).
  override readonly name: string = "AssertionError";
}

function show(v: unknown): string {
  try {
    if (v instanceof Uint8Array) return `Uint8Array[${Array.from(v.subarray(0, 32)).join(",")}${v.length > 32 ? ",…" : ""}]`;
    if (typeof v === "bigint") return `${v}n`;
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 300 ? s.slice(0, 300) + "…" : s;
  } catch {
    return String(v);
  }
}

function deepEq(a: unknown, b: unknown, seen: Map<object, object>): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (seen.get(a) === b) return true;
  seen.set(a, b);
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  }
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (a instanceof Map && b instanceof Map) {
    if (a.size !== b.size) return false;
    for (const [k, v] of a) if (!b.has(k) || !deepEq(v, b.get(k), seen)) return false;
    return true;
  }
  if (a instanceof Set && b instanceof Set) {
    if (a.size !== b.size) return false;
    for (const v of a) if (!b.has(v)) return false;
    return true;
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!deepEq((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], seen)) return false;
  }
  return true;
}

function fail(message?: string | Error): never {
  if (message instanceof Error) throw message;
  throw new AssertionError(message ?? "Failed");
}

function ok(value: unknown, message?: string | Error): asserts value {
  if (!value) fail(message ?? `expected truthy, got ${show(value)}`);
}

type Expected = RegExp | ((e: unknown) => boolean) | (new (...args: never[]) => unknown) | Record<string, unknown>;

function checkError(e: unknown, expected: Expected | undefined, message?: string): void {
  if (expected === undefined) return;
  if (expected instanceof RegExp) {
    const text = e instanceof Error ? e.message : String(e);
    if (!expected.test(text) && !expected.test(String(e))) fail(message ?? `error ${show(text)} does not match ${expected}`);
    return;
  }
  if (typeof expected === "function") {
    if (expected.prototype !== undefined && e instanceof (expected as new () => unknown)) return;
    if (Error.isPrototypeOf(expected) || expected === Error) fail(message ?? `error is not a ${expected.name}`);
    if ((expected as (e: unknown) => boolean)(e) !== true) fail(message ?? "error validation function failed");
    return;
  }
  for (const [k, v] of Object.entries(expected)) {
    const actual = (e as Record<string, unknown>)[k];
    if (v instanceof RegExp ? !v.test(String(actual)) : !deepEq(actual, v, new Map())) {
      fail(message ?? `error.${k} is ${show(actual)}, expected ${show(v)}`);
    }
  }
}

const assert = Object.assign((value: unknown, message?: string | Error) => ok(value, message), {
  AssertionError,
  ok,
  fail,
  equal(a: unknown, b: unknown, message?: string | Error) {
    if (!Object.is(a, b)) fail(message ?? `${show(a)} !== ${show(b)}`);
  },
  strictEqual(a: unknown, b: unknown, message?: string | Error) {
    if (!Object.is(a, b)) fail(message ?? `${show(a)} !== ${show(b)}`);
  },
  notEqual(a: unknown, b: unknown, message?: string | Error) {
    if (Object.is(a, b)) fail(message ?? `${show(a)} === ${show(b)}`);
  },
  notStrictEqual(a: unknown, b: unknown, message?: string | Error) {
    if (Object.is(a, b)) fail(message ?? `${show(a)} === ${show(b)}`);
  },
  deepEqual(a: unknown, b: unknown, message?: string | Error) {
    if (!deepEq(a, b, new Map())) fail(message ?? `not deep-equal:\n  ${show(a)}\n  ${show(b)}`);
  },
  deepStrictEqual(a: unknown, b: unknown, message?: string | Error) {
    if (!deepEq(a, b, new Map())) fail(message ?? `not deep-equal:\n  ${show(a)}\n  ${show(b)}`);
  },
  notDeepEqual(a: unknown, b: unknown, message?: string | Error) {
    if (deepEq(a, b, new Map())) fail(message ?? `unexpectedly deep-equal: ${show(a)}`);
  },
  notDeepStrictEqual(a: unknown, b: unknown, message?: string | Error) {
    if (deepEq(a, b, new Map())) fail(message ?? `unexpectedly deep-equal: ${show(a)}`);
  },
  match(s: string, re: RegExp, message?: string | Error) {
    if (!re.test(s)) fail(message ?? `${show(s)} does not match ${re}`);
  },
  doesNotMatch(s: string, re: RegExp, message?: string | Error) {
    if (re.test(s)) fail(message ?? `${show(s)} matches ${re}`);
  },
  throws(fn: () => unknown, expected?: Expected | string, message?: string) {
    try {
      fn();
    } catch (e) {
      checkError(e, typeof expected === "string" ? undefined : expected, message ?? (typeof expected === "string" ? expected : undefined));
      return;
    }
    fail(typeof expected === "string" ? expected : message ?? "Missing expected exception");
  },
  doesNotThrow(fn: () => unknown, message?: string) {
    try {
      fn();
    } catch (e) {
      fail(message ?? `Got unwanted exception: ${e instanceof Error ? e.message : String(e)}`);
    }
  },
  async rejects(p: Promise<unknown> | (() => Promise<unknown>), expected?: Expected | string, message?: string) {
    try {
      await (typeof p === "function" ? p() : p);
    } catch (e) {
      checkError(e, typeof expected === "string" ? undefined : expected, message);
      return;
    }
    fail(typeof expected === "string" ? expected : message ?? "Missing expected rejection");
  },
  async doesNotReject(p: Promise<unknown> | (() => Promise<unknown>), message?: string) {
    try {
      await (typeof p === "function" ? p() : p);
    } catch (e) {
      fail(message ?? `Got unwanted rejection: ${e instanceof Error ? e.message : String(e)}`);
    }
  },
});
(assert as unknown as Record<string, unknown>).strict = assert;

export default assert;
export const { equal, strictEqual, deepEqual, deepStrictEqual, notEqual, notDeepEqual, throws, rejects, match } = assert;
export { ok, fail, AssertionError };
