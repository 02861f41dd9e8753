/*
 * The contract suites import the core's byte helpers by their repository path (`../../src/util/bytes.js`,
 * which XS resolves to `src/util/bytes`); the ports import the same file as `portcullis/util/bytes`.
 * An XS archive holds one module per source file, so `src/util/bytes` is this re-export.
 */
export * from "portcullis/util/bytes";
