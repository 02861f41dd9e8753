/**
 * Bundles a TypeScript entry with esbuild for XS (ES2022, one script) and runs it in xsnap.
 * `node:assert/strict` is aliased to the XS shim; nothing else from Node is available there.
 */
import { build } from "esbuild";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

export interface XsRun {
  /** Lines printed by the code, without the meter line. */
  readonly lines: string[];
  /** XS meter counts for the whole evaluation (compute = bytecode steps). */
  readonly meter: { compute: number; allocate: number; heapCount: number } | undefined;
  readonly exitCode: number;
}

/**
 * Test-only globals for libraries the tests use (fast-check reads `setTimeout` when it loads). The core
 * itself never touches them (a test enforces that); XS has no timers outside Moddable's `Timer`.
 */
const XS_PRELUDE = `// As on the firmware, where preloading freezes the built-ins: code that assigns to a frozen
// prototype's property (e.g. \`this.name = ...\` on an Error) fails here too.
Object.freeze(Error.prototype);
if (typeof globalThis.setTimeout !== "function") {
  globalThis.setTimeout = (fn, _ms, ...args) => { Promise.resolve().then(() => fn(...args)); return 0; };
  globalThis.clearTimeout = () => {};
}`;

/** Bundles `source` (TypeScript text, resolved relative to `resolveDir`) into one ES2022 script. */
export async function bundleForXs(source: string, resolveDir: string): Promise<string> {
  const out = await build({
    stdin: { contents: source, resolveDir, sourcefile: "xs-entry.ts", loader: "ts" },
    bundle: true,
    write: false,
    format: "iife",
    target: "es2022",
    platform: "neutral",
    mainFields: ["module", "main"],
    conditions: ["import", "default"],
    alias: { "node:assert/strict": path.join(here, "assert.ts"), "node:assert": path.join(here, "assert.ts") },
    logLevel: "error",
    banner: { js: XS_PRELUDE },
    // XS 13.3 (xsnap) mis-initialises a class binding read from its own static field initialiser
    // (noble-curves' `static BASE = new Point(...)`): lower static fields to assignments.
    supported: { "class-static-field": false },
  });
  const file = out.outputFiles[0];
  if (!file) throw new Error("esbuild produced no output");
  return file.text;
}

/** Runs a bundled script in a fresh xsnap worker. */
export async function runInXs(code: string): Promise<XsRun> {
  const dir = mkdtempSync(path.join(tmpdir(), "portcullis-xs-"));
  const file = path.join(dir, "bundle.js");
  writeFileSync(file, code);
  try {
    const child = spawn(process.execPath, [path.join(here, "xs-host.mjs"), file], { stdio: ["ignore", "pipe", "inherit"] });
    let text = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      text += chunk;
    });
    const exitCode: number = await new Promise((resolve) => child.on("close", (c) => resolve(c ?? 1)));
    const lines = text.split("\n").filter((l) => l.length > 0);
    const meterLine = lines.find((l) => l.startsWith("#meter "));
    return {
      lines: lines.filter((l) => !l.startsWith("#meter ")),
      meter: meterLine ? JSON.parse(meterLine.slice(7)) : undefined,
      exitCode,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
