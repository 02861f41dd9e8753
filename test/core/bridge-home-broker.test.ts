/**
 * HomeBridge with FakeClock and a scripted HomeBroker port (the real one, mqtt.js against mosquitto,
 * runs in test/node/bridge.test.ts): device attribution by pattern, unmatched topics denied in
 * aggregate, exponential backoff with its cap and reset, status, and nothing after close.
 */
import assert from "node:assert/strict";
import { FakeClock } from "../lib/fake-clock.js";
import { HomeBridge } from "../../src/bridge/home-broker.js";
import { parseHomeBroker, type HomeBrokerConfig } from "../../src/bridge/config.js";
import type { AuditEvent } from "../../src/audit/types.js";
import type { Board, HomeBroker, HomeBrokerOptions } from "../../src/ports.js";
import { parseGatewayConfig } from "../../src/config.js";
import { startGateway } from "../../src/gateway.js";

function config(extra: Record<string, unknown> = {}): HomeBrokerConfig {
  const errors: { path: string; message: string }[] = [];
  const c = parseHomeBroker({ url: "mqtt://127.0.0.1:1883", subscribe: ["tele/#"], reconnectMinMs: 1000, reconnectMaxMs: 8000, devices: [{ id: "thermo", pattern: "tele/thermostat/+", topic: "home/thermo/telemetry" }, { id: "plug", pattern: "tele/plug/#" }], ...extra }, new Set(["thermo", "plug"]), errors);
  assert.deepEqual(errors, []);
  return c!;
}

function rig(cfg = config()) {
  const clock = new FakeClock();
  const attempts: HomeBrokerOptions[] = [];
  let closed = 0;
  const port: HomeBroker = { connect: (o) => (attempts.push(o), { close: () => void closed++ }) };
  const events: AuditEvent[] = [];
  const ingested: [string, string, string][] = [];
  const bridge = new HomeBridge({ port, clock, timers: clock, config: cfg, password: "pw", record: (e) => events.push(e), ingest: (d, t, p) => (ingested.push([d, t, new TextDecoder().decode(p)]), Promise.resolve()) });
  return { clock, attempts, events, ingested, bridge, closed: () => closed };
}
const bytes = (s: string) => new TextEncoder().encode(s);

describe("bridge: HomeBridge (core)", () => {
  it("attributes a message to the first matching device pattern and rewrites its topic", async () => {
    const r = rig();
    r.bridge.start();
    assert.equal(r.attempts.length, 1);
    assert.deepEqual(r.attempts[0]!.subscribe, ["tele/#"]);
    assert.equal(r.attempts[0]!.password, "pw");
    r.attempts[0]!.onConnect();
    await r.attempts[0]!.onMessage("tele/thermostat/SENSOR", bytes("a"));
    await r.attempts[0]!.onMessage("tele/plug/x/y", bytes("b"));
    assert.deepEqual(r.ingested, [["thermo", "home/thermo/telemetry", "a"], ["plug", "tele/plug/x/y", "b"]]);
    assert.equal(r.bridge.status().state, "up");
    assert.equal(r.bridge.status().received, 2);
  });

  it("denies an unmatched topic, never ingesting it, with one record per topic and window carrying the count", async () => {
    const r = rig();
    r.bridge.start();
    r.attempts[0]!.onConnect();
    for (let i = 0; i < 5; i++) await r.attempts[0]!.onMessage("tele/camera/SNAP", bytes("x"));
    assert.deepEqual(r.ingested, []);
    let unmatched = r.events.filter((e) => e.reason === "bridge-unmatched");
    assert.equal(unmatched.length, 1);
    assert.equal(unmatched[0]!.decision, "deny");
    assert.equal(unmatched[0]!.detail?.count, 1);
    r.clock.tick(60_000);
    unmatched = r.events.filter((e) => e.reason === "bridge-unmatched");
    assert.equal(unmatched.length, 2);
    assert.equal(unmatched[1]!.detail?.count, 4, "the rest of the window in one record: 1 + 4 = 5");
    assert.equal(r.bridge.status().unmatched, 5);
  });

  it("reconnects with doubling backoff up to the cap, and resets it once the link is up", () => {
    const r = rig();
    r.bridge.start();
    const waits: number[] = [];
    for (let n = 0; n < 6; n++) {
      const before = r.attempts.length;
      r.attempts[before - 1]!.onClose("network", "ECONNREFUSED");
      assert.equal(r.bridge.status().state, "down");
      let waited = 0;
      while (r.attempts.length === before) {
        r.clock.tick(100);
        waited += 100;
        assert.ok(waited <= 10_000, "an attempt follows");
      }
      waits.push(waited);
    }
    assert.deepEqual(waits, [1000, 2000, 4000, 8000, 8000, 8000]);
    assert.equal(r.bridge.status().failures, 6);
    r.attempts[r.attempts.length - 1]!.onConnect();
    assert.equal(r.bridge.status().failures, 0);
    r.attempts[r.attempts.length - 1]!.onClose("closed", "connection closed");
    const before = r.attempts.length;
    r.clock.tick(1000);
    assert.equal(r.attempts.length, before + 1, "after an up link the first wait is the minimum again");
    assert.ok(r.events.some((e) => e.reason === "home-broker-up") && r.events.some((e) => e.reason === "home-broker-down"));
  });

  it("after close: no reconnect, no ingest, no timers left", async () => {
    const r = rig();
    r.bridge.start();
    r.attempts[0]!.onConnect();
    r.bridge.close();
    assert.equal(r.closed(), 1);
    r.attempts[0]!.onClose("closed", "x");
    r.clock.tick(120_000);
    assert.equal(r.attempts.length, 1);
    await assert.rejects(r.attempts[0]!.onMessage("tele/plug/a", bytes("z")));
    assert.deepEqual(r.ingested, []);
    assert.equal(r.bridge.status().state, "closed");
    assert.equal(r.clock.pendingCount, 0);
  });

  it("a board without the HomeBroker port refuses a homeBroker config at boot, before touching the board", async () => {
    const secret = "hmac-sha256:AAAAAAAAAAAAAAAAAAAAAA==:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    const parsed = parseGatewayConfig(JSON.stringify({ devices: [{ id: "thermo", secret }], homeBroker: { url: "mqtt://127.0.0.1:1883", subscribe: ["tele/#"], devices: [{ id: "thermo", pattern: "tele/thermo/#" }] } }), []);
    assert.ok(parsed.ok);
    // Every member throws when used: the refusal must come first.
    const untouchable = new Proxy({}, { get: (_t, k) => { throw new Error(`board.${String(k)} used`); } });
    const board = new Proxy({}, { get: (_t, k) => (k === "homeBroker" ? undefined : untouchable) }) as unknown as Board;
    await assert.rejects(startGateway(board, parsed.config, { onVerificationKey: () => undefined, onOwnerToken: () => undefined }), /homeBroker, but this board has no home-broker client/);
  });
});
