/**
 * Interop with Eclipse Paho (Debian's python3-paho-mqtt, MQTT 3.1.1): test/interop/paho_suite.py runs
 * against the Node board's broker and prints what it saw as JSON; each behaviour is asserted here.
 * The home has ACL roles as in mqtt-home.test.ts: a `controller` (subscribes to #) and `device`s.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { bootNodeBoard, type RunningBoard } from "../../hosts/node/board.js";
import { nodeCrypto } from "../../hosts/node/crypto.js";
import { makeDeviceSecret } from "../../src/config.js";
import { demoPassword, exampleOnFreePorts } from "../lib/home.js";
import { skipUnlessAvailable } from "../lib/skip.js";

/** Test-only credentials of the added controller (not a secret). */
const HA_PASSWORD = "test-only-paho-controller-pw";

/** Debian's python, where python3-paho-mqtt installs (a pyenv or venv python3 on PATH may lack it). */
const PYTHON = process.env.PORTCULLIS_PYTHON ?? "/usr/bin/python3";

function pahoMissing(): Promise<string | undefined> {
  return new Promise((resolve) => execFile(PYTHON, ["-c", "import paho.mqtt.client"], (e) => resolve(e ? "python3-paho-mqtt not installed" : undefined)));
}

function runSuite(port: number, creds: Record<string, [string, string]>): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ["test/interop/paho_suite.py", "127.0.0.1", String(port)], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`paho_suite.py exited ${code}: ${err}`));
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`paho_suite.py printed no JSON: ${out} ${err}`));
      }
    });
    child.stdin.end(JSON.stringify(creds));
  });
}

describe("interop: Eclipse Paho (python) against the Node board's broker", function () {
  this.timeout(120_000);
  let data: string;
  let configDir: string;
  let board: RunningBoard;
  let r: Record<string, any>;

  before(async function () {
    skipUnlessAvailable(this, "python3-paho-mqtt", await pahoMissing(), "apt-get install -y python3-paho-mqtt");
    data = mkdtempSync(path.join(tmpdir(), "portcullis-paho-"));
    configDir = await exampleOnFreePorts(mkdtempSync(path.join(tmpdir(), "portcullis-paho-config-")));
    const file = path.join(configDir, "gateway.json");
    const cfg = JSON.parse(readFileSync(file, "utf8"));
    cfg.acl = {
      roles: {
        controller: { publish: ["cmnd/#"], subscribe: ["#"] },
        device: { publish: ["home/%c/#", "stat/%c/#", "tele/%c/#"], subscribe: ["cmnd/%c/#"] },
      },
    };
    for (const d of cfg.devices) d.roles = ["device"];
    for (const id of ["paho-ha-1", "paho-ha-2", "paho-ha-3", "paho-ha-4", "paho-ha-5", "paho-ha-6", "paho-ha-7", "paho-ha-8", "paho-ha-9", "paho-ha-persist", "paho-ha-v5persist"]) {
      cfg.devices.push({ id, secret: makeDeviceSecret(nodeCrypto(), new Uint8Array(16).fill(9), HA_PASSWORD), roles: ["controller"] });
    }
    writeFileSync(file, JSON.stringify(cfg, null, 2));
    board = await bootNodeBoard({ configDir, dataDir: data, mqttPort: 0, httpsPort: 0, demo: true, demoDevices: false, host: "127.0.0.1", consoleInput: new PassThrough(), consoleOutput: new PassThrough() });
    // Each controller client id authenticates as itself; the suite names it per check.
    r = await runSuite(board.mqttPort, { controller: ["paho-ha-1", HA_PASSWORD], device: ["plug-kitchen", demoPassword("plug-kitchen")], other: ["plug-office", demoPassword("plug-office")] });
  });
  after(async () => {
    await board?.stop();
    if (data) rmSync(data, { recursive: true, force: true });
    if (configDir) rmSync(configDir, { recursive: true, force: true });
  });

  it("routes a device's publish to a controller's exact subscription", () => {
    assert.ok(r.routing.ok, JSON.stringify(r.routing));
    assert.deepEqual(r.routing.granted, [1]);
    assert.deepEqual(r.routing.msgs.map((m: any) => [m.topic, m.payload, m.qos]), [["tele/plug-kitchen/SENSOR", '{"power_w": 7}', 1]]);
  });
  it("matches + and # wildcards and nothing else", () => {
    assert.deepEqual(r.wildcard.granted, [1, 0], JSON.stringify(r.wildcard));
    assert.deepEqual(r.wildcard.topics, ["stat/plug-office/x/y", "tele/plug-kitchen/STATE", "tele/plug-office/STATE"]);
    assert.deepEqual(r.wildcard.qos, [0, 1, 1], "delivered at min(publish, subscription) QoS");
  });
  it("keeps the last retained message and delivers it with RETAIN set", () => {
    assert.deepEqual(r.retained.msgs, [{ topic: "stat/plug-kitchen/POWER", payload: "OFF", qos: 1, retain: true, dup: false }], JSON.stringify(r.retained));
  });
  it("delivers QoS 2 exactly once, in order", () => {
    assert.ok(r.qos2.ok, JSON.stringify(r.qos2));
    assert.deepEqual(r.qos2.granted, [2]);
    assert.deepEqual(r.qos2.payloads, ["m0", "m1", "m2", "m3", "m4"]);
    assert.deepEqual(r.qos2.qos, [2]);
  });
  it("keeps a persistent session and redelivers what arrived while the client was away", () => {
    assert.equal(r.persistent.firstSessionPresent, false, JSON.stringify(r.persistent));
    assert.equal(r.persistent.sessionPresent, true);
    assert.deepEqual(r.persistent.msgs.map((m: any) => [m.topic, m.payload, m.qos]), [["tele/plug-kitchen/PERSIST", "while-away", 1]]);
  });
  it("publishes the will on a dropped connection, not on a DISCONNECT", () => {
    assert.deepEqual(r.will.payloads, ["Offline"], JSON.stringify(r.will));
  });
  it("a second connection with the same client id takes over the first", () => {
    assert.equal(r.takeover.newConnack, 0, JSON.stringify(r.takeover));
    assert.equal(r.takeover.oldDisconnected, true);
    assert.deepEqual(r.takeover.msgs, ["b-alive"]);
  });
  it("refuses by ACL: SUBACK 0x80 outside the device's filters, a spoofed publish dropped, a bad password CONNACK 5", () => {
    assert.deepEqual(r.acl.refusedGranted, [128], JSON.stringify(r.acl));
    assert.deepEqual(r.acl.ownGranted, [0]);
    assert.equal(r.acl.spoofDelivered, 0);
    assert.equal(r.acl.badPasswordConnack, 5);
  });
  it("MQTT 5: content type, user properties and response topic reach a v5 subscriber; CONNACK carries the gateway's limits", () => {
    assert.ok(r.v5_properties.ok, JSON.stringify(r.v5_properties));
    assert.deepEqual(r.v5_properties.granted, [1]);
    assert.equal(r.v5_properties.msgs.length, 1, JSON.stringify(r.v5_properties));
    const m = r.v5_properties.msgs[0];
    assert.equal(m.payload, '{"v": 5}');
    assert.equal(m.props.ContentType, "application/json");
    assert.deepEqual(m.props.UserProperty, [["unit", "W"], ["src", "paho"]]);
    assert.equal(m.props.ResponseTopic, "cmnd/plug-kitchen/REPLY");
    assert.ok(Number(r.v5_properties.connackProps.ReceiveMaximum) > 0, JSON.stringify(r.v5_properties.connackProps));
  });
  it("MQTT 5: a session expiry keeps the session across a disconnect; expiry 0 ends it", () => {
    assert.equal(r.v5_session_expiry.firstSessionPresent, false, JSON.stringify(r.v5_session_expiry));
    assert.equal(r.v5_session_expiry.sessionPresent, true);
    assert.deepEqual(r.v5_session_expiry.msgs, ["while-away"]);
    assert.equal(r.v5_session_expiry.afterExpiryZero, false);
  });
  it("MQTT 5: SUBACK 0x87 outside the ACL, CONNACK 0x86 for a bad password", () => {
    assert.deepEqual(r.v5_refusals.refusedGranted, [0x87], JSON.stringify(r.v5_refusals));
    assert.equal(r.v5_refusals.badPasswordConnack, 0x86);
  });
  it("MQTT 3.1 (MQIsdp, level 3): connects and routes", () => {
    assert.equal(r.v31.connack, 0, JSON.stringify(r.v31));
    assert.deepEqual(r.v31.msgs, ["three-one"]);
  });
});
