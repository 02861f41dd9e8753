/**
 * The gateway as the home's one broker, on the Node board with real clients (mqtt.js and
 * mosquitto_pub/mosquitto_sub): a Home-Assistant-style controller with a `controller` ACL role
 * subscribed to `#` gets every local device message and the retained state on reconnect; a device
 * cannot subscribe or publish outside its ACL; QoS 2 is delivered exactly once; local routing is
 * counted in the audit log's per-minute summaries.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { promisify } from "node:util";
import mqtt from "mqtt";
import { bootNodeBoard, type RunningBoard } from "../../hosts/node/board.js";
import { nodeCrypto } from "../../hosts/node/crypto.js";
import { makeDeviceSecret } from "../../src/config.js";
import { connectDevice, demoPassword, exampleOnFreePorts, httpsGet, until } from "../lib/home.js";
import { skipUnlessAvailable } from "../lib/skip.js";

async function mosquittoMissing(): Promise<string | undefined> {
  try {
    await run("mosquitto_pub", ["--help"]).catch((e: { code?: unknown }) => {
      if (e.code === "ENOENT") throw e;
    });
    return undefined;
  } catch {
    return "mosquitto_pub not installed";
  }
}

const run = promisify(execFile);
/** Test-only credentials of the added controller (not a secret). */
const HA_PASSWORD = "test-only-controller-pw";
const PLUG = "plug-kitchen";

type Msg = { topic: string; payload: string; qos: number; retain: boolean };

function collect(c: mqtt.MqttClient): Msg[] {
  const got: Msg[] = [];
  c.on("message", (topic, payload, packet) => got.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain }));
  return got;
}

describe("mqtt home broker on the Node board (real clients)", function () {
  this.timeout(60000);
  let data: string;
  let configDir: string;
  let board: RunningBoard;
  const clients: mqtt.MqttClient[] = [];
  const open = async (id: string, pw: string, extra: mqtt.IClientOptions = {}) => {
    const c = extra.clean === false
      ? await new Promise<mqtt.MqttClient>((resolve, reject) => {
          const x = mqtt.connect({ host: "127.0.0.1", port: board.mqttPort, clientId: id, username: id, password: pw, protocolVersion: 4, reconnectPeriod: 0, ...extra });
          x.once("connect", () => resolve(x));
          x.once("error", reject);
        })
      : await connectDevice(board.mqttPort, id, pw);
    clients.push(c);
    return c;
  };
  const token = () => readFileSync(path.join(data, "owner.token"), "utf8").trim();
  const boot = () => bootNodeBoard({ configDir, dataDir: data, mqttPort: 0, httpsPort: 0, demo: true, demoDevices: false, host: "127.0.0.1", consoleInput: new PassThrough(), consoleOutput: new PassThrough() });

  before(async () => {
    data = mkdtempSync(path.join(tmpdir(), "portcullis-home-"));
    configDir = await exampleOnFreePorts(mkdtempSync(path.join(tmpdir(), "portcullis-home-config-")));
    const file = path.join(configDir, "gateway.json");
    const cfg = JSON.parse(readFileSync(file, "utf8"));
    cfg.acl = {
      roles: {
        controller: { publish: ["cmnd/#", "homeassistant/#"], subscribe: ["#"] },
        device: { publish: ["home/%c/#", "stat/%c/#", "tele/%c/#"], subscribe: ["cmnd/%c/#"] },
      },
    };
    for (const d of cfg.devices) d.roles = ["device"];
    cfg.devices.push({ id: "ha", secret: makeDeviceSecret(nodeCrypto(), new Uint8Array(16).fill(7), HA_PASSWORD), roles: ["controller"] });
    writeFileSync(file, JSON.stringify(cfg, null, 2));
    board = await boot();
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.end(true);
  });
  after(async () => {
    await board?.stop();
    rmSync(data, { recursive: true, force: true });
    rmSync(configDir, { recursive: true, force: true });
  });

  it("a controller subscribed to # receives every local device message; the device's own ACL refuses #", async () => {
    const ha = await open("ha", HA_PASSWORD);
    const got = collect(ha);
    assert.deepEqual((await ha.subscribeAsync("#", { qos: 1 })).map((g) => g.qos), [1]);
    const plug = await open(PLUG, demoPassword(PLUG));
    // mqtt.js turns a 0x80 into an error; the SUBACK packet itself carries the code.
    const refused = await new Promise<number[]>((resolve) => {
      plug.once("packetreceive", (p) => p.cmd === "suback" && resolve([...(p as unknown as { granted: number[] }).granted]));
      plug.subscribe("#", () => undefined);
    });
    assert.deepEqual(refused, [128], "outside the device's ACL: SUBACK 0x80");
    assert.deepEqual((await plug.subscribeAsync(`cmnd/${PLUG}/POWER`)).map((g) => g.qos), [0]);
    const office = await open("plug-office", demoPassword("plug-office"));
    await office.publishAsync("tele/plug-office/STATE", '{"POWER":"ON"}', { qos: 1 });
    await plug.publishAsync(`tele/${PLUG}/SENSOR`, '{"power_w":12}', { qos: 0 });
    await until("both messages at the controller", () => (got.length >= 2 ? true : undefined));
    assert.deepEqual(got.map((m) => [m.topic, m.qos]).sort(), [["tele/plug-kitchen/SENSOR", 0], ["tele/plug-office/STATE", 1]]);
    // The controller commands the plug locally; the plug cannot command its neighbour.
    const plugGot = collect(plug);
    await ha.publishAsync(`cmnd/${PLUG}/POWER`, "OFF", { qos: 1 });
    await until("the command at the plug", () => (plugGot.length ? true : undefined));
    const officeGot = collect(office);
    await office.subscribeAsync("cmnd/plug-office/#");
    await plug.publishAsync("cmnd/plug-office/POWER", "OFF", { qos: 1 });
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(officeGot, [], "a device's publish outside its ACL is dropped");
  });

  it("mosquitto_pub from a device reaches mosquitto_sub of the controller", async function () {
    skipUnlessAvailable(this, "mosquitto-clients", await mosquittoMissing(), "apt-get install -y mosquitto-clients");
    const sub = run("mosquitto_sub", ["-h", "127.0.0.1", "-p", String(board.mqttPort), "-i", "ha", "-u", "ha", "-P", HA_PASSWORD, "-t", "tele/+/STATE", "-C", "1", "-W", "10", "-V", "mqttv311"]);
    await new Promise((r) => setTimeout(r, 500));
    await run("mosquitto_pub", ["-h", "127.0.0.1", "-p", String(board.mqttPort), "-i", PLUG, "-u", PLUG, "-P", demoPassword(PLUG), "-t", `tele/${PLUG}/STATE`, "-m", "ON", "-q", "1", "-V", "mqttv311"]);
    const { stdout } = await sub;
    assert.equal(stdout.trim(), "ON");
  });

  it("keeps retained state and gives it to the controller on reconnect, with RETAIN set", async () => {
    const plug = await open(PLUG, demoPassword(PLUG));
    await plug.publishAsync(`stat/${PLUG}/POWER`, "ON", { qos: 1, retain: true });
    await plug.publishAsync(`stat/${PLUG}/POWER`, "OFF", { qos: 1, retain: true });
    await plug.publishAsync(`stat/${PLUG}/RESULT`, "x", { qos: 0, retain: true });
    await plug.publishAsync(`stat/${PLUG}/RESULT`, "", { qos: 0, retain: true }); // clears it
    const ha = await open("ha", HA_PASSWORD);
    const got = collect(ha);
    await ha.subscribeAsync(`stat/#`, { qos: 1 });
    await until("the retained state", () => (got.length ? true : undefined));
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(got, [{ topic: `stat/${PLUG}/POWER`, payload: "OFF", qos: 1, retain: true }]);
  });

  it("delivers QoS 2 exactly once (mosquitto_pub -q 2 → mqtt.js subscriber at QoS 2)", async function () {
    skipUnlessAvailable(this, "mosquitto-clients", await mosquittoMissing(), "apt-get install -y mosquitto-clients");
    const ha = await open("ha", HA_PASSWORD);
    const got = collect(ha);
    assert.deepEqual((await ha.subscribeAsync("home/+/q2", { qos: 2 })).map((g) => g.qos), [2]);
    for (let i = 0; i < 3; i++) {
      await run("mosquitto_pub", ["-h", "127.0.0.1", "-p", String(board.mqttPort), "-i", PLUG, "-u", PLUG, "-P", demoPassword(PLUG), "-t", `home/${PLUG}/q2`, "-m", `m${i}`, "-q", "2", "-V", "mqttv311"]);
    }
    await until("three messages", () => (got.length >= 3 ? true : undefined));
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(got.map((m) => [m.payload, m.qos]), [["m0", 2], ["m1", 2], ["m2", 2]]);
  });

  it("counts local deliveries in the per-minute summaries and records refusals", async () => {
    const ha = await open("ha", HA_PASSWORD);
    await ha.subscribeAsync("#");
    const plug = await open(PLUG, demoPassword(PLUG));
    for (let i = 0; i < 5; i++) await plug.publishAsync(`tele/${PLUG}/COUNT`, String(i), { qos: 1 });
    await plug.publishAsync("tele/someone-else/STATE", "spoof", { qos: 1 });
    const rows = await until("the local rows", async () => {
      const res = await httpsGet(board.httpsPort, "/api/v1/audit?kind=flow-summary&limit=500", token());
      // Each summary row is served as its own line (src/admin/api.ts recordLines).
      const all = res.body.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
      const mine = all.filter((r: { integration: string; rule: string }) => r.integration === "(local)" && r.rule === `tele/${PLUG}/COUNT`);
      return mine.length ? mine : undefined;
    });
    assert.equal(rows.reduce((n: number, r: { count: number }) => n + r.count, 0), 5);
    assert.equal(rows[0].device, PLUG);
    const res = await httpsGet(board.httpsPort, "/api/v1/audit?kind=auth&limit=500", token());
    const denials = res.body.trim().split("\n").map((l) => JSON.parse(l)).filter((r) => r.reason === "not-authorized" && r.device === PLUG);
    // Refused publishes are aggregated per device and minute window: the record names the first topic.
    assert.ok(denials.some((r) => r.detail.op === "publish"), "refused publish recorded");
    assert.ok(denials.some((r) => r.topic === "#" && r.detail.op === "subscribe"), "refused subscribe recorded");
  });

  it("a persistent session (clean session 0) gets what it missed on reconnect, with session present", async () => {
    const first = await open("ha", HA_PASSWORD, { clean: false });
    await first.subscribeAsync("tele/+/MISSED", { qos: 1 });
    await first.endAsync();
    const plug = await open(PLUG, demoPassword(PLUG));
    for (let i = 0; i < 3; i++) await plug.publishAsync(`tele/${PLUG}/MISSED`, `m${i}`, { qos: 1 });
    const got: Msg[] = [];
    const present = await new Promise<boolean>((resolve, reject) => {
      const x = mqtt.connect({ host: "127.0.0.1", port: board.mqttPort, clientId: "ha", username: "ha", password: HA_PASSWORD, protocolVersion: 4, reconnectPeriod: 0, clean: false });
      clients.push(x);
      x.on("message", (topic, payload, packet) => got.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain }));
      x.once("connect", (ack) => resolve(ack.sessionPresent));
      x.once("error", reject);
    });
    assert.equal(present, true);
    await until("the missed messages", () => (got.length >= 3 ? true : undefined));
    assert.deepEqual(got.map((m) => m.payload), ["m0", "m1", "m2"]);
  });

  it("keeps retained state across a reboot (its own flash area, encrypted at rest)", async () => {
    const plug = await open(PLUG, demoPassword(PLUG));
    await plug.publishAsync(`stat/${PLUG}/BOOT`, "kept-across-reboot", { qos: 1, retain: true });
    plug.end(true);
    await board.stop();
    const image = readFileSync(path.join(data, "flash.img"));
    assert.equal(image.indexOf("kept-across-reboot"), -1, "not in clear on flash");
    board = await boot();
    const ha = await open("ha", HA_PASSWORD);
    const got = collect(ha);
    await ha.subscribeAsync(`stat/${PLUG}/BOOT`, { qos: 1 });
    await until("the retained message after the reboot", () => (got.length ? true : undefined));
    assert.deepEqual(got, [{ topic: `stat/${PLUG}/BOOT`, payload: "kept-across-reboot", qos: 1, retain: true }]);
  });

  it("keeps an MQTT 5 retained message's properties across a reboot, and forgets one with a Message Expiry", async () => {
    const v5 = (id: string, pw: string) =>
      new Promise<mqtt.MqttClient>((resolve, reject) => {
        const x = mqtt.connect({ host: "127.0.0.1", port: board.mqttPort, clientId: id, username: id, password: pw, protocolVersion: 5, reconnectPeriod: 0 });
        x.once("connect", () => resolve(x));
        x.once("error", reject);
        clients.push(x);
      });
    const plug = await v5(PLUG, demoPassword(PLUG));
    await plug.publishAsync(`tele/${PLUG}/SENSOR`, '{"w":5}', { qos: 1, retain: true, properties: { contentType: "application/json", userProperties: { unit: "W" } } });
    await plug.publishAsync(`tele/${PLUG}/FLASH`, "short-lived", { qos: 1, retain: true, properties: { messageExpiryInterval: 3600 } });
    plug.end(true);
    await board.stop();
    board = await boot();
    const ha = await v5("ha", HA_PASSWORD);
    const got: [string, string, unknown, unknown][] = [];
    ha.on("message", (topic, payload, packet) => got.push([topic, payload.toString(), packet.properties?.contentType, { ...packet.properties?.userProperties }]));
    await ha.subscribeAsync(`tele/${PLUG}/+`, { qos: 1 });
    await until("the retained message after the reboot", () => (got.length ? true : undefined));
    await new Promise((r) => setTimeout(r, 200));
    // The expiring one lived in RAM only: after the reboot it is gone rather than kept past its expiry.
    assert.deepEqual(got, [[`tele/${PLUG}/SENSOR`, '{"w":5}', "application/json", { unit: "W" }]]);
  });
});
