/**
 * Runs the core's unit tests (test/core/**\/*.test.ts) inside XS via xsnap, with the Crypto port on
 * @noble, one xsnap worker per file. A file counts only when XS itself prints its closing
 * `xs: N passed, M failed` — xsnap exits 0 even when a module fails to load, so its exit code proves
 * nothing; a file without that line is a failure. Ends with the totals line `xs: N passed, M failed`.
 */
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bundleForXs, runInXs } from "./xsnap.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

const only = process.argv.slice(2);
const files = only.length ? only.map((f) => path.resolve(f)) : findTests(path.join(root, "test/core"));

/**
 * One fresh xsnap worker per test file, two at a time: a worker's heap only grows (XS collects, but
 * the chunk heap it reached stays), and one worker for all files spent most of its time collecting
 * (about 16 minutes of wall time for 2.7 billion computrons, against about 4 when split).
 */
const PARALLEL = 2;

async function runFile(file: string): Promise<{ passed: number; failed: number; lines: string[]; compute: number }> {
  const entry = [
    `import { runAll } from ${JSON.stringify(path.join(root, "test/xs/harness.ts"))};`,
    `import ${JSON.stringify(file)};`,
    `runAll();`,
  ].join("\n");
  const run = await runInXs(await bundleForXs(entry, root));
  const final = run.lines.at(-1) ?? "";
  const m = /^xs: (\d+) passed, (\d+) failed/.exec(final);
  const name = path.relative(root, file);
  if (!m) return { passed: 0, failed: 1, lines: [...run.lines, `${name}: the XS run did not finish (no closing line from the harness)`], compute: 0 };
  return { passed: Number(m[1]), failed: Number(m[2]), lines: run.lines.slice(0, -1).concat(`  (${name}: ${m[1]} passed, ${m[2]} failed)`), compute: run.meter?.compute ?? 0 };
}

let passed = 0;
let failed = 0;
let compute = 0;
const queue = [...files];
await Promise.all(
  Array.from({ length: Math.min(PARALLEL, queue.length) }, async () => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
      const r = await runFile(f);
      for (const line of r.lines) console.log(line);
      passed += r.passed;
      failed += r.failed;
      compute += r.compute;
    }
  }),
);
console.log(`xs meter: ${compute} computrons over ${files.length} test files`);
console.log(`xs: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && files.length > 0 ? 0 : 1);
