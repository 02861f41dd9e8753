/**
 * Alarms end to end on the Node board (issue #10, "Detection feeds incidents"): a vendor whose TLS
 * certificate does not match the contract's pin (a real aedes broker over TLS, certificates from the
 * test CA, as test/node/outbound-*.test.ts) raises `tls-mismatch`; an audit partition near full
 * under a legal hold (a small partition, filled with the responder's notes) raises `log-near-full`.
 * Both as audit records and on the console at once.
 */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import mqtt from "mqtt";
import { bootNodeBoard, type RunningBoard } from "../../hosts/node/board.js";
import { makeTestCa, startAedesTls, type BrokerMessage, type TestBroker } from "../lib/test-ca.js";
import { vendorKeygen } from "../../tools/vendor-keygen.js";
import { demoPassword, until } from "../lib/home.js";

describe("incident alarms on the Node board", function () {
  this.timeout(90000);
  const dirs: string[] = [];
  const brokers: TestBroker[] = [];
  let board: RunningBoard | undefined;
  let device: mqtt.MqttClient | undefined;
  const tmp = (p: string) => (dirs.push(mkdtempSync(path.join(tmpdir(), p))), dirs.at(-1)!);

  afterEach(async () => {
    device?.end(true);
    device = undefined;
    await board?.stop();
    board = undefined;
  });
  after(async () => {
    for (const b of brokers) await b.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** The example home with only thermo-cloud, its destination on `port` with `pins`. */
  function home(port: number, pins: string[], gateway?: (g: { audit: Record<string, unknown> }) => void): string {
    const config = tmp("portcullis-alarms-config-");
    cpSync("examples/home", config, { recursive: true });
    rmSync(path.join(config, "contracts", "energy-insights.json"));
    const file = path.join(config, "contracts", "thermo-cloud.json");
    const c = JSON.parse(readFileSync(file, "utf8"));
    const key = vendorKeygen(path.join(tmp("portcullis-alarms-keys-"), "v.key"));
    Object.assign(c.destinations[0], { host: "localhost", port, publicKey: key.publicKey, keyId: key.keyId, pins });
    writeFileSync(file, JSON.stringify(c, null, 2));
    if (gateway) {
      const g = JSON.parse(readFileSync(path.join(config, "gateway.json"), "utf8"));
      gateway(g);
      writeFileSync(path.join(config, "gateway.json"), JSON.stringify(g, null, 2));
    }
    return config;
  }

  async function boot(config: string, ca: string): Promise<{ output: () => string }> {
    const out = new PassThrough();
    let output = "";
    out.setEncoding("utf8");
    out.on("data", (c: string) => (output += c));
    board = await bootNodeBoard({ configDir: config, dataDir: tmp("portcullis-alarms-data-"), mqttPort: 0, httpsPort: 0, demo: false, vendorCaPem: ca, host: "127.0.0.1", consoleInput: new PassThrough(), consoleOutput: out });
    return { output: () => output };
  }

  it("a vendor certificate that does not match the pin raises tls-mismatch (possible interception)", async () => {
    const pki = await makeTestCa();
    const seen: BrokerMessage[] = [];
    const vendor = await startAedesTls(pki.server, 0, false, seen);
    brokers.push(vendor);
    // Trusted by the CA, but the contract pins another key: what an interception proxy would look like.
    const { output } = await boot(home(vendor.port, [pki.foreign.pin]), pki.ca);
    device = await mqtt.connectAsync({ host: "127.0.0.1", port: board!.mqttPort, clientId: "thermostat-hall", username: "thermostat-hall", password: demoPassword("thermostat-hall"), protocolVersion: 4, reconnectPeriod: 0 });
    await device.publishAsync("home/thermostat-hall/telemetry", JSON.stringify({ temperature_c: 20, setpoint_c: 21 }), { qos: 1 });
    await until("the tls alarm on the console", () => (output().includes("ALARM: vendor TLS handshake or pin mismatch for thermo-cloud: possible interception") ? true : undefined), 30000);
    await board!.gateway.audit.log.flushSummaries();
    const alarms = board!.gateway.audit.log.query({ kind: "alarm" }).filter((r) => r.reason === "tls-mismatch");
    assert.equal(alarms.length, 1);
    assert.equal(alarms[0]!.integration, "thermo-cloud");
    assert.match(String(alarms[0]!.detail?.what), /pin/);
    const denied = board!.gateway.audit.log.query({ kind: "uplink" }).filter((r) => r.decision === "deny" && r.reason === "tls");
    assert.ok(denied.length >= 1 && denied[0]!.seq < alarms[0]!.seq, "the alarm follows the refused handshake");
    assert.equal(seen.length, 0, "nothing reached the vendor");
  });

  it("a small audit partition near full under a legal hold raises log-near-full", async () => {
    const pki = await makeTestCa();
    const vendor = await startAedesTls(pki.server, 0, false, []);
    brokers.push(vendor);
    const { output } = await boot(home(vendor.port, [pki.server.pin], (g) => (g.audit.partitionBytes = 32768)), pki.ca);
    const shell = board!.gateway.shell;
    assert.match(await shell.execute("incident open Log test --device thermostat-hall"), /opened inc-1/);
    assert.ok(board!.gateway.audit.held, "containment turned the hold on");
    const fill = () => board!.gateway.audit.log.stats();
    // What ordinary records may fill: the log keeps two sectors for its own (seals, hold records).
    const usable = 32768 - 2 * 4096;
    let notes = 0;
    while (fill().bytesUsed < 0.9 * usable && notes < 1000) {
      await shell.execute(`incident note inc-1 ${String(notes).padStart(4, "0")} ${"x".repeat(180)}`);
      notes++;
    }
    assert.ok(fill().bytesUsed >= 0.9 * usable, `filled with ${notes} notes: ${JSON.stringify(fill())}`);
    await until("the log-near-full alarm", () => (output().includes("ALARM: audit log ") && output().includes("full under legal hold") ? true : undefined), 15000);
    const a = board!.gateway.audit.log.query({ kind: "alarm" }).filter((r) => r.reason === "log-near-full");
    assert.equal(a.length, 1);
    assert.equal(a[0]!.detail?.total, usable);
    assert.ok(Number(a[0]!.detail?.used) >= 0.9 * usable);
    // Still before the log refuses records: the alarm came in time to act.
    assert.doesNotMatch(await shell.execute("incident note inc-1 still room"), /error/);
    assert.match(String(a[0]!.detail?.hold), /incident inc-1/);
  });
});
