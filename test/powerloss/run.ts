/**
 * `npm run test:powerloss`: the full power-loss run: every erase and program cut in three tear modes,
 * every key-store write cut (lost or done), and after each of those the recovery boot cut again at
 * every one of its writes. Runs the workload with and without group commit, then the outbound queue.
 * Prints `powerloss: <cuts> cuts, <lost> lost, <corrupt> corrupt` and exits non-zero on any loss or
 * corruption. Options: --ops N (default 320), --step N (default 1), --sectors N (default 6),
 * --recovery-step N (default 1), --key-step N (default 1).
 */
import { runPowerloss } from "./workload.js";
import { runQueuePowerloss } from "./queue.js";

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
let cuts = 0;
let lost = 0;
let corrupt = 0;
let failures = 0;
// Both write paths: group commit (5 ms window, batches programmed together) and one program per append.
for (const groupCommitMs of [5, 0]) {
  const r = await runPowerloss({
    ops: arg("ops", 320),
    step: arg("step", 1),
    sectors: arg("sectors", 6),
    recoveryStep: arg("recovery-step", 1),
    keyStep: arg("key-step", 1),
    groupCommitMs,
    progress: (line) => console.log(line),
  });
  for (const f of r.failures.slice(0, 20)) console.log(`  ${f}`);
  const first = r.cuts - r.keyCuts - r.recoveryCuts;
  console.log(`  group commit ${groupCommitMs} ms: ${r.cuts} cuts (${first} at flash operations of ${r.operations}, ${r.keyCuts} at key-store writes of ${r.keyWrites}, ${r.recoveryCuts} second cuts in recovery), ${r.lost} lost, ${r.corrupt} corrupt; records ${r.mix.firstSeq}..${r.mix.nextSeq! - 1} kept, ${r.mix["record:purge"] ?? 0} purge records`);
  cuts += r.cuts;
  lost += r.lost;
  corrupt += r.corrupt;
  failures += r.failures.length;
}
// The outbound queue on its own ring (issue 5): pushes and acknowledgements, every cut, three tears, second cuts in recovery.
const q = await runQueuePowerloss({ pushes: 40, size: 700, sectors: 8, recoveryStep: arg("recovery-step", 1) });
for (const f of q.failures.slice(0, 20)) console.log(`  ${f}`);
console.log(`  outbound queue: ${q.cuts} cuts (${q.recoveryCuts} second cuts in recovery), ${q.lost} lost, ${q.unknown + q.reordered} corrupt`);
cuts += q.cuts;
lost += q.lost;
corrupt += q.unknown + q.reordered;
failures += q.failures.length;
console.log(`powerloss: ${cuts} cuts, ${lost} lost, ${corrupt} corrupt (${((Date.now() - started) / 1000).toFixed(1)} s)`);
process.exit(lost === 0 && corrupt === 0 && failures === 0 ? 0 : 1);
