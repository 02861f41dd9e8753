/**
 * `npm run bench`: runs every bench/*.bench.ts (each exports a default async function returning named
 * figures) and prints them. Figures, not pass/fail: speed and memory targets are read here, never in
 * timed tests. `npm run bench -- audit` runs only the files whose name contains "audit".
 */
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();

let failed = 0;
for (const f of files) {
  const started = Date.now();
  process.stdout.write(`\n## ${f.replace(".bench.ts", "")}\n`);
  try {
    const mod = (await import(pathToFileURL(path.join(here, f)).href)) as { default: () => Promise<Record<string, number | string>> };
    const figures = await mod.default();
    const width = Math.max(...Object.keys(figures).map((k) => k.length));
    for (const [k, v] of Object.entries(figures)) {
      const shown = typeof v === "number" ? (Number.isInteger(v) ? v.toLocaleString("en-US") : v.toLocaleString("en-US", { maximumFractionDigits: 3 })) : v;
      process.stdout.write(`${k.padEnd(width)}  ${shown}\n`);
    }
    process.stdout.write(`(${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  } catch (e) {
    failed++;
    process.stdout.write(`FAILED: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  }
}
process.exit(failed ? 1 : 0);
