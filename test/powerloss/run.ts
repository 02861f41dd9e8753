/**
 * `npm run test:powerloss`: the full power-loss run (every erase and program cut, three tear modes).
 * Prints `powerloss: <cuts> cuts, <lost> lost, <corrupt> corrupt` and exits non-zero on any loss or
 * corruption. Options: --ops N (default 320), --step N (default 1), --sectors N (default 8).
 */
import { runPowerloss } from "./workload.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1) {
    console.error(`--${name} needs a positive integer, e.g. --${name} ${fallback}`);
    process.exit(2);
  }
  return v;
}

const started = Date.now();
const r = await runPowerloss({
  ops: arg("ops", 320),
  step: arg("step", 1),
  sectors: arg("sectors", 8),
  progress: (line) => console.log(line),
});
for (const f of r.failures.slice(0, 20)) console.log(`  ${f}`);
console.log(`powerloss: ${r.cuts} cuts, ${r.lost} lost, ${r.corrupt} corrupt (${r.operations} flash operations per run, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
process.exit(r.lost === 0 && r.corrupt === 0 && r.failures.length === 0 ? 0 : 1);
