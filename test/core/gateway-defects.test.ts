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
import { toBase64, utf8 } from "../../src/util/bytes.js";
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

  async function boot(contracts: { source: string; text: string }[], keys = new MemoryKeys()): Promise<Gateway> {
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
    g = await startGateway(board, parsed.config, { onVerificationKey: () => undefined, onOwnerToken: () => undefined });
    await settle(clock);
    return g;
  }
  function device(gw: Gateway): FakeSocket {
    const s = new FakeSocket();
    s.handler = gw.broker.accept(s);
    s.handler.onData(encode({ cmd: "connect", cleanSession: true, keepalive: 0, clientId: "thermostat", username: "thermostat", password: utf8("device-password") }));
    return s;
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
});
