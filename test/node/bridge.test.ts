/**
 * Bridge mode on the Node board against a real home broker: Debian's mosquitto, started here on a free
 * loopback port with a password file, and mosquitto_pub as the device. The demo vendor (aedes over
 * TLS) opens the HPKE envelope; the audit log is read from the gateway itself.
 */
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { bootNodeBoard, type RunningBoard } from "../../hosts/node/board.js";
import { parseGatewayConfig } from "../../src/config.js";
import { exampleOnFreePorts, freePort, until } from "../lib/home.js";
import { skipUnlessAvailable } from "../lib/skip.js";

const MOSQUITTO = "/usr/sbin/mosquitto";
const run = (cmd: string, args: string[]): Promise<string> =>
  new Promise((resolve, reject) => execFile(cmd, args, { timeout: 10_000 }, (e, out, err) => (e ? reject(Object.assign(e, { stderr: err })) : resolve(out))));

/** The home broker: mosquitto on 127.0.0.1:`port`, password file, no persistence. */
async function startHome(dir: string, port: number): Promise<ChildProcess> {
  const conf = path.join(dir, "home.conf");
  writeFileSync(conf, [`user ${userInfo().username}`, `listener ${port} 127.0.0.1`, "allow_anonymous false", `password_file ${path.join(dir, "home.pw")}`, "persistence false", "log_dest stderr", "log_type error"].join("\n") + "\n");
  const child = spawn(MOSQUITTO, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
  await until(`mosquitto on ${port} (${err})`, async () => (await run("mosquitto_pub", ["-h", "127.0.0.1", "-p", String(port), "-u", "dev", "-P", "dev-pw", "-t", "probe", "-m", "x"]).then(() => true, () => undefined)), 10_000);
  return child;
}
const stop = (c: ChildProcess): Promise<void> => new Promise((r) => (c.exitCode !== null ? r() : (c.once("exit", () => r()), c.kill("SIGTERM"))));

describe("bridge mode: a mosquitto home broker feeds the gateway", function () {
  this.timeout(60_000);
  let dir: string;
  let configDir: string;
  let board: RunningBoard;
  let home: ChildProcess;
  let homePort: number;
  let output = "";
  const consoleIn = new PassThrough();
  const consoleOut = new PassThrough();
  consoleOut.setEncoding("utf8");
  consoleOut.on("data", (c: string) => (output += c));
  const pub = (topic: string, message: string): Promise<string> => run("mosquitto_pub", ["-V", "mqttv311", "-h", "127.0.0.1", "-p", String(homePort), "-u", "dev", "-P", "dev-pw", "-q", "1", "-t", topic, "-m", message]);
  const records = async (): Promise<Record<string, any>[]> => {
    await board.gateway.audit.log.flushSummaries();
    const lines = await board.gateway.audit.exportJsonl(undefined, undefined);
    return lines.flatMap((l) => l.split("\n")).filter((l) => l.trim()).map((l) => JSON.parse(l)).filter((r) => r.kind !== undefined); // past the export header
  };

  before(async function () {
    skipUnlessAvailable(this, "mosquitto", await run(MOSQUITTO, ["-h"]).then(() => undefined, (e: { code?: unknown; stdout?: string }) => (e.code === "ENOENT" ? "mosquitto not installed" : undefined)), "apt-get install -y mosquitto");
    skipUnlessAvailable(this, "mosquitto-clients", await run("mosquitto_pub", ["--help"]).then(() => undefined, (e: { code?: unknown }) => (e.code === "ENOENT" ? "mosquitto_pub not installed" : undefined)), "apt-get install -y mosquitto-clients");
    dir = mkdtempSync(path.join(tmpdir(), "portcullis-bridge-"));
    homePort = await freePort();
    await run("mosquitto_passwd", ["-b", "-c", path.join(dir, "home.pw"), "dev", "dev-pw"]);
    await run("mosquitto_passwd", ["-b", path.join(dir, "home.pw"), "portcullis", "bridge-secret"]);
    home = await startHome(dir, homePort);
    configDir = await exampleOnFreePorts(mkdtempSync(path.join(tmpdir(), "portcullis-bridge-config-")));
    const g = JSON.parse(readFileSync(path.join(configDir, "gateway.json"), "utf8"));
    g.homeBroker = {
      url: `mqtt://127.0.0.1:${homePort}`, username: "portcullis", passwordFile: "home-broker.pw", subscribe: ["tele/#"],
      reconnectMinMs: 200, reconnectMaxMs: 1000,
      devices: [{ id: "thermostat-hall", pattern: "tele/thermostat/SENSOR", topic: "home/thermostat-hall/telemetry" }],
    };
    writeFileSync(path.join(configDir, "gateway.json"), JSON.stringify(g));
    writeFileSync(path.join(configDir, "home-broker.pw"), "bridge-secret\n", { mode: 0o600 });
    board = await bootNodeBoard({ configDir, dataDir: path.join(dir, "data"), mqttPort: 0, httpsPort: 0, demo: true, demoDevices: false, host: "127.0.0.1", consoleInput: consoleIn, consoleOutput: consoleOut });
    await until("the link up", () => ((board.gateway.status().homeBroker as { state: string }).state === "up" ? true : undefined));
  });
  after(async () => {
    await board?.stop();
    if (home) await stop(home);
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (configDir) rmSync(configDir, { recursive: true, force: true });
  });

  it("a mosquitto_pub to tele/thermostat/SENSOR reaches the vendor minimized and sealed, recorded as the thermostat's flow", async () => {
    await pub("tele/thermostat/SENSOR", JSON.stringify({ temperature_c: 20.5, setpoint_c: 21, humidity: 40, gps: { lat: 52.37, lon: 4.89 } }));
    const line = await until("the vendor to open the envelope", () => output.split("\n").find((l) => l.startsWith("[vendor ThermoCloud] seq")));
    assert.deepEqual(JSON.parse(line.slice(line.indexOf("{"))), { temperature_c: 20.5, setpoint_c: 21 }, "only the contracted fields, after HPKE open");
    // Allowed flows are kept as per-minute aggregates (flow-summary rows), as for a direct publish.
    const all = await records();
    const rows = all.filter((r) => r.kind === "flow-summary").flatMap((r) => (r.summary ?? []) as { device: string; decision: string; integration: string; count: number }[]);
    const row = rows.find((x) => x.device === "thermostat-hall" && x.decision === "minimize");
    assert.ok(row, `a minimize decision recorded for the thermostat: ${JSON.stringify(rows)}`);
    assert.equal(row.integration, "thermo-cloud");
  });

  it("denies a topic no device pattern claims and records it in aggregate (one record, a count)", async () => {
    for (let i = 0; i < 3; i++) await pub("tele/unknown-cam/SENSOR", `{"i":${i}}`);
    await until("three unmatched", () => ((board.gateway.status().homeBroker as { unmatched: number }).unmatched >= 3 ? true : undefined));
    const recs = (await records()).filter((r) => r.reason === "bridge-unmatched");
    assert.equal(recs.length, 1, "the first one at once; the rest counted in the window");
    assert.equal(recs[0]!.decision, "deny");
    assert.equal(recs[0]!.topic, "tele/unknown-cam/SENSOR");
    assert.equal(recs[0]!.device ?? null, null, "attributed to no device");
    assert.ok(!output.includes('"i":'), "nothing of it reached a vendor");
  });

  it("survives a home broker restart: status shows the link down, then up, and messages flow again", async () => {
    await stop(home);
    await until("the link down", () => ((board.gateway.status().homeBroker as { state: string }).state !== "up" ? true : undefined));
    const down = board.gateway.status().homeBroker as { state: string; failures: number; lastError?: string };
    assert.ok(down.failures >= 1 && down.lastError, JSON.stringify(down));
    consoleIn.write("status\n");
    const shown = await until("the console status", () => output.split("\n").find((l) => l.startsWith("home broker")));
    assert.match(shown, /^home broker {3}mqtt:\/\/127\.0\.0\.1:\d+ (DOWN|CONNECTING), \d+ failed attempts \(/);
    await new Promise((r) => setTimeout(r, 800)); // a few failed attempts with backoff
    home = await startHome(dir, homePort);
    await until("the link up again", () => ((board.gateway.status().homeBroker as { state: string }).state === "up" ? true : undefined));
    const before = output.split("\n").filter((l) => l.startsWith("[vendor ThermoCloud] seq")).length;
    await pub("tele/thermostat/SENSOR", JSON.stringify({ temperature_c: 19, setpoint_c: 20 }));
    await until("a second envelope", () => (output.split("\n").filter((l) => l.startsWith("[vendor ThermoCloud] seq")).length > before ? true : undefined));
    const recs = await records();
    assert.ok(recs.some((r) => r.kind === "uplink" && r.reason === "home-broker-down"));
    assert.ok(recs.filter((r) => r.kind === "uplink" && r.reason === "home-broker-up").length >= 2);
  });

  it("what the home broker holds while the gateway is off arrives after its reboot (persistent session, QoS 1)", async () => {
    await board.stop();
    await pub("tele/thermostat/SENSOR", JSON.stringify({ temperature_c: 17.25, setpoint_c: 18 }));
    const opened = (): string[] => output.split("\n").filter((l) => l.startsWith("[vendor ThermoCloud] seq") && l.includes("17.25"));
    assert.equal(opened().length, 0);
    board = await bootNodeBoard({ configDir, dataDir: path.join(dir, "data"), mqttPort: 0, httpsPort: 0, demo: true, demoDevices: false, host: "127.0.0.1", consoleInput: new PassThrough(), consoleOutput: consoleOut });
    const line = await until("the held message at the vendor", () => opened()[0]);
    assert.deepEqual(JSON.parse(line.slice(line.indexOf("{"))), { temperature_c: 17.25, setpoint_c: 18 });
  });

  it("validates homeBroker with JSON paths", () => {
    const base = JSON.parse(readFileSync("examples/home/gateway.json", "utf8"));
    const errs = (hb: unknown): string[] => {
      const r = parseGatewayConfig(JSON.stringify({ ...base, homeBroker: hb }), []);
      return r.ok ? [] : r.errors.map((e) => e.path);
    };
    assert.deepEqual(errs({ url: "http://x:1", subscribe: ["a/#"], devices: [{ id: "thermostat-hall", pattern: "a/b" }] }), ["/homeBroker/url"]);
    assert.deepEqual(errs({ url: "mqtt://h:1883", subscribe: ["a/#/b"], devices: [{ id: "nobody", pattern: "a/b" }] }), ["/homeBroker/subscribe/0", "/homeBroker/devices/0/id"]);
    assert.deepEqual(errs({ url: "mqtt://h:1883", password: "p", passwordFile: "f", subscribe: ["a"], devices: [{ id: "thermostat-hall", pattern: "a", topic: "x/+" }], extra: 1 }), ["/homeBroker/extra", "/homeBroker/password", "/homeBroker/devices/0/topic"]);
    assert.deepEqual(errs({ url: "mqtts://[::1]:8883", ca: "ca.pem", subscribe: ["tele/+/SENSOR"], devices: [{ id: "thermostat-hall", pattern: "tele/thermostat/SENSOR" }] }), []);
  });
});
