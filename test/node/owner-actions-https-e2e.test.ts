/**
 * The owner's actions over the admin HTTPS API, end to end (issue #11): the Node board with a real
 * mqtt.js device and the demo vendor behind a real TLS broker (aedes, certificates from the test CA).
 * Granting and withdrawing a consent over HTTPS changes what the very next message carries at the
 * vendor; quarantine stops flows and release resumes them; approving a pending contract version over
 * HTTPS puts it in force for the next message; a device added over HTTPS connects with its one-time
 * password, also after a restart, until it is removed. Every change is an audit record naming the caller.
 */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import type mqtt from "mqtt";
import { bootNodeBoard, type RunningBoard } from "../../hosts/node/board.js";
import { makeTestCa, startAedesTls, type BrokerMessage, type TestBroker } from "../lib/test-ca.js";
import { connectDevice, demoPassword, until } from "../lib/home.js";
import { VendorReceiver, readVendorKey } from "../../tools/open-envelope.js";
import { vendorKeygen } from "../../tools/vendor-keygen.js";

/** One request over HTTPS with the owner's bearer token (the gateway's certificate is self-signed). */
function api(port: number, token: string, method: string, target: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ host: "127.0.0.1", port, method, path: target, rejectUnauthorized: false, headers: { authorization: `Bearer ${token}`, ...(data ? { "content-type": "application/json", "content-length": String(Buffer.byteLength(data)) } : {}) } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : {} }));
    });
    req.on("error", reject);
    req.end(data);
  });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("owner actions over HTTPS, end to end", function () {
  this.timeout(90000);
  const dirs: string[] = [];
  let vendor: TestBroker | undefined;
  let board: RunningBoard | undefined;
  let device: mqtt.MqttClient | undefined;

  after(async () => {
    device?.end(true);
    await board?.stop();
    await vendor?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("consent, quarantine/release and contract approval over HTTPS change what reaches the vendor; an added device survives a restart", async () => {
    const tmp = (p: string) => (dirs.push(mkdtempSync(path.join(tmpdir(), p))), dirs.at(-1)!);
    const pki = await makeTestCa();
    const seen: BrokerMessage[] = [];
    vendor = await startAedesTls(pki.server, 0, false, seen);
    const keys = tmp("portcullis-actions-keys-");
    const key = vendorKeygen(path.join(keys, "tc.key"));
    const config = tmp("portcullis-actions-config-");
    cpSync("examples/home", config, { recursive: true });
    rmSync(path.join(config, "contracts", "energy-insights.json"));
    const file = path.join(config, "contracts", "thermo-cloud.json");
    const contract = JSON.parse(readFileSync(file, "utf8"));
    const write = (version: string, retentionDays: number): void => {
      contract.version = version;
      contract.terms.retentionDays = retentionDays;
      Object.assign(contract.destinations[0], { host: "localhost", port: vendor!.port, publicKey: key.publicKey, keyId: key.keyId, pins: [pki.server.pin] });
      writeFileSync(file, JSON.stringify(contract, null, 2));
    };
    write("2.1.0", 90);
    const data = tmp("portcullis-actions-data-");
    const boot = () => bootNodeBoard({ configDir: config, dataDir: data, mqttPort: 0, httpsPort: 0, demo: false, vendorCaPem: pki.ca, host: "127.0.0.1", consoleInput: new PassThrough(), consoleOutput: new PassThrough() });
    const privateKey = readVendorKey(path.join(keys, "tc.key"));
    /** The next message at the vendor after `from`, opened with the contract version in force. */
    const receivers = new Map<string, VendorReceiver>();
    const next = async (from: number, version: string): Promise<Record<string, unknown>> => {
      const m = await until("the vendor to receive", () => seen[from]);
      if (!receivers.has(version)) receivers.set(version, new VendorReceiver({ privateKey, integration: "thermo-cloud", contractVersion: version }));
      const r = await receivers.get(version)!.open(new Uint8Array(m.payload), m.topic);
      assert.equal(r.kind, "message");
      return r.kind === "message" ? JSON.parse(Buffer.from(r.payload).toString("utf8")) : {};
    };
    let n = 0;
    const send = async (): Promise<void> => {
      await pause(1100); // the flow's minIntervalMs
      await device!.publishAsync("home/thermostat-hall/telemetry", JSON.stringify({ temperature_c: 20 + n++, setpoint_c: 21, hvac: { mode: "heat" }, humidity: 40 }), { qos: 1 });
    };

    board = await boot();
    const token = readFileSync(path.join(data, "owner.token"), "utf8").trim();
    const call = (method: string, target: string, body?: unknown) => api(board!.httpsPort, token, method, target, body);
    device = await connectDevice(board.mqttPort, "thermostat-hall", demoPassword("thermostat-hall"));

    // Usage needs an opt-in: without it the mode stays home.
    await send();
    assert.deepEqual(await next(0, "2.1.0"), { temperature_c: 20, setpoint_c: 21 });
    const grant = await call("POST", "/api/v1/consent", { integration: "thermo-cloud", class: "usage", grant: true });
    assert.equal(grant.status, 200, JSON.stringify(grant.json));
    await send();
    assert.deepEqual(await next(1, "2.1.0"), { temperature_c: 21, setpoint_c: 21, hvac: { mode: "heat" } });
    const withdraw = await call("POST", "/api/v1/consent", { integration: "thermo-cloud", class: "usage", grant: false });
    assert.deepEqual([withdraw.status, withdraw.json.state], [200, "withdrawn"]);
    await send();
    assert.deepEqual(await next(2, "2.1.0"), { temperature_c: 22, setpoint_c: 21 }, "the field disappears from the next message");

    // Quarantine: the next message does not leave; release: the one after does.
    assert.equal((await call("POST", "/api/v1/integrations/thermo-cloud/quarantine", { reason: "vendor breach" })).status, 200);
    await send();
    await pause(1500);
    assert.equal(seen.length, 3, "nothing leaves while quarantined");
    assert.equal((await call("POST", "/api/v1/integrations/thermo-cloud/release")).status, 200);
    await send();
    assert.equal((await next(3, "2.1.0")).temperature_c, 24);

    const audit = await new Promise<string>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: board!.httpsPort, path: "/api/v1/audit?kind=admin&limit=1000", rejectUnauthorized: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
        let t = "";
        res.on("data", (c: Buffer) => (t += c.toString("utf8")));
        res.on("end", () => resolve(t));
      });
      req.on("error", reject);
      req.end();
    });
    const admin = audit.trim().split("\n").map((l) => JSON.parse(l) as { reason: string; detail?: Record<string, unknown> });
    for (const reason of ["consent", "quarantine", "release"]) {
      const r = admin.find((x) => x.reason === reason);
      assert.ok(r, reason);
      assert.deepEqual({ who: r.detail?.who, role: r.detail?.role, via: r.detail?.via, remote: r.detail?.remote }, { who: "owner-token", role: "owner", via: "token", remote: "127.0.0.1" });
    }
    device.end(true);
    await board.stop();
    board = undefined;

    // A new version keeps data longer: it waits for review, and approval over HTTPS puts it in force.
    write("2.2.0", 180);
    board = await boot();
    const pending = await call("GET", "/api/v1/contracts/pending");
    const p = (pending.json.pending as { to: string; changes: { words: string }[] }[])[0];
    assert.equal(p?.to, "2.2.0");
    assert.ok(p.changes.some((c) => c.words === "retention days: 90 → 180 (needs your approval)"), JSON.stringify(p.changes));
    device = await connectDevice(board.mqttPort, "thermostat-hall", demoPassword("thermostat-hall"));
    const before = seen.length;
    await send();
    assert.equal((await next(before, "2.1.0")).temperature_c, 25, "until approved, the approved version is in force");
    const ok = await call("POST", "/api/v1/contracts/thermo-cloud/approve");
    assert.deepEqual([ok.status, ok.json], [200, { integration: "thermo-cloud", version: "2.2.0" }]);
    assert.equal((await call("POST", "/api/v1/contracts/thermo-cloud/approve")).status, 409);
    await send();
    assert.equal((await next(before + 1, "2.2.0")).temperature_c, 26, "the next message is sealed under the approved version");

    // A device added over HTTPS connects with the password shown once, also after a restart.
    const added = await call("POST", "/api/v1/devices", { id: "window-sensor" });
    assert.equal(added.status, 201, JSON.stringify(added.json));
    const sensor = await connectDevice(board.mqttPort, "window-sensor", added.json.password as string);
    sensor.end(true);
    device.end(true);
    await board.stop();
    board = await boot();
    const again = await connectDevice(board.mqttPort, "window-sensor", added.json.password as string);
    assert.equal((await call("DELETE", "/api/v1/devices/window-sensor")).status, 200);
    await until("the removed device's session to close", () => (again.connected ? undefined : true));
    again.end(true);
    await assert.rejects(connectDevice(board.mqttPort, "window-sensor", added.json.password as string), /Not authorized|Bad username or password|connack/i);
  });
});
