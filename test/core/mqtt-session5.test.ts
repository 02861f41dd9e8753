/** MQTT 5 and 3.1 sessions on a fake clock: CONNACK properties, reason codes, session expiry, receive maximum, aliases, maximum packet size, will delay, no-local, retain handling. */
import assert from "node:assert/strict";
import type { Packet } from "../../src/mqtt/codec.js";
import { harness } from "../fixtures/mqtt/harness.js";
import { ascii } from "../fixtures/mqtt/packets.js";

const V5 = { version: 5 as const };
const sub = (filter: string, qos: 0 | 1 | 2 = 1, extra: object = {}): Packet => ({ cmd: "subscribe", packetId: 1, subscriptions: [{ filter, qos, ...extra }] });

describe("mqtt 5 session", () => {
  it("accepts a v5 CONNECT with CONNACK 0 and the broker's limits as properties", () => {
    const h = harness({ limits: { maxInflight: 4, maxTopicAliases: 3 } });
    const s = h.connect("dev1", V5);
    const [c] = s.take();
    assert.equal(c?.cmd, "connack");
    assert.equal(c.cmd === "connack" && c.returnCode, 0);
    assert.deepEqual(c.cmd === "connack" && c.properties, { receiveMaximum: 4, maximumPacketSize: 16384, topicAliasMaximum: 3, subscriptionIdentifiersAvailable: 0, sharedSubscriptionAvailable: 0 });
  });

  it("refuses bad credentials with CONNACK 0x86 and a reason string", () => {
    const h = harness();
    const [c] = h.connect("dev1", { ...V5, pw: "nope" }).take();
    assert.deepEqual(c, { cmd: "connack", sessionPresent: false, returnCode: 0x86, properties: { reasonString: "not-authorized" } });
  });

  it("refuses an authentication method with CONNACK 0x8C", () => {
    const h = harness();
    const [c] = h.connect("dev1", { ...V5, properties: { authenticationMethod: "SCRAM-SHA-1" } }).take();
    assert.equal(c?.cmd === "connack" && c.returnCode, 0x8c);
  });

  it("answers the board's session limit with CONNACK 0x89 (server busy)", () => {
    const h = harness({ limits: { maxConnections: 1 } });
    h.connect("dev1", V5);
    const [c] = h.connect("dev2", V5).take();
    assert.equal(c?.cmd === "connack" && c.returnCode, 0x89);
  });

  it("routes user properties, content type, correlation data and response topic to v5 subscribers only; the gateway sees the same publish", () => {
    const h = harness();
    const a = h.connect("dev1", V5);
    const b = h.connect("dev2");
    a.send(sub("t/#"));
    b.send(sub("t/#"));
    a.take();
    b.take();
    const properties = { userProperties: [["k", "v"], ["k", "w"]] as [string, string][], contentType: "text/plain", correlationData: ascii("c1"), responseTopic: "t/reply", payloadFormatIndicator: 1 };
    const c = h.connect("dev3", V5);
    c.send({ cmd: "publish", topic: "t/x", payload: ascii("hi"), qos: 0, retain: false, dup: false, properties });
    const [got] = a.take();
    assert.deepEqual(got, { cmd: "publish", topic: "t/x", payload: ascii("hi"), qos: 0, retain: false, dup: false, properties });
    const [plain] = b.take();
    assert.deepEqual(plain, { cmd: "publish", topic: "t/x", payload: ascii("hi"), qos: 0, retain: false, dup: false });
    assert.deepEqual(h.published, [{ clientId: "dev3", topic: "t/x", payload: ascii("hi"), qos: 0 }]);
  });

  it("resolves topic aliases; alias 0 or above the maximum is DISCONNECT 0x94", () => {
    const h = harness({ limits: { maxTopicAliases: 2 } });
    const s = h.connect("dev1", V5);
    s.send({ cmd: "publish", topic: "a/b", payload: ascii("1"), qos: 0, retain: false, dup: false, properties: { topicAlias: 1 } });
    s.send({ cmd: "publish", topic: "", payload: ascii("2"), qos: 0, retain: false, dup: false, properties: { topicAlias: 1 } });
    assert.deepEqual(h.published.map((p) => p.topic), ["a/b", "a/b"]);
    s.take();
    s.send({ cmd: "publish", topic: "c", payload: ascii("3"), qos: 0, retain: false, dup: false, properties: { topicAlias: 3 } });
    assert.deepEqual(s.take().at(-1), { cmd: "disconnect", reasonCode: 0x94 });
    assert.equal(s.closed, true);
  });

  it("never sends a packet above the client's maximum packet size: dropped and counted", () => {
    const h = harness();
    const s = h.connect("dev1", { ...V5, properties: { maximumPacketSize: 40 } });
    s.send(sub("t/#", 1));
    s.take();
    const p = h.connect("dev2", V5);
    p.send({ cmd: "publish", topic: "t/big", payload: new Uint8Array(100), qos: 1, retain: false, dup: false, packetId: 1 });
    p.send({ cmd: "publish", topic: "t/s", payload: ascii("ok"), qos: 1, retain: false, dup: false, packetId: 2 });
    assert.deepEqual(s.take().map((x) => x.cmd === "publish" && x.topic), ["t/s"]);
  });

  it("refuses an oversized packet with DISCONNECT 0x95", () => {
    const h = harness({ limits: { maxPacketBytes: 64 } });
    const s = h.connect("dev1", V5);
    s.take();
    s.send({ cmd: "publish", topic: "t", payload: new Uint8Array(100), qos: 0, retain: false, dup: false });
    assert.equal(s.take().at(-1)?.cmd === "disconnect" && (s.received.length, true), true);
    assert.equal(s.closed, true);
  });

  it("honours the client's receive maximum as back-pressure on QoS 1 deliveries", () => {
    const h = harness({ limits: { maxInflight: 8 } });
    const s = h.connect("dev1", { ...V5, cleanSession: true, properties: { receiveMaximum: 2, sessionExpiryInterval: 60 } });
    s.send(sub("t/#", 1));
    s.take();
    const p = h.connect("dev2", V5);
    for (let i = 1; i <= 4; i++) p.send({ cmd: "publish", topic: "t/x", payload: ascii(String(i)), qos: 1, retain: false, dup: false, packetId: i });
    const first = s.take().filter((x) => x.cmd === "publish");
    assert.equal(first.length, 2);
    s.send({ cmd: "puback", packetId: (first[0] as { packetId: number }).packetId });
    assert.equal(s.take().filter((x) => x.cmd === "publish").length, 1);
  });

  it("holds what is above the receive maximum of a v5 client without a session (session expiry 0) until it acknowledges", () => {
    const h = harness({ limits: { maxInflight: 8 } });
    const s = h.connect("dev1", { ...V5, properties: { receiveMaximum: 2 } });
    s.send(sub("t/#", 1));
    s.take();
    const p = h.connect("dev2", V5);
    for (let i = 1; i <= 3; i++) p.send({ cmd: "publish", topic: "t/x", payload: ascii(String(i)), qos: 1, retain: false, dup: false, packetId: i });
    const first = s.take().filter((x) => x.cmd === "publish") as { packetId: number; payload: Uint8Array }[];
    assert.deepEqual(first.map((m) => new TextDecoder().decode(m.payload)), ["1", "2"]);
    s.send({ cmd: "puback", packetId: first[0]!.packetId });
    const next = s.take().filter((x) => x.cmd === "publish") as { payload: Uint8Array }[];
    assert.deepEqual(next.map((m) => new TextDecoder().decode(m.payload)), ["3"]);
  });

  it("keeps a session for its expiry interval, then ends it; 0 ends it at disconnect", () => {
    const h = harness();
    const s = h.connect("dev1", { ...V5, cleanSession: false, properties: { sessionExpiryInterval: 10 } });
    s.send(sub("t/#", 1));
    s.send({ cmd: "disconnect" });
    assert.equal(h.broker.parkedSessions().length, 1);
    h.clock.tick(11_000);
    assert.equal(h.broker.parkedSessions().length, 0);
    const z = h.connect("dev2", { ...V5, cleanSession: false });
    z.send({ cmd: "disconnect" });
    assert.equal(h.broker.parkedSessions().length, 0);
  });

  it("Message Expiry: an offline client gets only what has not expired, with the time left; the receive-maximum backlog expires too", () => {
    const h = harness();
    const s = h.connect("dev1", { ...V5, cleanSession: false, properties: { sessionExpiryInterval: 600 } });
    s.send(sub("t/#", 1));
    s.send({ cmd: "disconnect" });
    const p = h.connect("dev2", V5);
    const pub = (text: string, expiry: number | undefined, id: number): void =>
      p.send({ cmd: "publish", topic: "t/x", payload: ascii(text), qos: 1, retain: false, dup: false, packetId: id, ...(expiry === undefined ? {} : { properties: { messageExpiryInterval: expiry } }) });
    pub("expires", 1, 1);
    pub("stays", 6, 2);
    pub("forever", undefined, 3);
    h.clock.tick(3_000);
    const back = h.connect("dev1", { ...V5, cleanSession: false, properties: { sessionExpiryInterval: 600 } });
    const got = back.take().filter((x) => x.cmd === "publish") as { payload: Uint8Array; properties?: { messageExpiryInterval?: number } }[];
    assert.deepEqual(got.map((m) => new TextDecoder().decode(m.payload)), ["stays", "forever"]);
    assert.equal(got[0]!.properties?.messageExpiryInterval, 3, "6 s less the 3 s it waited");
    assert.equal(got[1]!.properties, undefined);

    // A live client at its receive maximum: what waits in the backlog expires there too.
    const r = h.connect("dev3", { ...V5, cleanSession: false, properties: { receiveMaximum: 1, sessionExpiryInterval: 600 } });
    r.send(sub("u/#", 1));
    r.take();
    p.send({ cmd: "publish", topic: "u/x", payload: ascii("first"), qos: 1, retain: false, dup: false, packetId: 4 });
    p.send({ cmd: "publish", topic: "u/x", payload: ascii("short"), qos: 1, retain: false, dup: false, packetId: 5, properties: { messageExpiryInterval: 1 } });
    p.send({ cmd: "publish", topic: "u/x", payload: ascii("long"), qos: 1, retain: false, dup: false, packetId: 6, properties: { messageExpiryInterval: 60 } });
    const [first] = r.take().filter((x) => x.cmd === "publish") as { packetId: number }[];
    h.clock.tick(2_000);
    r.send({ cmd: "puback", packetId: first!.packetId });
    const next = r.take().filter((x) => x.cmd === "publish") as { payload: Uint8Array; properties?: { messageExpiryInterval?: number } }[];
    assert.deepEqual(next.map((m) => new TextDecoder().decode(m.payload)), ["long"]);
    assert.equal(next[0]!.properties?.messageExpiryInterval, 58);
  });

  it("sends the will after its delay unless the client returns first", () => {
    const h = harness();
    const will = { topic: "dev1/status", payload: ascii("gone"), qos: 0 as const, retain: false, properties: { willDelayInterval: 5 } };
    const s = h.connect("dev1", { ...V5, will, properties: { sessionExpiryInterval: 60 } });
    s.handler!.onClose();
    h.clock.tick(4000);
    assert.equal(h.published.length, 0);
    h.connect("dev1", V5);
    h.clock.tick(10_000);
    assert.equal(h.published.length, 0);
    const watcher = h.connect("dev3", V5);
    watcher.send(sub("+/status", 1));
    watcher.take();
    const t = h.connect("dev2", { ...V5, will: { ...will, topic: "dev2/status", properties: { willDelayInterval: 5, contentType: "text/plain" } }, properties: { sessionExpiryInterval: 60 } });
    t.handler!.onClose();
    h.clock.tick(5000);
    assert.deepEqual(h.published.map((p) => p.topic), ["dev2/status"]);
    // A local v5 subscriber gets it too, as a PUBLISH: without the will-only Will Delay Interval.
    const got = watcher.take().filter((x) => x.cmd === "publish");
    assert.equal(got.length, 1, JSON.stringify(got));
    assert.deepEqual((got[0] as { topic: string; properties?: object }).topic, "dev2/status");
    assert.deepEqual((got[0] as { properties?: object }).properties, { contentType: "text/plain" });
  });

  it("no-local keeps a client's own publishes from it; retain handling 2 sends no retained message", () => {
    const h = harness();
    const s = h.connect("dev1", V5);
    s.send({ cmd: "publish", topic: "r/1", payload: ascii("kept"), qos: 0, retain: true, dup: false });
    s.send(sub("r/#", 0, { nl: true, rh: 2 }));
    assert.deepEqual(s.take().map((x) => x.cmd), ["connack", "suback"]);
    s.send({ cmd: "publish", topic: "r/2", payload: ascii("x"), qos: 0, retain: false, dup: false });
    assert.deepEqual(s.take(), []);
    const o = h.connect("dev2", V5);
    o.send(sub("r/#", 0, { rh: 1 }));
    assert.deepEqual(o.take().map((x) => x.cmd), ["connack", "suback", "publish"]);
    o.send(sub("r/#", 0, { rh: 1 }));
    assert.deepEqual(o.take().map((x) => x.cmd), ["suback"]);
  });

  it("answers an ACL-refused filter with SUBACK 0x87 and a refused publish with PUBACK 0x87", () => {
    const h = harness({ authorizeSubscribe: (_id, f) => f !== "secret/#", authorizePublish: (_id, t) => t !== "secret/x" });
    const s = h.connect("dev1", V5);
    s.take();
    s.send(sub("secret/#"));
    const [a] = s.take();
    assert.deepEqual(a?.cmd === "suback" && a.granted, [0x87]);
    s.send({ cmd: "publish", topic: "secret/x", payload: ascii("x"), qos: 1, retain: false, dup: false, packetId: 9 });
    assert.deepEqual(s.take(), [{ cmd: "puback", packetId: 9, reasonCode: 0x87 }]);
  });

  it("closes on AUTH with DISCONNECT 0x82 and on malformed properties with DISCONNECT 0x81/0x82", () => {
    const h = harness();
    const s = h.connect("dev1", V5);
    s.take();
    s.send({ cmd: "auth", reasonCode: 0x18 });
    assert.equal(s.take().at(-1)?.cmd, "disconnect");
    assert.equal(s.closed, true);
    const t = h.connect("dev2", V5);
    t.take();
    // PUBLISH "t" with a property list holding Payload Format Indicator twice.
    t.send(new Uint8Array([0x30, 0x08, 0x00, 0x01, 0x74, 0x04, 0x01, 0x01, 0x01, 0x00]));
    const [d] = t.take();
    assert.equal(d?.cmd === "disconnect" && d.reasonCode, 0x82);
  });

  it("sets topic aliases toward a client up to its Topic Alias Maximum (bounded by ours), then sends topics plain", () => {
    const h = harness({ limits: { maxTopicAliases: 8 } });
    const a = h.connect("dev1", { ...V5, properties: { topicAliasMaximum: 2 } });
    a.take();
    a.send(sub("t/#", 0));
    a.take();
    const plain = h.connect("dev3", V5); // announced no Topic Alias Maximum: never aliased
    plain.take();
    plain.send(sub("t/#", 0));
    plain.take();
    const d = h.connect("dev2", V5);
    d.take();
    for (const t of ["t/aa", "t/bb", "t/cc", "t/aa", "t/bb", "t/cc"]) d.send({ cmd: "publish", topic: t, payload: ascii("1"), qos: 0, retain: false, dup: false });
    const seen = a.take().flatMap((p) => (p.cmd === "publish" ? [[p.topic, p.properties?.topicAlias]] : []));
    assert.deepEqual(seen, [["t/aa", 1], ["t/bb", 2], ["t/cc", undefined], ["", 1], ["", 2], ["t/cc", undefined]]);
    assert.deepEqual(plain.take().flatMap((p) => (p.cmd === "publish" ? [[p.topic, p.properties?.topicAlias]] : [])), ["t/aa", "t/bb", "t/cc", "t/aa", "t/bb", "t/cc"].map((t) => [t, undefined]));
  });

  it("never uses more aliases than the board allows, whatever the client announces", () => {
    const h = harness({ limits: { maxTopicAliases: 1 } });
    const a = h.connect("dev1", { ...V5, properties: { topicAliasMaximum: 100 } });
    a.take();
    a.send(sub("t/#", 0));
    a.take();
    const d = h.connect("dev2", V5);
    d.take();
    for (const t of ["t/aa", "t/bb", "t/aa"]) d.send({ cmd: "publish", topic: t, payload: ascii("1"), qos: 0, retain: false, dup: false });
    assert.deepEqual(a.take().flatMap((p) => (p.cmd === "publish" ? [[p.topic, p.properties?.topicAlias]] : [])), [["t/aa", 1], ["t/bb", undefined], ["", 1]]);
  });

  it("retained properties go to the flash area with the message and come back at boot to v5 subscribers", () => {
    const stored: unknown[] = [];
    const h = harness({ onRetained: (o, m) => void stored.push([o, m.topic, m.properties]) });
    const plug = h.connect("dev2", V5);
    plug.take();
    const props = { contentType: "text/plain", userProperties: [["unit", "C"]] as [string, string][] };
    plug.send({ cmd: "publish", topic: "stat/p/TEMP", payload: ascii("21"), qos: 0, retain: true, dup: false, properties: props });
    assert.deepEqual(stored, [["stored", "stat/p/TEMP", props]]);
    // The next boot seeds the broker from what the area read back.
    const h2 = harness({ retained: [{ topic: "stat/p/TEMP", payload: ascii("21"), qos: 0, properties: props }] });
    const a = h2.connect("dev1", V5);
    a.take();
    a.send(sub("stat/#", 0));
    const got = a.take().flatMap((p) => (p.cmd === "publish" ? [[p.topic, p.retain, p.properties]] : []));
    assert.deepEqual(got, [["stat/p/TEMP", true, props]]);
  });

  it("retained with Message Expiry: time left on delivery, gone once expired, and never written to the flash area", () => {
    const changes: string[] = [];
    const h = harness({ onRetained: (o, m) => void changes.push(`${o}:${m.topic}`) });
    const plug = h.connect("dev2", V5);
    plug.take();
    plug.send({ cmd: "publish", topic: "stat/p/POWER", payload: ascii("ON"), qos: 0, retain: true, dup: false, properties: { messageExpiryInterval: 5 } });
    plug.send({ cmd: "publish", topic: "stat/p/NAME", payload: ascii("plug"), qos: 0, retain: true, dup: false });
    h.clock.tick(3_200);
    const a = h.connect("dev1", V5);
    a.take();
    a.send(sub("stat/#", 0));
    const got = a.take().flatMap((p) => (p.cmd === "publish" ? [[p.topic, p.retain, p.properties?.messageExpiryInterval]] : []));
    assert.deepEqual(got, [["stat/p/POWER", true, 2], ["stat/p/NAME", true, undefined]], "5 s less 3.2 s, rounded up");
    h.clock.tick(1_800);
    const b = h.connect("dev3", V5);
    b.take();
    b.send(sub("stat/#", 0));
    assert.deepEqual(b.take().flatMap((p) => (p.cmd === "publish" ? [p.topic] : [])), ["stat/p/NAME"]);
    // The expiring message cleared its topic on flash instead of being stored there: a reboot cannot revive it.
    assert.deepEqual(changes, ["cleared:stat/p/POWER", "stored:stat/p/NAME"]);
  });
});

describe("mqtt 3.1 session (MQIsdp)", () => {
  it("accepts level 3 like 3.1.1 and refuses a client id over 23 characters with CONNACK 2", () => {
    const h = harness({ authenticate: () => true });
    assert.deepEqual(h.connect("dev1", { version: 3 }).take(), [{ cmd: "connack", sessionPresent: false, returnCode: 0 }]);
    assert.deepEqual(h.connect("x".repeat(24), { version: 3 }).take(), [{ cmd: "connack", sessionPresent: false, returnCode: 2 }]);
  });
});
