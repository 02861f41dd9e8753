/*
 * `node:assert/strict` for the port contract app: the XS shim (test/xs/assert.ts), re-exported under the
 * specifier the contract suites import, with explicit typings (assert.d.ts) so that TypeScript accepts
 * the shim's assertion functions (TS2775 needs declared types for `asserts` signatures).
 */
export { default } from "test/xs/assert";
export * from "test/xs/assert";
