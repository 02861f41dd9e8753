/** Device → gateway flow control: PUBACK only after a promised acceptance, in order; pausing; the publish rate limit. */
import assert from "node:assert/strict";
import { MAX_PENDING_ACCEPTS } from "../../src/mqtt/broker.js";
import type { Packet } from "../../src/mqtt/codec.js";
import type { DeviceSocket } from "../../src/ports.js";
import { PUBLISH_BURST, RATE_EXCESS_FACTOR } from "../../src/mqtt/rate.js";
import { FakeSocket } from "../fixtures/mqtt/fake-socket.js";
import { harness } from "../fixtures/mqtt/harness.js";
import { ascii } from "../fixtures/mqtt/packets.js";

const pub = (topic: string, qos: 0 | 1, packetId = 1): Packet =>
  qos === 0
    ? { cmd: "publish", topic, payload: ascii("v"), qos: 0, retain: false, dup: false }
    : { cmd: "publish", topic, payload: ascii("v"), qos: 1, retain: false, dup: false, packetId };

/** Lets promise reactions run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

interface Deferred {
  topic: string;
  resolve(): void;
  reject(e: Error): void;
}

/** A broker whose onPublish returns promises the test settles by hand. */
function deferredHarness(limits: Record<string, number> = {}) {
  const calls: Deferred[] = [];
  const h = harness({
    limits,
    onPublish: (_id, topic) =>
      new Promise<void>((resolve, reject) => void calls.push({ topic, resolve, reject })),
  });
  return { ...h, calls };
}

const acks = (s: FakeSocket) => s.take().flatMap((p) => (p.cmd === "puback" ? [p.packetId] : []));

describe("mqtt flow: promised acceptance (onPublish returns a promise)", () => {
  it("sends no PUBACK before the promise resolves, then PUBACKs in arrival order whatever order they resolve in", async () => {
    const h = deferredHarness();
    const s = h.connect("dev1");
    s.take();
    for (const id of [11, 12, 13]) s.send(pub(`dev1/t${id}`, 1, id));
    assert.deepEqual(h.calls.map((c) => c.topic), ["dev1/t11", "dev1/t12", "dev1/t13"]);
    await settle();
    assert.deepEqual(acks(s), [], "nothing acknowledged before acceptance");
    h.calls[2]!.resolve();
    h.calls[1]!.resolve();
    await settle();
    assert.deepEqual(acks(s), [], "12 and 13 wait for 11 (§4.6)");
    h.calls[0]!.resolve();
    await settle();
    assert.deepEqual(acks(s), [11, 12, 13]);
  });

  it("keeps a synchronously accepted QoS 1 behind an earlier pending one", async () => {
    let promised = true;
    let release: () => void = () => {};
    const h = harness({
      onPublish: () => (promised ? new Promise<void>((r) => (release = r)) : undefined),
    });
    const s = h.connect("dev1");
    s.take();
    s.send(pub("dev1/a", 1, 1));
    promised = false;
    s.send(pub("dev1/b", 1, 2));
    assert.deepEqual(acks(s), []);
    release();
    await settle();
    assert.deepEqual(acks(s), [1, 2]);
  });

  it("a rejection means not accepted: no PUBACK, connection closed with a record and the will", async () => {
    const h = deferredHarness();
    const s = h.connect("dev1", { will: { topic: "dev1/lwt", payload: ascii("x"), qos: 0, retain: false } });
    s.take();
    s.send(pub("dev1/a", 1, 1));
    s.send(pub("dev1/b", 1, 2));
    h.calls[0]!.reject(new Error("flash write failed"));
    h.calls[1]!.resolve();
    await settle();
    assert.deepEqual(acks(s), []);
    assert.equal(s.closed, true);
    assert.deepEqual(h.events.at(-1), {
      kind: "disconnect", decision: "info", device: "dev1", reason: "internal-error",
      detail: { remote: s.remote, will: true, message: "Error: flash write failed" },
    });
    assert.deepEqual(h.calls.map((c) => c.topic), ["dev1/a", "dev1/b", "dev1/lwt"]);
    h.calls[2]!.reject(new Error("also refused")); // a refused will has no one to tell; nothing is thrown
    await settle();
    assert.equal(s.writeAfterClose, false);
  });

  it(`pauses reading at maxPendingAccepts (default ${MAX_PENDING_ACCEPTS}), holds what arrives in order, and resumes below`, async () => {
    const h = deferredHarness({ maxPendingAccepts: 2 });
    const s = h.connect("dev1");
    s.take();
    s.send(pub("dev1/a", 1, 1));
    assert.equal(s.pauses, 0);
    s.send(pub("dev1/b", 0));
    assert.deepEqual([s.paused, s.pauses], [true, 1]);
    // Bytes already read still arrive: they are held in order, not handed to the gateway.
    s.send(pub("dev1/c", 1, 3));
    s.send({ cmd: "pingreq" });
    assert.deepEqual(h.calls.map((c) => c.topic), ["dev1/a", "dev1/b"]);
    assert.deepEqual(s.take(), []);
    h.calls[1]!.resolve(); // QoS 0 accepted, but it is behind a: nothing moves yet
    await settle();
    assert.deepEqual(h.calls.length, 2);
    h.calls[0]!.resolve();
    await settle();
    assert.deepEqual(h.calls.map((c) => c.topic), ["dev1/a", "dev1/b", "dev1/c"]);
    assert.deepEqual(s.take(), [{ cmd: "puback", packetId: 1 }, { cmd: "pingresp" }]);
    assert.deepEqual([s.paused, s.resumes], [false, 1], "one pending: below the limit again");
    h.calls[2]!.resolve();
    await settle();
    assert.deepEqual(acks(s), [3]);
    assert.equal(s.closed, false);
  });

  it("without pause, buffers up to maxInflight × maxPacketBytes and then closes with backpressure", () => {
    const h = deferredHarness({ maxPendingAccepts: 1, maxInflight: 1, maxPacketBytes: 256 });
    const s = new FakeSocket("192.0.2.7:1000");
    const withoutPause: DeviceSocket = { remote: s.remote, write: (d) => s.write(d), close: () => s.close() };
    s.handler = h.broker.accept(withoutPause);
    s.send({ cmd: "connect", clientId: "dev1", cleanSession: true, keepalive: 0, username: "dev1", password: ascii("pw-one") });
    s.take();
    let sent = 0;
    while (!s.closed && sent < 100) {
      s.send({ cmd: "publish", topic: "dev1/t", payload: new Uint8Array(100), qos: 0, retain: false, dup: false });
      sent++;
    }
    assert.equal(h.calls.length, 1, "only the first reached the gateway");
    assert.equal(sent, 4, "1 handed over, 2 held (2 × 122 bytes ≤ 256); the third held one is past the bound");
    assert.equal(h.events.at(-1)?.reason, "backpressure");
  });

  it("ignores settlements after the session closed", async () => {
    const h = deferredHarness();
    const s = h.connect("dev1");
    s.take();
    s.send(pub("dev1/a", 1, 1));
    s.send({ cmd: "disconnect" });
    h.calls[0]!.resolve();
    await settle();
    assert.deepEqual([s.take(), s.writeAfterClose], [[], false]);
  });
});

describe("mqtt flow: publish rate limit (token bucket per device)", () => {
  it("passes a burst, drops QoS 0 beyond it with one aggregated record, and refills at the rate", () => {
    const h = harness({ limits: { publishBurst: 5, publishRatePerSec: 2, aggregateWindowMs: 60000 } });
    const s = h.connect("dev1");
    for (let i = 0; i < 8; i++) s.send(pub("dev1/t", 0));
    assert.equal(h.published.length, 5);
    const limited = () => h.events.filter((e) => e.reason === "rate-limit");
    assert.deepEqual(limited(), [{ kind: "flow", decision: "deny", device: "dev1", reason: "rate-limit", detail: { remote: s.remote, count: 1 } }]);
    h.clock.tick(499);
    s.send(pub("dev1/t", 0));
    assert.equal(h.published.length, 5, "half a token is not a token");
    h.clock.tick(1);
    s.send(pub("dev1/t", 0));
    assert.equal(h.published.length, 6);
    h.clock.tick(60000);
    assert.deepEqual(limited().map((e) => e.detail?.["count"]), [1, 3], "1 + 3 = the four dropped");
    assert.equal(s.closed, false);
  });

  it("refuses a QoS 1 PUBLISH beyond the rate without PUBACK and closes, so the device keeps it", () => {
    const h = harness({ limits: { publishBurst: 2 } });
    const s = h.connect("dev1");
    s.take();
    for (const id of [1, 2, 3]) s.send(pub("dev1/t", 1, id));
    assert.deepEqual(s.take(), [{ cmd: "puback", packetId: 1 }, { cmd: "puback", packetId: 2 }]);
    assert.equal(h.published.length, 2);
    assert.equal(s.closed, true);
    assert.deepEqual(h.events.slice(1).map((e) => [e.kind, e.reason, e.detail?.["count"]]), [
      ["flow", "rate-limit", 1],
      ["disconnect", "rate-limit", undefined],
    ]);
  });

  it(`disconnects a device refused more than ${RATE_EXCESS_FACTOR} × its burst in one window`, () => {
    const h = harness();
    const s = h.connect("dev1");
    let sent = 0;
    while (!s.closed && sent < 1000) {
      s.send(pub("dev1/t", 0));
      sent++;
    }
    assert.equal(sent, PUBLISH_BURST + RATE_EXCESS_FACTOR * PUBLISH_BURST + 1);
    assert.equal(h.published.length, PUBLISH_BURST);
    const rate = h.events.filter((e) => e.reason === "rate-limit");
    assert.deepEqual(rate.map((e) => [e.kind, e.detail?.["count"]]), [
      ["flow", 1],
      ["flow", RATE_EXCESS_FACTOR * PUBLISH_BURST], // flushed when the device leaves: nothing uncounted
      ["disconnect", undefined],
    ]);
    assert.equal(h.clock.pendingCount, 0);
  });

  it("keeps the buckets of devices apart", () => {
    const h = harness({ limits: { publishBurst: 1 } });
    const a = h.connect("dev1");
    const b = h.connect("dev2");
    a.send(pub("dev1/t", 0));
    a.send(pub("dev1/t", 0));
    b.send(pub("dev2/t", 0));
    assert.deepEqual(h.published.map((p) => p.clientId), ["dev1", "dev2"]);
  });
});

describe("mqtt flow: refusals name the claimed id, never device", () => {
  it("bad client id and a wrong password all use detail.claimed", () => {
    const h = harness();
    h.connect("a/b");
    h.connect("dev1", { pw: "wrong" });
    for (const e of h.events) {
      assert.equal(e.device, undefined);
      assert.ok(typeof e.detail?.["claimed"] === "string");
    }
    assert.deepEqual(h.events.map((e) => e.detail?.["claimed"]), ["a/b", "dev1"]);
  });

  it("clips a long claimed id to maxClientIdBytes", () => {
    const h = harness();
    h.connect("x".repeat(300));
    assert.equal(h.events[0]?.detail?.["claimed"], "x".repeat(64));
  });
});
