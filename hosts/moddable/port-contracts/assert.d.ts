/**
 * Typings of `node:assert/strict` as the XS shim (test/xs/assert.ts) implements it, for the port
 * contract app (assert.js). Same signatures as @types/node's strict assert, for the subset the shim has.
 */
type Expected = RegExp | ((e: unknown) => boolean) | (new (...args: never[]) => unknown) | Record<string, unknown>;

declare class AssertionError extends Error {
  constructor(message: string);
}

declare function assert(value: unknown, message?: string | Error): asserts value;
declare namespace assert {
  export { AssertionError };
  export function ok(value: unknown, message?: string | Error): asserts value;
  export function fail(message?: string | Error): never;
  export function equal<T>(actual: unknown, expected: T, message?: string | Error): asserts actual is T;
  export function strictEqual<T>(actual: unknown, expected: T, message?: string | Error): asserts actual is T;
  export function notEqual(actual: unknown, expected: unknown, message?: string | Error): void;
  export function notStrictEqual(actual: unknown, expected: unknown, message?: string | Error): void;
  export function deepEqual<T>(actual: unknown, expected: T, message?: string | Error): asserts actual is T;
  export function deepStrictEqual<T>(actual: unknown, expected: T, message?: string | Error): asserts actual is T;
  export function notDeepEqual(actual: unknown, expected: unknown, message?: string | Error): void;
  export function notDeepStrictEqual(actual: unknown, expected: unknown, message?: string | Error): void;
  export function match(value: string, pattern: RegExp, message?: string | Error): void;
  export function doesNotMatch(value: string, pattern: RegExp, message?: string | Error): void;
  export function throws(fn: () => unknown, expected?: Expected | string, message?: string): void;
  export function doesNotThrow(fn: () => unknown, message?: string): void;
  export function rejects(p: Promise<unknown> | (() => Promise<unknown>), expected?: Expected | string, message?: string): Promise<void>;
  export function doesNotReject(p: Promise<unknown> | (() => Promise<unknown>), message?: string): Promise<void>;
  export { assert as strict };
}
export default assert;
