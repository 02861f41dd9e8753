/**
 * Regression tests for defects found by probing the whole gateway (issue #13): each one failed before
 * its fix. In-memory ports, run on Node and inside XS.
 */
import assert from "node:assert/strict";
import type { Board, Console, Uplink, UplinkOptions } from "../../src/ports.js";
import { ramFlash } from "../../src/flash/nor.js";
import { startGateway, type Gateway } from "../../src/gateway.js";
import { FLASH_BYTES_NEEDED } from "../../src/gateway/outbound.js";
import { makeDeviceSecret, parseGatewayConfig } from "../../src/config.js";
import { encode } from "../../src/mqtt/codec.js";
import { fromUtf8, toBase64, utf8 } from "../../src/util/bytes.js";
import { parseEnvelope, envelopeAad, envelopeInfo } from "../../src/outbound/envelope.js";
import { setupBaseR } from "../../src/crypto/hpke.js";
import { jsonErrorLine } from "../../src/policy/contract.js";
import { FakeClock } from "../lib/fake-clock.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { FakeSocket } from "../fixtures/mqtt/fake-socket.js";

/** An Uplink double that accepts every connection and records what is published, per host:port. */
class Vendors implements Uplink {
  readonly sent: { host: string; port: number; topic: string; payload: Uint8Array }[] = [];
  readonly opened: UplinkOptions[] = [];
  connect(o: UplinkOptions) {
    this.opened.push(o);
    let open = true;
    Promise.resolve().then(() => open && o.onConnect());
    return {
      publish: (topic: string, payload: Uint8Array) => {
        if (!open) return Promise.reject(new Error("closed"));
        this.sent.push({ host: o.host, port: o.port, topic, payload: payload.slice() });
        return Promise.resolve();
      },
      close: () => void (open = false),
    };
  }
}

export const contractText = (publicKey: string, over: { version?: string; host?: string; port?: number } = {}) =>
  JSON.stringify({
    format: 1, id: "thermo-cloud", version: over.version ?? "1.0.0", vendor: "ThermoCloud", contact: "privacy@thermocloud.example",
    purpose: "Shows the hall temperature in the vendor's app.", effective: "2026-01-01",
    destinations: [{ id: "tc", protocol: "mqtts", host: over.host ?? "vendor.example", port: over.port ?? 8883, topic: "tc/{device-pseudonym}/state", encryption: "hpke", publicKey, keyId: "tc-test" }],
    flows: [{ id: "state", destination: "tc", devices: ["thermostat"], topics: ["home/thermostat/telemetry"],
      fields: [{ path: "/temperature_c", class: "environment" }], rate: { perMinute: 600, minIntervalMs: 0 } }],
    terms: { retentionDays: 30, consent: { environment: false }, sla: { uptimePercent: 99, maxLatencyMs: 1000 },
      exit: { exportFormat: "json", deletionDays: 30 }, queue: { maxBytes: 8192, overflow: "drop-oldest", ttlSeconds: 3600 } },
  }, null, 2);

async function settle(clock: FakeClock, ms = 50): Promise<void> {
  for (let i = 0; i < 20; i++) {
    clock.tick(Math.ceil(ms / 20));
    await Promise.resolve();
    await new Promise<void>((r) => Promise.resolve().then(() => r()));
  }
}

describe("gateway defects (issue #13), each with its regression", () => {
  const random = seededRandom("gateway-defects");
  const crypto = nobleCrypto(random);
  const vendorKey = crypto.p256Generate();
  let clock: FakeClock;
  let g: Gateway | undefined;
  let vendors: Vendors;
  let out: string[];

  async function boot(contracts: { source: string; text: string }[], keys = new MemoryKeys(), store = new Map<string, string>()): Promise<Gateway> {
    await g?.stop();
    out = [];
    const konsole: Console = { start: () => undefined, write: (t) => void out.push(t) };
    vendors = new Vendors();
    const board: Board = {
      clock, timers: clock, random, crypto, flash: ramFlash(FLASH_BYTES_NEEDED), keys, console: konsole,
      network: { listen: () => { throw new Error("not used"); } },
      uplink: vendors,
    };
    const secret = makeDeviceSecret(crypto, new Uint8Array(16), "device-password");
    const parsed = parseGatewayConfig(JSON.stringify({ name: "defects", devices: [{ id: "thermostat", secret }], audit: { groupCommitMs: 0 } }), contracts);
    assert.ok(parsed.ok, JSON.stringify(parsed));
    g = await startGateway(board, parsed.config, {
      onVerificationKey: () => undefined,
      onOwnerToken: () => undefined,
      contractStore: { get: (id) => store.get(id), set: (id, t) => void store.set(id, t) },
    });
    await settle(clock);
    return g;
  }
  function device(gw: Gateway): FakeSocket {
    const s = new FakeSocket();
    s.handler = gw.broker.accept(s);
    s.handler.onData(encode({ cmd: "connect", cleanSession: true, keepalive: 0, clientId: "thermostat", username: "thermostat", password: utf8("device-password") }));
    return s;
  }

  function publish(s: FakeSocket, body: unknown, topic = "home/thermostat/telemetry"): void {
    s.handler!.onData(encode({ cmd: "publish", topic, payload: utf8(JSON.stringify(body)), qos: 0, retain: false, dup: false }));
  }
  /** Opens one envelope with a vendor private key; undefined when that key cannot open it. */
  function openWith(privateKey: Uint8Array, version: string, e: { topic: string; payload: Uint8Array }): unknown {
    const env = parseEnvelope(e.payload);
    if (!env.enc) return undefined;
    try {
      const pt = setupBaseR(crypto, privateKey, env.enc, envelopeInfo("thermo-cloud", version)).openAt(env.seq, envelopeAad(env.header, e.topic), env.body);
      return pt ? JSON.parse(fromUtf8(pt)) : undefined;
    } catch {
      return undefined;
    }
  }

  beforeEach(() => {
    // Wall time (2026) and monotonic time (0 at boot) differ by 1.7e12 ms, as on a real board.
    clock = new FakeClock(Date.UTC(2026, 10, 1));
  });
  afterEach(async () => {
    await g?.stop();
    g = undefined;
  });

  it("`devices` shows how long a device has been connected, in monotonic seconds, even when the wall clock is set later", async () => {
    const gw = await boot([{ source: "tc.json", text: contractText(toBase64(vendorKey.publicKey)) }]);
    clock.tick(3000);
    device(gw);
    clock.tick(7000);
    assert.match(await gw.shell.execute("devices"), /thermostat\s+\S+\s+7 s$/m);
    clock.setTime(Date.UTC(2030, 0, 1)); // SNTP answers: the wall clock jumps years ahead
    clock.tick(2000);
    assert.match(await gw.shell.execute("devices"), /thermostat\s+\S+\s+9 s$/m);
  });

  it("a default deny carries the stable rule id `default-deny` in its audit record", async () => {
    const gw = await boot([{ source: "tc.json", text: contractText(toBase64(vendorKey.publicKey)) }]);
    const s = device(gw);
    s.handler!.onData(encode({ cmd: "publish", topic: "home/thermostat/camera", payload: utf8("{}"), qos: 0, retain: false, dup: false }));
    await settle(clock);
    const denies = gw.audit.log.query({ kind: "flow" }).filter((r) => r.reason === "no-contract");
    assert.equal(denies.length, 1);
    assert.equal(denies[0]!.rule, "default-deny");
    assert.equal(denies[0]!.integration ?? null, null);
  });

  it("approving a contract change rebuilds the uplink: the next message goes to the new destination, sealed to the new key", async () => {
    const keys = new MemoryKeys();
    const store = new Map<string, string>();
    const newKey = crypto.p256Generate();
    await boot([{ source: "tc.json", text: contractText(toBase64(vendorKey.publicKey)) }], keys, store);
    // The vendor moves: a new host and port and a new HPKE key, in version 2.0.0 (a relevant change).
    const v2 = contractText(toBase64(newKey.publicKey), { version: "2.0.0", host: "new.vendor.example", port: 9883 });
    const gw = await boot([{ source: "tc.json", text: v2 }], keys, store);
    assert.match(await gw.shell.execute("integrations"), /thermo-cloud\s+pending-review → v2\.0\.0 pending/);
    const s = device(gw);
    publish(s, { temperature_c: 20 });
    await settle(clock);
    assert.deepEqual(vendors.sent.map((m) => `${m.host}:${m.port}`), ["vendor.example:8883"], "until approval the approved version is in force");
    assert.deepEqual(openWith(vendorKey.privateKey, "1.0.0", vendors.sent[0]!), { temperature_c: 20 });

    assert.match(await gw.shell.execute("approve thermo-cloud"), /approved/);
    publish(s, { temperature_c: 21 });
    await settle(clock, 2100); // the flow commit window (audit.flowCommitMs) before it may leave
    await settle(clock);
    const last = vendors.sent.at(-1)!;
    assert.equal(`${last.host}:${last.port}`, "new.vendor.example:9883");
    assert.deepEqual(openWith(newKey.privateKey, "2.0.0", last), { temperature_c: 21 }, "sealed to the new key, for the new version");
    assert.equal(openWith(vendorKey.privateKey, "2.0.0", last), undefined, "the old key opens nothing new");
    assert.ok(gw.audit.log.query({ kind: "uplink" }).some((r) => r.reason === "rebuilt"), "the rebuild is recorded");
    assert.equal(store.get("thermo-cloud"), v2, "the approved text is the new baseline");
  });

  it("approving an integration that had no version in force (approved text lost) opens its uplink at once", async () => {
    const keys = new MemoryKeys();
    await boot([{ source: "tc.json", text: contractText(toBase64(vendorKey.publicKey)) }], keys, new Map());
    const v2 = contractText(toBase64(vendorKey.publicKey), { version: "1.0.1", port: 9884 });
    const gw = await boot([{ source: "tc.json", text: v2 }], keys, new Map()); // the device lost the approved text
    assert.deepEqual(Object.keys(gw.outbound.summary()), [], "nothing is in force, so nothing may leave");
    const s = device(gw);
    publish(s, { temperature_c: 20 });
    await settle(clock);
    assert.equal(vendors.sent.length, 0);
    assert.match(await gw.shell.execute("approve thermo-cloud"), /approved/);
    publish(s, { temperature_c: 21 });
    await settle(clock, 2100);
    assert.deepEqual(vendors.sent.map((m) => `${m.host}:${m.port}`), ["vendor.example:9884"]);
  });

  it("`remove` closes the integration's uplink; nothing more leaves for it", async () => {
    const gw = await boot([{ source: "tc.json", text: contractText(toBase64(vendorKey.publicKey)) }]);
    const s = device(gw);
    publish(s, { temperature_c: 20 });
    await settle(clock);
    assert.equal(vendors.sent.length, 1);
    assert.match(await gw.shell.execute("remove thermo-cloud"), /removed thermo-cloud/);
    publish(s, { temperature_c: 21 });
    await settle(clock);
    assert.equal(vendors.sent.length, 1);
    assert.deepEqual(Object.keys(gw.outbound.summary()), []);
  });

  it("a contract file that is not JSON: `file:line: message` on the console, an audit record, and the approved version stays in force", async () => {
    const keys = new MemoryKeys();
    const store = new Map<string, string>();
    await boot([{ source: "contracts/thermo-cloud.json", text: contractText(toBase64(vendorKey.publicKey)) }], keys, store);
    const good = contractText(toBase64(vendorKey.publicKey), { version: "1.1.0" });
    const broken = good.slice(0, good.indexOf('"purpose"') + 14); // cut inside a string
    const cutLine = broken.split("\n").length;
    assert.equal(cutLine, 7);
    const gw = await boot([{ source: "contracts/thermo-cloud.json", text: broken }], keys, store);
    const said = out.join("");
    assert.match(said, new RegExp(`contracts/thermo-cloud\\.json:${cutLine}: not valid JSON`), "the line of the cut, on Node and in XS");
    assert.match(said, /thermo-cloud: approved version 1\.0\.0 stays in force/);
    const rec = gw.audit.log.query({ kind: "contract" }).find((r) => r.reason === "contract-invalid");
    assert.equal(rec?.integration, "thermo-cloud");
    assert.equal(rec?.detail?.inForce, "1.0.0");
    assert.equal(rec?.detail?.blocked, false);
    publish(device(gw), { temperature_c: 19 });
    await settle(clock);
    assert.deepEqual(openWith(vendorKey.privateKey, "1.0.0", vendors.sent.at(-1)!), { temperature_c: 19 }, "the approved version still enforces and sends");
    assert.match(await gw.shell.execute("integrations"), /contract file broken; approved version in force/);
  });

  it("a broken contract with no approved version blocks only itself", async () => {
    const gw = await boot([{ source: "contracts/other.json", text: '{ "format": 1, "id": "other", ' }, { source: "contracts/thermo-cloud.json", text: contractText(toBase64(vendorKey.publicKey)) }]);
    assert.match(out.join(""), /contracts\/other\.json:1: not valid JSON/);
    assert.match(out.join(""), /other: blocked/);
    publish(device(gw), { temperature_c: 18 });
    await settle(clock);
    assert.equal(vendors.sent.length, 1);
  });

  it("finds the line of a JSON syntax error in V8's and XS's messages", () => {
    assert.equal(jsonErrorLine('{\n"a":\n"b', "Unterminated string in JSON at position 9"), 3);
    assert.equal(jsonErrorLine("{}", "Unexpected token } in JSON at line 4 column 2"), 4);
    assert.equal(jsonErrorLine("{}", "JSON.parse: 3: invalid character"), 3); // XS 13.3, measured
    assert.equal(jsonErrorLine("{}", "syntax error"), undefined);
  });
  it("gateway.json broker limits are parsed for the broker; unknown or out-of-range ones are named", async () => {
    const secret = makeDeviceSecret(crypto, new Uint8Array(16), "device-password");
    const bad = parseGatewayConfig(JSON.stringify({ name: "x", devices: [{ id: "thermostat", secret }], audit: { groupCommitMs: 0 }, broker: { publishRatePerSec: 0, bogus: 1 } }), []);
    assert.ok(!bad.ok);
    assert.deepEqual(bad.errors.map((e) => e.path).sort(), ["/broker/bogus", "/broker/publishRatePerSec"]);
    const good = parseGatewayConfig(JSON.stringify({ name: "x", devices: [{ id: "thermostat", secret }], audit: { groupCommitMs: 0 }, broker: { maxConnections: 1 } }), []);
    assert.ok(good.ok);
    assert.deepEqual(good.config.broker, { maxConnections: 1 });
  });
});
