/**
 * Firmware entry point: reads the build configuration, opens the board's ports, runs the self-test,
 * reads the provisioning, sets the clock by SNTP, serves a status line over HTTPS and starts the
 * console. The gateway core (src/gateway.ts, `startGateway(board, config)`) replaces the status server
 * and the console handler at the point marked "gateway" once it exists on main.
 */
import { createBoard, type ModdableBoard } from "portcullis/moddable/board";
import { readConfig, type FirmwareConfig } from "portcullis/moddable/config";
import { syncTime } from "portcullis/moddable/clock";
import { TlsNetwork, loadServerIdentity } from "portcullis/moddable/https";
import { serveText } from "portcullis/moddable/status-http";
import { memory } from "portcullis/memory";
import { readProvisioning } from "portcullis/moddable/provisioning";
import { selfTest } from "portcullis/moddable/selftest";

function status(board: ModdableBoard, config: FirmwareConfig, bootedAt: number): string {
  const time = board.clock.isSet() ? new Date(board.clock.now()).toISOString() : "time not yet set";
  const up = Math.round((board.clock.monotonic() - bootedAt) / 1000);
  return `status: ${config.name} up ${up} s, ${time}, devices ${board.network.open}`;
}

/** Heap figures in bytes: used / peak / maximum of the chunk and slot heaps. */
function memoryLine(): string {
  const m = memory();
  return `memory: chunk ${m.chunkUsed}/${m.chunkPeak}/${m.chunkMaximum} slots ${m.slotUsed}/${m.slotPeak}/${m.slotMaximum} (slot ${m.slotSize} B)`;
}

function boot(): void {
  const config = readConfig();
  const board = createBoard(config);
  const bootedAt = board.clock.monotonic();
  const say = (line: string): void => board.console.write(`${line}\n`);
  say(`portcullis firmware on ${config.name}`);

  const result = selfTest(board);
  const timings = Object.entries(result.timings).map(([k, v]) => `${k}=${v}ms`).join(" ");
  say(`selftest: ${result.passed} passed, ${result.failures.length} failed (${timings})`);
  for (const failure of result.failures) say(`selftest FAILED ${failure}`);
  if (result.failures.length > 0) {
    say("boot stopped: a port gave a wrong answer");
    return; // fail closed: never run the gateway on a board whose crypto or flash is wrong
  }

  const start = board.clock.monotonic();
  const server = loadServerIdentity(board.keys, board.crypto, config.name);
  say(`https identity ready in ${board.clock.monotonic() - start} ms; certificate SHA-256 ${server.fingerprint}`);

  const provisioning = readProvisioning(board.keys);
  say(`provisioning: ${provisioning.integrations.length} integrations, owner token ${provisioning.ownerTokenHash ? "set" : "NOT set"}`);

  if (config.sntp !== "") syncTime(board.clock, config.sntp, say);
  // gateway: here main will call startGateway(board, { ...provisioning, https, ports }) and hand the
  // console's lines to it; until then a status line over HTTPS proves the TLS server end to end.
  const https = new TlsNetwork(board.network, server.identity);
  serveText(https, config.httpsPort, () => status(board, config, bootedAt));
  say(`https on port ${config.httpsPort}`);
  board.console.start((line) => {
    const command = line.trim();
    if (command === "status") say(status(board, config, bootedAt));
    else if (command === "memory") say(memoryLine());
    else say(`unknown command: ${command}`);
  });
  say("ready");
}

try {
  boot();
} catch (e) {
  trace(`portcullis boot failed: ${String(e)}\n`);
}
