// `npm test`: type-check, mocha on Node, then the core's tests inside XS; ends with the totals line
// `N passed, N failed` that CI reads. Each stage's own output is shown as it runs.
import { spawn } from "node:child_process";

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

for (const project of ["src/tsconfig.json", "tsconfig.json"]) {
  const r = await run("npx", ["--no-install", "tsc", "-p", project]);
  if (r.code === 0) passed++;
  else {
    failed++;
    console.log(`typecheck ${project}: FAILED`);
  }
}

const mocha = await run("npx", ["--no-install", "mocha", "--reporter", "spec"]);
const mp = /(\d+) passing/.exec(mocha.out);
const mf = /(\d+) failing/.exec(mocha.out);
const mochaPassed = mp ? Number(mp[1]) : 0;
const mochaFailed = mf ? Number(mf[1]) : 0;
passed += mochaPassed;
failed += mochaFailed;
if (mocha.code !== 0 && mochaFailed === 0) {
  failed++;
  console.log(`mocha exited ${mocha.code} without reporting failures`);
}

const xs = await run("npx", ["--no-install", "tsx", "test/xs/run.ts"]);
const xm = /^xs: (\d+) passed, (\d+) failed/m.exec(xs.out);
if (xm) {
  passed += Number(xm[1]);
  failed += Number(xm[2]);
}
if (!xm || xs.code !== 0) {
  if (!xm || Number(xm[2]) === 0) failed++;
  console.log("the XS run did not end with its own closing line and exit 0");
}

console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
