// Runs one JavaScript bundle inside XS (xsnap) and relays its `print` output. Usage:
//   node test/xs/xs-host.mjs <bundle.js>
// A separate process because xsnap's Node API needs SES lockdown (`@endo/init`), which must not
// touch the test runner's own realm. The last stdout line is a JSON meter report: `#meter {...}`.
import "@endo/init";
import { xsnap } from "@agoric/xsnap";
import { spawn } from "node:child_process";
import os from "node:os";
import fs from "node:fs";
import fsp from "node:fs/promises";

const file = process.argv[2];
if (!file) {
  console.error("usage: node test/xs/xs-host.mjs <bundle.js>");
  process.exit(2);
}
const code = fs.readFileSync(file, "utf8");
const worker = await xsnap({
  os: os.type(),
  spawn,
  fs: { ...fsp, createReadStream: fs.createReadStream },
  name: "portcullis-xs",
  stdout: "inherit",
  stderr: "inherit",
  meteringLimit: 0,
});
let status = 0;
try {
  const result = await worker.evaluate(code);
  process.stdout.write(`#meter ${JSON.stringify({ compute: result.meterUsage.compute, allocate: result.meterUsage.allocate, heapCount: result.meterUsage.currentHeapCount })}\n`);
} catch (e) {
  process.stdout.write(`xs-host: evaluation failed: ${e && e.message}\n`);
  status = 1;
} finally {
  await worker.close().catch(() => undefined);
}
process.exit(status);
