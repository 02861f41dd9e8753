import { runPowerloss } from "./workload.js";
const t = Date.now();
const r = await runPowerloss({ ops: Number(process.argv[2] ?? 100), step: Number(process.argv[3] ?? 7) });
console.log(r.mix, r.operations, r.cuts, r.lost, r.corrupt, Date.now() - t, "ms");
for (const f of r.failures.slice(0, 30)) console.log(f);
