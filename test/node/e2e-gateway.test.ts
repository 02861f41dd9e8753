/**
 * The walking skeleton end to end on the Node board: a real mqtt.js device, the gateway's own broker,
 * contracts from the example home, vendor brokers (aedes over TLS, certificates from a CA made at
 * start) receiving HPKE envelopes, the audit log pulled over HTTPS with the owner token, the console.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { bootNodeBoard, type RunningBoard } from "../../hosts/node/board.js";
import { connectDevice as connect, demoPassword as password, exampleOnFreePorts, httpsGet as get, until } from "../lib/home.js";

describe("end to end on the Node board", function () {
  this.timeout(60000);
  let data: string;
  let configDir: string;
  let board: RunningBoard;
  let output: string;
  const consoleIn = new PassThrough();
  const consoleOut = new PassThrough();
  consoleOut.setEncoding("utf8");
  consoleOut.on("data", (c: string) => (output += c));

  const boot = () =>
    bootNodeBoard({ configDir, dataDir: data, mqttPort: 0, httpsPort: 0, demo: true, demoDevices: false, host: "127.0.0.1", consoleInput: consoleIn, consoleOutput: consoleOut });

  before(async () => {
    output = "";
    data = mkdtempSync(path.join(tmpdir(), "portcullis-e2e-"));
    configDir = await exampleOnFreePorts(mkdtempSync(path.join(tmpdir(), "portcullis-e2e-config-")));
    board = await boot();
  });
  after(async () => {
    await board?.stop();
    rmSync(data, { recursive: true, force: true });
    rmSync(configDir, { recursive: true, force: true });
  });

  it("makes first-boot secrets private and prints nothing of the owner token", () => {
    const token = readFileSync(path.join(data, "owner.token"), "utf8").trim();
    assert.equal(statSync(path.join(data, "owner.token")).mode & 0o777, 0o600);
    assert.ok(existsSync(path.join(data, "audit-verification.key")));
    const secret = token.slice("pct_".length);
    assert.equal(secret.length, 43);
    assert.doesNotMatch(output, /pct_[A-Za-z0-9_-]/, "not even the token's first characters are printed");
    // Windows of 6 (not 4): random text in the output (temp dir names) would match 4 by chance too often.
    for (let i = 0; i + 6 <= secret.length; i++) assert.ok(!output.includes(secret.slice(i, i + 6)), "no piece of the token's secret part is printed");
    assert.match(output, /fingerprint [0-9A-F:]{95}/);
  });

  it("forwards only contracted fields, sealed to the vendor, and denies what no contract claims", async () => {
    const dev = await connect(board.mqttPort, "thermostat-hall", password("thermostat-hall"));
    try {
      const reading = { temperature_c: 21.5, setpoint_c: 21, humidity: 40, occupancy: true, gps: { lat: 52.37, lon: 4.89 } };
      await dev.publishAsync("home/thermostat-hall/telemetry", JSON.stringify(reading), { qos: 1 });
      await dev.publishAsync("home/thermostat-hall/camera-snapshot", JSON.stringify({ image: "..." }), { qos: 1 });
      const line = await until("the vendor to open the envelope", () => output.split("\n").find((l) => l.startsWith("[vendor ThermoCloud] seq")));
      const json = JSON.parse(line.slice(line.indexOf("{")));
      assert.deepEqual(json, { temperature_c: 21.5, setpoint_c: 21 });
    } finally {
      dev.end(true);
    }
  });

  it("refuses an unknown client with CONNACK 5 and records the refusal", async () => {
    await assert.rejects(connect(board.mqttPort, "unknown-camera", "admin"), (e: Error & { code?: number }) => e.code === 5);
    const token = readFileSync(path.join(data, "owner.token"), "utf8").trim();
    const r = await until("the refusal in the log", async () => {
      const res = await get(board.httpsPort, "/api/v1/audit?kind=auth&limit=50", token);
      return res.body.includes("unknown-camera") ? res : undefined;
    });
    // Refusals are unauthenticated noise: one record per source × reason × minute, with a count.
    const rec = r.body.trim().split("\n").map((l) => JSON.parse(l)).find((x) => x.detail?.claimed === "unknown-camera");
    assert.equal(rec.decision, "deny");
    assert.equal(rec.device, null, "a refused login names no device");
    assert.ok(rec.detail.count >= 1);
  });

  it("serves audit records with allow and deny decisions over HTTPS, only with the token", async () => {
    const token = readFileSync(path.join(data, "owner.token"), "utf8").trim();
    assert.equal((await get(board.httpsPort, "/api/v1/audit")).status, 401);
    assert.equal((await get(board.httpsPort, "/api/v1/audit", "pct_wrong")).status, 401);
    const records = await until("allow and deny records", async () => {
      const res = await get(board.httpsPort, "/api/v1/audit?since=0&limit=1000", token);
      assert.equal(res.status, 200);
      assert.match(res.type, /application\/x-ndjson/);
      const recs = res.body.trim().split("\n").map((l) => JSON.parse(l));
      const flowDecisions = new Set(recs.filter((x) => x.kind === "flow" || x.kind === "flow-summary").map((x) => x.decision));
      return flowDecisions.has("minimize") && flowDecisions.has("deny") ? recs : undefined;
    }, 20000);
    for (const r of records) {
      for (const k of ["seq", "time", "kind", "decision", "device", "integration", "topic", "rule", "reason"]) assert.ok(k in r, `record ${r.seq} lacks ${k}`);
      assert.match(r.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
    const denied = records.find((r) => r.decision === "deny" && r.topic === "home/thermostat-hall/camera-snapshot");
    assert.ok(denied, "the camera snapshot is denied");
    assert.equal(denied.reason, "no-contract");
    const minimized = records.find((r) => r.kind === "flow-summary" && r.decision === "minimize" && r.device === "thermostat-hall");
    assert.ok(minimized, "the over-collecting thermostat's flow is minimized");
    assert.equal(minimized.integration, "thermo-cloud");
    assert.equal(minimized.rule, "thermostat-state");
    assert.ok(minimized.count >= 1 && minimized.fieldsDropped >= 3, JSON.stringify(minimized));
  });

  it("answers status and unknown commands on the console", async () => {
    assert.match(await board.gateway.shell.execute("status"), /devices\s+\d+ connected of 4 configured[\s\S]*certificate\s+SHA-256 [0-9A-F:]{95}/);
    const unknown = await board.gateway.shell.execute("frobnicate");
    assert.match(unknown, /^error: unknown command "frobnicate"; commands: .*help.*status/);
    assert.equal(unknown.split("\n").length, 1);
  });

  it("continues the audit sequence after a restart with the same data", async () => {
    const before = board.gateway.audit.log.nextSeq;
    await board.stop();
    board = await boot();
    assert.ok(board.gateway.audit.log.nextSeq > before, `${board.gateway.audit.log.nextSeq} > ${before}`);
    const token = readFileSync(path.join(data, "owner.token"), "utf8").trim();
    const res = await get(board.httpsPort, `/api/v1/audit?since=${before}&kind=boot`, token);
    assert.equal(res.body.trim().split("\n").length, 1);
  });
});
