/**
 * Board profiles on the Node board with real mqtt.js devices over TCP (issues #9 and #14): the 9th
 * device on esp32 gets CONNACK 3 and a record while 8 stay served, 50 devices on the node profile all
 * connect, a contract rejected at load shows `blocked: <reason>` in GET /api/v1/status, and a flood
 * against a small pipeline pauses the devices' sockets without growth and without loss.
 */
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import mqtt from "mqtt";
import { bootNodeBoard, type RunningBoard } from "../../hosts/node/board.js";
import { nodeCrypto } from "../../hosts/node/crypto.js";
import { makeDeviceSecret } from "../../src/config.js";
import type { ProfileName } from "../../src/profiles.js";
import { httpsGet, until } from "../lib/home.js";

const crypto = nodeCrypto();
const secret = makeDeviceSecret(crypto, new Uint8Array(16).fill(7), "pw");

function connect(port: number, clientId: string): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect({ host: "127.0.0.1", port, clientId, username: clientId, password: "pw", protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10000, keepalive: 60 });
    c.once("connect", () => resolve(c));
    c.once("error", (e) => {
      c.end(true);
      reject(e);
    });
  });
}

const contract = (id: string, device: string, topics: string[]) =>
  JSON.stringify({
    format: 1, id, version: "1.0.0", vendor: "V", contact: "privacy@v.example", purpose: "Shows a reading in the vendor's app.", effective: "2026-01-01",
    destinations: [{ id: "d", protocol: "mqtts", host: "127.0.0.1", port: 1, topic: "v/{device-pseudonym}/state", encryption: "none" }],
    flows: [{ id: "state", destination: "d", devices: [device], topics, fields: [{ path: "/temperature_c", class: "environment" }], rate: { perMinute: 600, minIntervalMs: 0 } }],
    terms: { retentionDays: 30, consent: { environment: false }, sla: { uptimePercent: 99, maxLatencyMs: 1000 }, exit: { exportFormat: "json", deletionDays: 30 }, queue: { maxBytes: 8192, overflow: "drop-oldest", ttlSeconds: 3600 } },
  });

describe("board profiles on the Node board (mqtt.js over TCP)", function () {
  this.timeout(60000);
  const dirs: string[] = [];
  let board: RunningBoard | undefined;
  let clients: mqtt.MqttClient[] = [];
  let output = "";

  async function boot(gateway: Record<string, unknown>, profile?: ProfileName, contracts: Record<string, string> = {}): Promise<RunningBoard> {
    const configDir = mkdtempSync(path.join(tmpdir(), "portcullis-profiles-config-"));
    const dataDir = mkdtempSync(path.join(tmpdir(), "portcullis-profiles-data-"));
    dirs.push(configDir, dataDir);
    writeFileSync(path.join(configDir, "gateway.json"), JSON.stringify({ name: "profiles", audit: { groupCommitMs: 0 }, ...gateway }));
    mkdirSync(path.join(configDir, "contracts"));
    for (const [name, text] of Object.entries(contracts)) writeFileSync(path.join(configDir, "contracts", name), text);
    const consoleOut = new PassThrough();
    consoleOut.setEncoding("utf8");
    consoleOut.on("data", (c: string) => (output += c));
    board = await bootNodeBoard({ configDir, dataDir, mqttPort: 0, httpsPort: 0, demo: false, host: "127.0.0.1", consoleInput: new PassThrough(), consoleOutput: consoleOut, ...(profile ? { profile } : {}) });
    return board;
  }
  const devices = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `d${i}`, secret }));

  afterEach(async () => {
    for (const c of clients) c.end(true);
    clients = [];
    await board?.stop();
    board = undefined;
    output = "";
  });
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("esp32 (--profile): the 9th device gets CONNACK 3 and an audit record while the 8 stay served", async () => {
    const b = await boot({ devices: devices(8) }, "esp32");
    clients = await Promise.all(devices(8).map((d) => connect(b.mqttPort, d.id)));
    await assert.rejects(connect(b.mqttPort, "d8"), (e: Error & { code?: number }) => e.code === 3);
    assert.equal(b.gateway.broker.clients().length, 8);
    // The 8 are still served: a QoS 1 publish is acknowledged.
    await new Promise<void>((resolve, reject) => clients[0]!.publish("home/d0/telemetry", '{"temperature_c":1}', { qos: 1 }, (e) => (e ? reject(e) : resolve())));
    const st = b.gateway.status() as { profile: string; limits: { sessions: { used: number; limit: number; hits: number } } };
    assert.equal(st.profile, "esp32");
    assert.deepEqual([st.limits.sessions.used, st.limits.sessions.limit, st.limits.sessions.hits], [8, 8, 1]);
    await b.gateway.audit.log.flushSummaries();
    const rec = b.gateway.audit.log.query({ kind: "connect" }).find((r) => r.decision === "deny" && r.reason === "limit");
    assert.equal(rec?.detail?.claimed, "d8");
    assert.match(await b.gateway.shell.execute("status"), /sessions +8\/8 +reached 1×/);
  });

  it("a gateway.json that raises a limit above --profile does not boot, and says which key", async () => {
    await assert.rejects(boot({ devices: devices(2), limits: { sessions: 9 } }, "esp32"), /\/limits\/sessions: at most 8 on the esp32 profile/);
    await assert.rejects(boot({ devices: devices(9) }, "esp32"), /\/devices\/8: at most 8 devices on the esp32 profile/);
  });

  it("node (the default): 50 devices all connect and are served", async () => {
    const b = await boot({ devices: devices(50) });
    clients = await Promise.all(devices(50).map((d) => connect(b.mqttPort, d.id)));
    assert.equal(b.gateway.broker.clients().length, 50);
    await Promise.all(clients.map((c, i) => new Promise<void>((resolve, reject) => c.publish(`home/d${i}/telemetry`, "{}", { qos: 1 }, (e) => (e ? reject(e) : resolve())))));
    const st = b.gateway.status() as { profile: string; limits: { sessions: { used: number; limit: number; hits: number } } };
    assert.equal(st.profile, "node");
    assert.deepEqual([st.limits.sessions.used, st.limits.sessions.limit, st.limits.sessions.hits], [50, 50, 0]);
  });

  it("a contract over a limit is `blocked: <reason>` in GET /api/v1/status, with an alarm record", async () => {
    const fifty = Array.from({ length: 50 }, (_, i) => `home/d1/t${i}`);
    const b = await boot({ devices: devices(2) }, undefined, { "cam-cloud.json": contract("cam-cloud", "d1", fifty) });
    const token = readFileSync(path.join(dirs.at(-1)!, "owner.token"), "utf8").trim();
    const res = await httpsGet(b.httpsPort, "/api/v1/status", token);
    assert.equal(res.status, 200);
    const st = JSON.parse(res.body) as { integrations: { id: string; state: string; blocked?: string }[]; limits: Record<string, { used: number; limit: number }> };
    assert.deepEqual(st.integrations.map((i) => [i.id, i.state, i.blocked]), [["cam-cloud", "blocked", "/flows/0/topics: more than the limit of 8 topic filters per rule"]]);
    assert.deepEqual(Object.keys(st.limits).slice(0, 5), ["sessions", "pending", "integrations", "pipelineBytes", "queueBytes"]);
    assert.equal(b.gateway.audit.log.query({ kind: "alarm" })[0]?.integration, "cam-cloud");
    assert.match(output, /ALARM: integration cam-cloud blocked: \/flows\/0\/topics/);
    const c = await connect(b.mqttPort, "d1");
    clients.push(c);
    await new Promise<void>((resolve, reject) => c.publish("home/d1/t7", '{"temperature_c":1}', { qos: 1 }, (e) => (e ? reject(e) : resolve())));
    const flow = b.gateway.audit.log.query({ kind: "flow" }).find((r) => r.device === "d1");
    assert.deepEqual([flow?.decision, flow?.integration, flow?.reason], ["deny", "cam-cloud", "blocked"]);
  });

  it("a flood against a 4 KiB pipeline: sockets paused, the pipeline held near its bound, every PUBACKed message recorded", async () => {
    const n = 20;
    const perDevice = 20;
    const limit = 4096;
    const b = await boot({ devices: devices(n), limits: { pipelineBytes: limit }, audit: { groupCommitMs: 20 } });
    clients = await Promise.all(devices(n).map((d) => connect(b.mqttPort, d.id)));
    const payload = JSON.stringify({ temperature_c: 1, pad: "x".repeat(1000) });
    let peakSeen = 0;
    let pausedSeen = false;
    const sampler = setInterval(() => {
      const l = (b.gateway.status() as { limits: { pipelineBytes: { used: number }; devicesPaused: boolean } }).limits;
      peakSeen = Math.max(peakSeen, l.pipelineBytes.used);
      pausedSeen ||= l.devicesPaused;
    }, 2);
    const acked: Promise<void>[] = [];
    for (const [i, c] of clients.entries()) {
      for (let k = 0; k < perDevice; k++) acked.push(new Promise<void>((resolve, reject) => c.publish(`home/d${i}/telemetry`, payload, { qos: 1 }, (e) => (e ? reject(e) : resolve()))));
    }
    await Promise.all(acked);
    clearInterval(sampler);
    const st = b.gateway.status() as { limits: { pipelineBytes: { used: number; limit: number; hits: number }; pipelinePeakBytes: number; devicesPaused: boolean } };
    assert.equal(st.limits.pipelineBytes.limit, limit);
    assert.ok(st.limits.pipelineBytes.hits >= 1 && pausedSeen, "the pipeline filled and the sockets were paused");
    assert.equal(st.limits.devicesPaused, false, "reading resumed");
    assert.equal(st.limits.pipelineBytes.used, 0);
    // Overshoot beyond the bound is what was already read when reading stopped: at most one
    // acceptance window (maxPendingAccepts) per session.
    const msg = payload.length + "home/d00/telemetry".length;
    assert.ok(st.limits.pipelinePeakBytes <= limit + n * 8 * msg, `peak ${st.limits.pipelinePeakBytes}`);
    assert.ok(peakSeen <= st.limits.pipelinePeakBytes);
    console.log(`      pipeline: limit ${limit} B, peak ${st.limits.pipelinePeakBytes} B, hits ${st.limits.pipelineBytes.hits}, ${n * perDevice} messages of ${msg} B`);
    assert.equal(b.gateway.broker.clients().length, n, "no device was disconnected");
    await until("the summaries", async () => {
      await b.gateway.audit.log.flushSummaries();
      return true;
    });
    const log = b.gateway.audit.log;
    const recorded = log.query({ kind: "flow", limit: 100000 }).length + log.query({ kind: "flow-summary", limit: 100000 }).reduce((s, r) => s + Number(r.detail?.repeats ?? 0), 0);
    assert.equal(recorded, n * perDevice, "every acknowledged message is in the log");
    assert.ok(log.query({ kind: "queue" }).some((r) => r.reason === "limit" && r.detail?.limit === "pipelineBytes"), "the hit is a record");
  });
});
