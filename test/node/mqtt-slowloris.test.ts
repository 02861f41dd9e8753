/**
 * Issue #13's lock-out, on real sockets (hosts/node/network.ts) and real mqtt.js clients: 500 idle
 * sockets plus 4 re-opened ones held against the broker for 30 s; every legitimate device still gets in.
 * Loopback addresses 127.0.0.x stand in for distinct hosts in the home.
 */
import assert from "node:assert/strict";
import net from "node:net";
import mqtt from "mqtt";
import { Broker } from "../../src/mqtt/broker.js";
import type { AuditEvent } from "../../src/audit/types.js";
import { nodeClock, nodeTimers } from "../../hosts/node/clock.js";
import { nodeNetwork, type NodeListener } from "../../hosts/node/network.js";
import { CREDENTIALS } from "../fixtures/mqtt/harness.js";

const ATTACK_MS = Number(process.env["SLOWLORIS_MS"] ?? 30000);
const IDLE = 500;
/** The idle sockets come from these addresses (many source ports each). */
const IDLE_ADDRESSES = Array.from({ length: 10 }, (_, i) => `127.0.0.${i + 1}`);
/** Each re-opener has its own address and reconnects as soon as the broker closes it. */
const REOPEN_ADDRESSES = ["127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24"];
/** Legitimate devices: half share an address with idle attackers, half have their own. */
const DEVICE_ADDRESSES = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.101", "127.0.0.102", "127.0.0.103", "127.0.0.104", "127.0.0.105"];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function rawSocket(port: number, localAddress: string): net.Socket {
  const s = net.connect({ port, host: "127.0.0.1", localAddress });
  s.on("error", () => {});
  s.resume();
  return s;
}

/** One mqtt.js connect from `localAddress`: resolves true on CONNACK 0, false on any failure or after 5 s. */
function deviceConnects(port: number, clientId: string, localAddress: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = new mqtt.MqttClient(() => net.connect({ port, host: "127.0.0.1", localAddress }), {
      clientId,
      username: clientId,
      password: CREDENTIALS.get(clientId)!,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      keepalive: 0,
    });
    const done = (ok: boolean) => {
      c.removeAllListeners();
      c.on("error", () => {});
      c.end(true);
      resolve(ok);
    };
    c.once("connect", () => done(true));
    c.once("error", () => done(false));
    c.once("close", () => done(false));
  });
}

describe("mqtt broker under a slow-CONNECT flood (issue #13)", function () {
  this.timeout(ATTACK_MS + 20000);
  let listener: NodeListener;
  let broker: Broker;
  const timers = nodeTimers();
  const events: AuditEvent[] = [];

  before(async () => {
    broker = new Broker({
      clock: nodeClock(),
      timers,
      authenticate: (id, _u, pw) => pw !== undefined && CREDENTIALS.get(id) === Buffer.from(pw).toString(),
      onPublish: () => {},
      onEvent: (e) => void events.push(e),
    });
    listener = nodeNetwork({ host: "127.0.0.1" }).listen({ port: 0, onConnection: (s) => broker.accept(s) });
    await listener.ready;
  });

  after(() => {
    broker.close();
    listener.close();
    timers.cancelAll();
  });

  it(`500 idle sockets plus 4 re-opened ones for ${ATTACK_MS / 1000} s: 10 of 10 legitimate connects succeed`, async () => {
    const port = listener.port;
    const idle: net.Socket[] = [];
    for (let i = 0; i < IDLE; i++) idle.push(rawSocket(port, IDLE_ADDRESSES[i % IDLE_ADDRESSES.length]!));
    let attacking = true;
    let reopened = 0;
    const reopeners: net.Socket[] = [];
    const reopen = (address: string): void => {
      if (!attacking) return;
      const s = rawSocket(port, address);
      reopeners.push(s);
      s.once("close", () => {
        reopened++;
        setImmediate(() => reopen(address));
      });
    };
    REOPEN_ADDRESSES.forEach(reopen);
    await sleep(1000); // the flood is in place

    const ids = [...CREDENTIALS.keys()];
    const results: boolean[] = [];
    const gap = (ATTACK_MS - 1000) / DEVICE_ADDRESSES.length;
    const started = Date.now();
    for (const [i, address] of DEVICE_ADDRESSES.entries()) {
      results.push(await deviceConnects(port, ids[i % ids.length]!, address));
      const wait = started + (i + 1) * gap - Date.now();
      if (wait > 0) await sleep(wait);
    }
    attacking = false;
    const open = idle.filter((s) => !s.destroyed && s.readyState === "open").length;
    for (const s of [...idle, ...reopeners]) s.destroy();

    console.log(`      legitimate connects: ${results.filter(Boolean).length}/10; re-opens: ${reopened}; idle sockets still open at the end: ${open}/${IDLE}`);
    assert.deepEqual(results, DEVICE_ADDRESSES.map(() => true));
    assert.ok(reopened >= REOPEN_ADDRESSES.length, "the re-openers were closed (connect timeout or eviction) and came back");
    // Evictions are recorded in aggregate: a handful of records, not one per socket.
    const evicted = events.filter((e) => e.reason === "evicted");
    assert.ok(evicted.length > 0 && evicted.length <= 2 * (IDLE_ADDRESSES.length + REOPEN_ADDRESSES.length + DEVICE_ADDRESSES.length), `${evicted.length} eviction records`);
    assert.ok(events.every((e) => e.decision !== "deny" || e.device === undefined), "no refusal names a device");
  });
});
