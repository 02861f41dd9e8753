// `npm test`: type-check, mocha on Node, then the core's tests inside XS; ends with the totals line
// `N passed, N failed, N skipped` that CI reads. Each stage's own output is shown as it runs. With
// CI=true a test skipping for a tool .ci/run installs fails instead (test/lib/skip.ts).
import { spawn } from "node:child_process";
import { mochaCounts, totalsLine, xsCounts } from "./test-totals.mjs";

function run(cmd, args, { parse } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, FORCE_COLOR: "0" } });
    let out = "";
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => {
        out += chunk;
        process.stdout.write(chunk);
      });
    }
    child.on("close", (code) => resolve({ code: code ?? 1, out, ...(parse ? parse(out) : {}) }));
  });
}

let passed = 0;
let failed = 0;
let skipped = 0;

for (const project of ["src/tsconfig.json", "tsconfig.json"]) {
  const r = await run("npx", ["--no-install", "tsc", "-p", project]);
  if (r.code === 0) passed++;
  else {
    failed++;
    console.log(`typecheck ${project}: FAILED`);
  }
}

const mocha = await run("npx", ["--no-install", "mocha", "--reporter", "spec"]);
const mc = mochaCounts(mocha.out);
passed += mc.passed;
failed += mc.failed;
skipped += mc.skipped;
if (mocha.code !== 0 && mc.failed === 0) {
  failed++;
  console.log(`mocha exited ${mocha.code} without reporting failures`);
}

const xs = await run("npx", ["--no-install", "tsx", "test/xs/run.ts"]);
const xm = xsCounts(xs.out);
if (xm) {
  passed += xm.passed;
  failed += xm.failed;
  skipped += xm.skipped;
}
if (!xm || xs.code !== 0) {
  if (!xm || xm.failed === 0) failed++;
  console.log("the XS run did not end with its own closing line and exit 0");
}

console.log(`\n${totalsLine({ passed, failed, skipped })}`);
process.exit(failed === 0 ? 0 : 1);
