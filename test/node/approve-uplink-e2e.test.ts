/**
 * Approving a contract change reaches the uplink (issue #13): on the Node board with a real mqtt.js
 * device and two real vendor brokers (aedes over TLS, certificates from the test CA), a new contract
 * version moves the destination to the second broker and the vendor key to a new one. Until the owner
 * approves it on the console the approved version stays in force; after approval the very next message
 * arrives at the new broker, sealed to the new key.
 */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import mqtt from "mqtt";
import { bootNodeBoard, type RunningBoard } from "../../hosts/node/board.js";
import { makeTestCa, startAedesTls, type BrokerMessage, type TestBroker } from "../lib/test-ca.js";
import { VendorReceiver, readVendorKey } from "../../tools/open-envelope.js";
import { vendorKeygen } from "../../tools/vendor-keygen.js";

async function until<T>(what: string, f: () => T | undefined, ms = 15000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const password = (JSON.parse(readFileSync("examples/home/demo-devices.json", "utf8")).devices as { id: string; password: string }[]).find((d) => d.id === "thermostat-hall")!.password;

describe("approving a contract change reaches the uplink, end to end", function () {
  this.timeout(60000);
  const dirs: string[] = [];
  const brokers: TestBroker[] = [];
  let board: RunningBoard | undefined;
  let device: mqtt.MqttClient | undefined;

  after(async () => {
    device?.end(true);
    await board?.stop();
    for (const b of brokers) await b.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("the next message after `approve` goes to the new destination, sealed to the new key", async () => {
    const tmp = (p: string) => (dirs.push(mkdtempSync(path.join(tmpdir(), p))), dirs.at(-1)!);
    const pki = await makeTestCa();
    const oldSeen: BrokerMessage[] = [];
    const newSeen: BrokerMessage[] = [];
    brokers.push(await startAedesTls(pki.server, 0, false, oldSeen), await startAedesTls(pki.server, 0, false, newSeen));
    const [oldBroker, newBroker] = brokers as [TestBroker, TestBroker];
    const keys = tmp("portcullis-approve-keys-");
    const oldKey = vendorKeygen(path.join(keys, "old.key"));
    const newKey = vendorKeygen(path.join(keys, "new.key"));

    const config = tmp("portcullis-approve-config-");
    cpSync("examples/home", config, { recursive: true });
    rmSync(path.join(config, "contracts", "energy-insights.json"));
    const file = path.join(config, "contracts", "thermo-cloud.json");
    const contract = JSON.parse(readFileSync(file, "utf8"));
    const write = (version: string, port: number, key: { publicKey: string; keyId: string }): void => {
      contract.version = version;
      Object.assign(contract.destinations[0], { host: "localhost", port, publicKey: key.publicKey, keyId: key.keyId, pins: [pki.server.pin] });
      writeFileSync(file, JSON.stringify(contract, null, 2));
    };
    write("2.1.0", oldBroker.port, oldKey);

    const data = tmp("portcullis-approve-data-");
    const consoleIn = new PassThrough();
    const consoleOut = new PassThrough();
    let output = "";
    consoleOut.setEncoding("utf8");
    consoleOut.on("data", (c: string) => (output += c));
    const boot = () => bootNodeBoard({ configDir: config, dataDir: data, mqttPort: 0, httpsPort: 0, demo: false, vendorCaPem: pki.ca, host: "127.0.0.1", consoleInput: consoleIn, consoleOutput: consoleOut });
    const connect = async (): Promise<mqtt.MqttClient> =>
      mqtt.connectAsync({ host: "127.0.0.1", port: board!.mqttPort, clientId: "thermostat-hall", username: "thermostat-hall", password, protocolVersion: 4, reconnectPeriod: 0 });
    const reading = (t: number) => JSON.stringify({ temperature_c: t, setpoint_c: 21, humidity: 40 });
    const open = async (key: string, version: string, m: BrokerMessage) =>
      new VendorReceiver({ privateKey: readVendorKey(path.join(keys, key)), integration: "thermo-cloud", contractVersion: version }).open(new Uint8Array(m.payload), m.topic);

    // First boot: version 2.1.0 approved, to the old broker with the old key.
    board = await boot();
    device = await connect();
    await device.publishAsync("home/thermostat-hall/telemetry", reading(20), { qos: 1 });
    await until("the old vendor to receive", () => oldSeen[0]);
    device.end(true);
    await board.stop();
    board = undefined;

    // The vendor moves: version 2.2.0 names the new broker and a new key. It waits for review.
    write("2.2.0", newBroker.port, newKey);
    board = await boot();
    assert.match(await board.gateway.shell.execute("integrations"), /thermo-cloud\s+pending-review → v2\.2\.0 pending/);
    device = await connect();
    await device.publishAsync("home/thermostat-hall/telemetry", reading(21), { qos: 1 });
    const before = await until("the old vendor to receive again", () => oldSeen[1]);
    const r0 = await open("old.key", "2.1.0", before);
    assert.equal(r0.kind, "message", "before approval the approved version (old key, old broker) is in force");
    assert.equal(newSeen.length, 0);

    // At-least-once: a message from before the approval may reach the old broker twice (a restart
    // between send and acknowledgement), so what counts is that nothing new goes there after it.
    const oldBefore = oldSeen.length;
    consoleIn.write("approve thermo-cloud\n");
    await until("the console to confirm", () => (output.includes("approved: thermo-cloud") ? true : undefined));
    await new Promise((r) => setTimeout(r, 1100)); // the flow's minIntervalMs
    await device.publishAsync("home/thermostat-hall/telemetry", reading(22), { qos: 1 });
    const after = await until("the new vendor to receive", () => newSeen[0]);
    const r1 = await open("new.key", "2.2.0", after);
    assert.equal(r1.kind, "message");
    assert.deepEqual(r1.kind === "message" && JSON.parse(Buffer.from(r1.payload).toString("utf8")), { temperature_c: 22, setpoint_c: 21 });
    assert.equal((await open("old.key", "2.2.0", after)).kind, "rejected", "the old key cannot open it");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(oldSeen.length, oldBefore, "nothing more goes to the old destination");
  });
});
