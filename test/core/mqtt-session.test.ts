/** Broker sessions on a fake clock and in-memory sockets: CONNECT outcomes, keepalive, wills, QoS, limits, takeover. */
import assert from "node:assert/strict";
import { Broker, CONNECT_TIMEOUT_MS } from "../../src/mqtt/broker.js";
import type { Packet } from "../../src/mqtt/codec.js";
import { harness } from "../fixtures/mqtt/harness.js";
import { ascii, hex } from "../fixtures/mqtt/packets.js";

const connack = (returnCode: number): Packet => ({ cmd: "connack", sessionPresent: false, returnCode: returnCode as 0 });
const pub = (topic: string, qos: 0 | 1 | 2 = 0, packetId?: number): Packet =>
  qos === 0
    ? { cmd: "publish", topic, payload: ascii("v"), qos, retain: false, dup: false }
    : { cmd: "publish", topic, payload: ascii("v"), qos, retain: false, dup: false, packetId: packetId ?? 1 };
const will = { topic: "dev1/status", payload: ascii("offline"), qos: 1 as const, retain: false };

describe("mqtt session: CONNECT", () => {
  it("accepts a device with the right password: CONNACK 0, connect event, listed in clients()", () => {
    const h = harness();
    const s = h.connect("dev1");
    assert.deepEqual(s.take(), [connack(0)]);
    assert.equal(s.closed, false);
    assert.deepEqual(h.events, [{ kind: "connect", decision: "allow", device: "dev1", detail: { remote: s.remote, keepalive: 0, takeover: false } }]);
    assert.deepEqual(h.broker.clients(), [{ clientId: "dev1", remote: s.remote, since: h.clock.monotonic() }]);
  });

  for (const [name, id, pw] of [
    ["a wrong password", "dev1", "nope"],
    ["an unknown client id", "intruder", "pw-one"],
  ] as const) {
    it(`refuses ${name} with CONNACK 5 and an auth deny`, () => {
      const h = harness();
      const s = h.connect(id, { pw });
      assert.deepEqual(s.take(), [connack(5)]);
      assert.equal(s.closed, true);
      // The id is only claimed: it is never recorded as `device` (that would blame the real device).
      assert.deepEqual(h.events, [{ kind: "auth", decision: "deny", reason: "not-authorized", detail: { remote: s.remote, claimed: id } }]);
      assert.deepEqual(h.broker.clients(), []);
      assert.equal(h.clock.pendingCount, 0);
    });
  }

  it("treats a throwing authenticate as a refusal", () => {
    const h = harness({ authenticate: () => { throw new Error("db down"); } });
    assert.deepEqual(h.connect("dev1").take(), [connack(5)]);
  });

  it("refuses an empty or oversized client id with CONNACK 2 (bad-client-id)", () => {
    const h = harness();
    assert.deepEqual(h.connect("").take(), [connack(2)]);
    assert.deepEqual(h.connect("x".repeat(65)).take(), [connack(2)]);
    assert.deepEqual(h.events.map((e) => e.reason), ["bad-client-id", "bad-client-id"]);
  });

  it("refuses client ids with a topic separator, wildcard or control character (CONNACK 2)", () => {
    const h = harness({ authenticate: () => true });
    for (const id of ["a/b", "dev+", "dev#", "tab\there"]) assert.deepEqual(h.connect(id).take(), [connack(2)], id);
  });

  it("accepts a persistent session (clean session 0); no session present the first time", () => {
    const h = harness();
    const s = h.connect("dev1", { cleanSession: false });
    assert.deepEqual(s.take(), [connack(0)]);
    assert.deepEqual(h.events[0]?.detail, { remote: s.remote, keepalive: 0, takeover: false, persistent: true, resumed: false });
  });

  it("answers protocol level 6 with CONNACK 1 and closes", () => {
    const h = harness();
    const s = h.open();
    s.send(hex("10 0d 0004 4d515454 06 02 003c 0001 61"));
    assert.deepEqual(s.take(), [connack(1)]);
    assert.equal(s.closed, true);
    assert.equal(h.events[0]?.reason, "unsupported-protocol-level");
  });

  it("closes without CONNACK when the first packet is not CONNECT", () => {
    const h = harness();
    const s = h.open();
    s.send({ cmd: "pingreq" });
    assert.deepEqual(s.take(), []);
    assert.equal(s.closed, true);
    assert.deepEqual(h.events, [{ kind: "protocol", decision: "deny", reason: "expected-connect", detail: { remote: s.remote, message: "pingreq before CONNECT (§3.1)" } }]);
  });

  it("closes a socket that sends no CONNECT within the connect timeout", () => {
    const h = harness();
    const s = h.open();
    h.clock.tick(CONNECT_TIMEOUT_MS - 1);
    assert.equal(s.closed, false);
    h.clock.tick(1);
    assert.equal(s.closed, true);
    assert.equal(h.events[0]?.reason, "connect-timeout");
    assert.equal(h.clock.pendingCount, 0);
  });

  it("closes on a second CONNECT and publishes the will", () => {
    const h = harness();
    const s = h.connect("dev1", { will });
    s.send({ cmd: "connect", clientId: "dev1", cleanSession: true, keepalive: 0 });
    assert.equal(s.closed, true);
    assert.deepEqual(h.events.map((e) => [e.kind, e.reason]), [["connect", undefined], ["protocol", "second-connect"], ["disconnect", "protocol"]]);
    assert.equal(h.published.length, 1);
  });
});

describe("mqtt session: keepalive (§3.1.2.10)", () => {
  it("closes after 1.5 × keepalive of silence, not before; any packet restarts the count", () => {
    const h = harness();
    const s = h.connect("dev1", { keepalive: 10, will });
    h.clock.tick(10000);
    s.send({ cmd: "pingreq" });
    assert.deepEqual(s.take(), [connack(0), { cmd: "pingresp" }]);
    h.clock.tick(14999);
    assert.equal(s.closed, false);
    h.clock.tick(1);
    assert.equal(s.closed, true);
    assert.deepEqual(h.events.at(-1), { kind: "disconnect", decision: "info", device: "dev1", reason: "keepalive", detail: { remote: s.remote, will: true } });
    assert.deepEqual(h.published, [{ clientId: "dev1", topic: will.topic, payload: will.payload, qos: 1 }]);
    assert.equal(h.clock.pendingCount, 0);
  });

  it("never expires with keepalive 0", () => {
    const h = harness();
    const s = h.connect("dev1");
    h.clock.tick(10 * 24 * 3600 * 1000);
    assert.equal(s.closed, false);
  });
});

describe("mqtt session: will (§3.1.2.5)", () => {
  it("is published when the peer drops the connection", () => {
    const h = harness();
    const s = h.connect("dev1", { will: { ...will, qos: 2 } });
    s.handler!.onClose();
    assert.deepEqual(h.published, [{ clientId: "dev1", topic: will.topic, payload: will.payload, qos: 1 }]);
    assert.equal(h.events.at(-1)?.reason, "peer-closed");
  });

  it("is discarded on DISCONNECT", () => {
    const h = harness();
    const s = h.connect("dev1", { will });
    s.send({ cmd: "disconnect" });
    s.handler!.onClose();
    assert.equal(s.closed, true);
    assert.deepEqual(h.published, []);
    assert.deepEqual(h.events.map((e) => e.reason), [undefined, "clean"]);
  });
});

describe("mqtt session: PUBLISH from devices", () => {
  it("passes QoS 0 to the gateway without an acknowledgement", () => {
    const h = harness();
    const s = h.connect("dev1");
    s.take();
    s.send(pub("dev1/temp"));
    assert.deepEqual(h.published, [{ clientId: "dev1", topic: "dev1/temp", payload: ascii("v"), qos: 0 }]);
    assert.deepEqual(s.take(), []);
  });

  it("acknowledges QoS 1 only after the gateway accepted it", () => {
    let s: ReturnType<ReturnType<typeof harness>["connect"]> | undefined;
    let ackedBeforeAccept = true;
    const h = harness({ onPublish: () => void (ackedBeforeAccept = s!.received.some((p) => p.cmd === "puback")) });
    s = h.connect("dev1");
    s.take();
    s.send(pub("dev1/temp", 1, 77));
    assert.equal(ackedBeforeAccept, false);
    assert.deepEqual(s.take(), [{ cmd: "puback", packetId: 77 }]);
  });

  it("sends no PUBACK and closes when the gateway refuses the message", () => {
    const h = harness({ onPublish: () => { throw new Error("queue full"); } });
    const s = h.connect("dev1");
    s.take();
    s.send(pub("dev1/temp", 1));
    assert.deepEqual(s.take(), []);
    assert.equal(s.closed, true);
    assert.equal(h.events.at(-1)?.reason, "internal-error");
  });

  for (const p of [pub("dev1/temp", 2), { cmd: "pubrel", packetId: 1 } as Packet]) {
    it(`with maxQos 1, closes on QoS 2 (${p.cmd} qos ${"qos" in p ? p.qos : "-"}) with a protocol record and the will`, () => {
      const h = harness({ limits: { maxQos: 1 } });
      const s = h.connect("dev1", { will });
      s.send(p);
      assert.equal(s.closed, true);
      assert.deepEqual(h.events.map((e) => [e.kind, e.reason]), [["connect", undefined], ["protocol", "qos2-unsupported"], ["disconnect", "protocol"]]);
      assert.deepEqual(h.published.map((x) => x.topic), [will.topic]);
    });
  }

  it("closes on a server-only packet from a device", () => {
    const h = harness();
    const s = h.connect("dev1");
    s.send({ cmd: "suback", packetId: 1, granted: [0] });
    assert.equal(s.closed, true);
    assert.equal(h.events[1]?.reason, "unexpected-packet");
  });
});

describe("mqtt session: SUBSCRIBE, UNSUBSCRIBE and deliver", () => {
  it("grants min(requested, 2) by default", () => {
    const h = harness();
    const s = h.connect("dev1");
    s.take();
    s.send({ cmd: "subscribe", packetId: 3, subscriptions: [{ filter: "a", qos: 2 }, { filter: "b", qos: 1 }, { filter: "c", qos: 0 }] });
    assert.deepEqual(s.take(), [{ cmd: "suback", packetId: 3, granted: [2, 1, 0] }]);
  });

  it("with maxQos 1, grants min(requested, 1), 0x80 for refused filters, and delivers at the granted QoS", () => {
    const h = harness({ limits: { maxQos: 1 }, authorizeSubscribe: (id, f) => f.startsWith(`cmd/${id}/`) });
    const s = h.connect("dev1");
    s.take();
    s.send({ cmd: "subscribe", packetId: 3, subscriptions: [{ filter: "cmd/dev1/#", qos: 2 }, { filter: "cmd/dev2/#", qos: 0 }] });
    assert.deepEqual(s.take(), [{ cmd: "suback", packetId: 3, granted: [1, 0x80] }]);
    assert.deepEqual(h.events.at(-1), { kind: "auth", decision: "deny", device: "dev1", topic: "cmd/dev2/#", reason: "not-authorized", detail: { remote: s.remote, op: "subscribe" } });
    assert.equal(h.broker.deliver("cmd/dev1/on", ascii("1"), 1), 1);
    assert.equal(h.broker.deliver("cmd/dev2/on", ascii("1"), 1), 0);
    assert.deepEqual(s.take(), [{ cmd: "publish", topic: "cmd/dev1/on", payload: ascii("1"), qos: 1, retain: false, dup: false, packetId: 1 }]);
  });

  it("delivers once per device at the highest matching grant, QoS 0 when asked", () => {
    const h = harness();
    const s = h.connect("dev1");
    s.send({ cmd: "subscribe", packetId: 1, subscriptions: [{ filter: "a/+", qos: 0 }, { filter: "a/#", qos: 1 }, { filter: "#", qos: 0 }] });
    s.take();
    assert.equal(h.broker.deliver("a/b", ascii("x"), 1), 1);
    assert.equal(h.broker.deliver("a/b", ascii("y")), 1);
    assert.equal(h.broker.deliver("$SYS/x", ascii("z")), 0); // §4.7.2
    assert.deepEqual(s.take().map((p) => p.cmd === "publish" && p.qos), [1, 0]);
  });

  it("stops delivering after UNSUBSCRIBE", () => {
    const h = harness();
    const s = h.connect("dev1");
    s.send({ cmd: "subscribe", packetId: 1, subscriptions: [{ filter: "a", qos: 0 }] });
    s.send({ cmd: "unsubscribe", packetId: 2, filters: ["a"] });
    assert.deepEqual(s.take().slice(1), [{ cmd: "suback", packetId: 1, granted: [0] }, { cmd: "unsuback", packetId: 2 }]);
    assert.equal(h.broker.deliver("a", ascii("x")), 0);
  });

  it("refuses subscriptions beyond maxSubscriptionsPerClient, but lets existing ones be renewed", () => {
    const h = harness({ limits: { maxSubscriptionsPerClient: 2 } });
    const s = h.connect("dev1");
    s.take();
    s.send({ cmd: "subscribe", packetId: 1, subscriptions: [{ filter: "a", qos: 0 }, { filter: "b", qos: 1 }, { filter: "c", qos: 0 }] });
    s.send({ cmd: "subscribe", packetId: 2, subscriptions: [{ filter: "a", qos: 1 }] });
    assert.deepEqual(s.take(), [{ cmd: "suback", packetId: 1, granted: [0, 1, 0x80] }, { cmd: "suback", packetId: 2, granted: [1] }]);
    assert.equal(h.events.at(-1)?.reason, "limit");
  });

  it("keeps at most maxInflight unacknowledged QoS 1 messages per device", () => {
    const h = harness({ limits: { maxInflight: 2 } });
    const s = h.connect("dev1");
    s.send({ cmd: "subscribe", packetId: 1, subscriptions: [{ filter: "a", qos: 1 }] });
    s.take();
    assert.deepEqual([1, 2, 3].map(() => h.broker.deliver("a", ascii("x"), 1)), [1, 1, 0]);
    s.send({ cmd: "puback", packetId: 1 });
    assert.equal(h.broker.deliver("a", ascii("x"), 1), 1);
    assert.deepEqual(s.take().map((p) => "packetId" in p && p.packetId), [1, 2, 3]);
  });

  it("stops delivering to a blocked socket beyond the in-flight limit until onWritable", () => {
    const h = harness({ limits: { maxInflight: 3 } });
    const s = h.connect("dev1");
    s.send({ cmd: "subscribe", packetId: 1, subscriptions: [{ filter: "a", qos: 0 }] });
    s.full = true;
    const counts = Array.from({ length: 6 }, () => h.broker.deliver("a", ascii("x")));
    assert.deepEqual(counts, [1, 1, 1, 0, 0, 0]);
    s.full = false;
    s.handler!.onWritable!();
    assert.equal(h.broker.deliver("a", ascii("x")), 1);
  });

  it("closes a device that stops reading once its blocked output exceeds maxInflight × maxPacketBytes", () => {
    const h = harness({ limits: { maxInflight: 1, maxPacketBytes: 64 } });
    const s = h.connect("dev1");
    s.full = true;
    let sent = 0;
    while (!s.closed && sent < 1000) {
      s.send({ cmd: "pingreq" });
      sent++;
    }
    assert.equal(sent, 33); // 33 PINGRESPs × 2 bytes = 66 > 1 × 64; the CONNACK went out before the block
    assert.equal(h.events.at(-1)?.reason, "backpressure");
    assert.equal(s.writeAfterClose, false);
  });

  it("rejects a bad topic or QoS in deliver (a gateway bug)", () => {
    const h = harness();
    assert.throws(() => h.broker.deliver("a/#", ascii("x")), RangeError);
    assert.throws(() => h.broker.deliver("a", ascii("x"), 2 as 1), RangeError);
  });
});

describe("mqtt session: limits and takeover", () => {
  it("answers CONNACK 3 beyond maxConnections", () => {
    const h = harness({ limits: { maxConnections: 2 } });
    h.connect("dev1");
    h.connect("dev2");
    const s = h.connect("dev3");
    assert.deepEqual(s.take(), [connack(3)]);
    assert.equal(s.closed, true);
    assert.deepEqual(h.events.at(-1), { kind: "connect", decision: "deny", reason: "limit", detail: { remote: s.remote, claimed: "dev3" } });
    assert.equal(h.broker.clients().length, 2);
  });

  it("beyond maxPendingPerAddress, a new socket evicts the oldest pending one from the same address only", () => {
    const h = harness({ limits: { maxPendingPerAddress: 2, maxPendingConnections: 10 } });
    const other = h.open("192.0.2.9");
    const [a, b, c] = [h.open(), h.open(), h.open()];
    assert.deepEqual([other.closed, a.closed, b.closed, c.closed], [false, true, false, false]);
    assert.deepEqual(h.events, [{ kind: "connect", decision: "deny", reason: "evicted", detail: { remote: "192.0.2.1", count: 1 } }]);
    assert.equal(h.connect("dev1").take()[0]?.cmd, "connack", "a device from the attacked address still gets in");
    assert.equal(b.closed, true);
  });

  it("beyond maxPendingConnections, a new socket evicts the oldest pending one of all, and a device gets in", () => {
    const h = harness({ limits: { maxPendingPerAddress: 1, maxPendingConnections: 3 } });
    const idle = ["192.0.2.10", "192.0.2.11", "192.0.2.12"].map((a) => h.open(a));
    const dev = h.connect("dev1", { from: "192.0.2.50" });
    assert.deepEqual(dev.take(), [connack(0)]);
    assert.deepEqual(idle.map((s) => s.closed), [true, false, false]);
    assert.deepEqual(h.events.map((e) => [e.kind, e.reason, e.detail?.["remote"]]), [
      ["connect", "evicted", "192.0.2.10"],
      ["connect", undefined, dev.remote],
    ]);
    // A connected device no longer counts towards the pool: another idle socket fits without an eviction.
    const more = ["192.0.2.13"].map((a) => h.open(a));
    assert.deepEqual([...idle, ...more].map((s) => s.closed), [true, false, false, false]);
  });

  it("records a flood of evictions as one record at once and one count per window and address", () => {
    const h = harness({ limits: { maxPendingPerAddress: 1, aggregateWindowMs: 1000 } });
    for (let i = 0; i < 500; i++) h.open();
    assert.deepEqual(h.events.map((e) => e.detail?.["count"]), [1]);
    h.clock.tick(1000);
    assert.deepEqual(h.events.map((e) => [e.reason, e.detail?.["remote"], e.detail?.["count"]]), [
      ["evicted", "192.0.2.1", 1],
      ["evicted", "192.0.2.1", 498],
    ]);
    h.clock.tick(5000);
    assert.equal(h.events.length, 2, "an empty window writes nothing");
  });

  it("closes a connection whose packet exceeds maxPacketBytes, and only that one", () => {
    const h = harness({ limits: { maxPacketBytes: 64 } });
    const a = h.connect("dev1");
    const b = h.connect("dev2");
    a.send({ cmd: "publish", topic: "t", payload: new Uint8Array(100), qos: 0, retain: false, dup: false });
    assert.equal(a.closed, true);
    assert.equal(b.closed, false);
    assert.ok(h.events.some((e) => e.kind === "protocol" && e.reason === "packet-too-large" && e.device === "dev1"));
    b.send(pub("dev2/x"));
    assert.equal(h.published.length, 1);
  });

  it("takes over a session with the same client id (§3.1.4), even at maxConnections", () => {
    const h = harness({ limits: { maxConnections: 1 } });
    const old = h.connect("dev1", { will });
    const fresh = h.connect("dev1");
    assert.equal(old.closed, true);
    assert.deepEqual(fresh.take(), [connack(0)]);
    assert.deepEqual(h.events.map((e) => [e.kind, e.reason, e.detail?.["remote"]]).slice(1), [
      ["disconnect", "takeover", old.remote],
      ["connect", undefined, fresh.remote],
    ]);
    assert.equal(h.events.at(-1)?.detail?.["takeover"], true);
    assert.deepEqual(h.broker.clients().map((c) => c.remote), [fresh.remote]);
    assert.equal(h.published.length, 1); // the old session's will
  });

  it("does not let an unauthenticated connection take over", () => {
    const h = harness();
    const old = h.connect("dev1");
    h.connect("dev1", { pw: "wrong" });
    assert.equal(old.closed, false);
    assert.deepEqual(h.broker.clients().map((c) => c.remote), [old.remote]);
  });
});

describe("mqtt session: robustness", () => {
  it("closes only the connection that sent garbage, and never throws out of onData", () => {
    const h = harness();
    const a = h.connect("dev1", { will });
    const b = h.connect("dev2");
    a.send(hex("f0 ff ff ff ff 01 02"));
    assert.equal(a.closed, true);
    assert.equal(b.closed, false);
    assert.equal(h.events.find((e) => e.kind === "protocol")?.reason, "bad-packet-type");
    assert.equal(h.published.length, 1);
    a.handler!.onData(hex("c0 00"));
    a.handler!.onClose();
    assert.equal(a.writeAfterClose, false);
  });

  it("swallows a throwing onEvent", () => {
    const h = harness({ onEvent: () => { throw new Error("log full"); } });
    assert.deepEqual(h.connect("dev1").take(), [connack(0)]);
  });

  it("close() ends every session without wills and refuses new sockets; twice is harmless", () => {
    const h = harness();
    const a = h.connect("dev1", { will });
    const pending = h.open();
    h.broker.close();
    h.broker.close();
    assert.equal(a.closed && pending.closed, true);
    assert.equal(h.published.length, 0);
    assert.equal(h.events.at(-1)?.reason, "shutdown");
    assert.equal(h.open().closed, true);
    assert.equal(h.clock.pendingCount, 0);
  });

  it("rejects bad options at construction", () => {
    const ok = harness();
    const base = { clock: ok.clock, timers: ok.clock, authenticate: () => true, onPublish: () => {}, onEvent: () => {} };
    assert.throws(() => new Broker({ ...base, authenticate: undefined } as never), TypeError);
    assert.throws(() => new Broker({ ...base, clock: undefined } as never), TypeError);
    assert.throws(() => new Broker({ ...base, limits: { maxInflight: 0 } }), RangeError);
    assert.throws(() => new Broker({ ...base, limits: { maxConnections: 1.5 } }), RangeError);
  });
});
