/**
 * The Node board as a child process for the crash test (test/node/audit-crash.test.ts): boots on a
 * config and data folder, trusts the test CA for vendor TLS, prints "READY <mqtt> <https>", and stops
 * cleanly (sealing the log) on SIGTERM. The test kills it with SIGKILL at random points.
 *
 *   node --import tsx test/node/crash-board.ts <configDir> <dataDir> <caPemFile>
 */
import { readFileSync } from "node:fs";
import { PassThrough } from "node:stream";
import { bootNodeBoard } from "../../hosts/node/board.js";

const [configDir, dataDir, caFile] = process.argv.slice(2);
if (!configDir || !dataDir || !caFile) {
  process.stderr.write("usage: crash-board.ts <configDir> <dataDir> <caPemFile>\n");
  process.exit(2);
}
const board = await bootNodeBoard({
  configDir, dataDir, mqttPort: 0, httpsPort: 0, demo: false, host: "127.0.0.1",
  vendorCaPem: readFileSync(caFile, "utf8"), consoleInput: new PassThrough(), consoleOutput: new PassThrough(),
});
process.stdout.write(`READY ${board.mqttPort} ${board.httpsPort}\n`);
process.on("SIGTERM", () => {
  board.stop().then(() => process.exit(0), () => process.exit(1));
});
