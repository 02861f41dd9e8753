/** The broker as the home's broker: local routing, ACL refusals, retained messages, QoS 2 exactly once. */
import assert from "node:assert/strict";
import type { Packet } from "../../src/mqtt/codec.js";
import { harness } from "../fixtures/mqtt/harness.js";
import { ascii } from "../fixtures/mqtt/packets.js";

const pub = (topic: string, payload: string, qos: 0 | 1 | 2 = 0, extra: { retain?: boolean; packetId?: number; dup?: boolean } = {}): Packet =>
  ({ cmd: "publish", topic, payload: ascii(payload), qos, retain: extra.retain ?? false, dup: extra.dup ?? false, ...(qos > 0 ? { packetId: extra.packetId ?? 1 } : {}) }) as Packet;

const sub = (filter: string, qos: 0 | 1 | 2 = 0, packetId = 1): Packet => ({ cmd: "subscribe", packetId, subscriptions: [{ filter, qos }] });

const pubs = (got: Packet[]) => got.flatMap((p) => (p.cmd === "publish" ? [[p.topic, String.fromCharCode(...p.payload), p.qos, p.retain]] : []));

describe("mqtt local: routing between local clients", () => {
  it("delivers a device publish to every matching subscription at min(pub, sub), and to the gateway too", () => {
    const local: unknown[][] = [];
    const h = harness({ onLocal: (...a) => void local.push(a) });
    const ha = h.connect("dev1");
    const plug = h.connect("dev2");
    const lamp = h.connect("dev3");
    ha.send(sub("#", 1));
    lamp.send(sub("tele/+/STATE", 0));
    for (const s of [ha, plug, lamp]) s.take();
    plug.send(pub("tele/dev2/STATE", "on", 1, { packetId: 7 }));
    assert.deepEqual(pubs(ha.take()), [["tele/dev2/STATE", "on", 1, false]]);
    assert.deepEqual(pubs(lamp.take()), [["tele/dev2/STATE", "on", 0, false]]);
    assert.deepEqual(plug.take(), [{ cmd: "puback", packetId: 7 }]);
    assert.deepEqual(h.published.map((p) => [p.clientId, p.topic]), [["dev2", "tele/dev2/STATE"]], "contracts still see it");
    assert.deepEqual(local, [["dev2", "tele/dev2/STATE", 2, 2]], "one accounting call per routed publish");
  });

  it("costs nothing and reports nothing when nobody subscribes", () => {
    let calls = 0;
    const h = harness({ onLocal: () => void calls++ });
    const s = h.connect("dev1");
    s.take();
    s.send(pub("a/b", "x"));
    assert.equal(calls, 0);
    assert.equal(h.broker.subscriptionCount, 0);
  });

  it("localRouting false: device publishes reach the gateway only", () => {
    const h = harness({ localRouting: false });
    const a = h.connect("dev1");
    const b = h.connect("dev2");
    b.send(sub("#"));
    a.take();
    b.take();
    a.send(pub("x/y", "1", 0, { retain: true }));
    assert.deepEqual(pubs(b.take()), []);
    assert.equal(h.published.length, 1);
    assert.deepEqual(h.broker.retained(), []);
  });

  it("forgets a closed session's subscriptions", () => {
    const h = harness();
    const a = h.connect("dev1");
    const b = h.connect("dev2");
    b.send(sub("x/#"));
    b.send({ cmd: "disconnect" });
    assert.equal(h.broker.subscriptionCount, 0);
    a.send(pub("x/y", "1"));
    assert.equal(a.take().filter((p) => p.cmd === "publish").length, 0);
  });
});

describe("mqtt local: ACL refusals", () => {
  const acl = {
    authorizeSubscribe: (id: string, f: string) => id === "dev1" || f === `cmd/${id}/#`,
    authorizePublish: (id: string, t: string) => t.startsWith(`tele/${id}/`),
  };

  it("refuses a subscription outside the ACL with SUBACK 0x80 and a record", () => {
    const h = harness(acl);
    const s = h.connect("dev2");
    s.take();
    s.send({ cmd: "subscribe", packetId: 4, subscriptions: [{ filter: "#", qos: 0 }, { filter: "cmd/dev2/#", qos: 1 }] });
    assert.deepEqual(s.take(), [{ cmd: "suback", packetId: 4, granted: [0x80, 1] }]);
    assert.deepEqual(h.events.at(-1), { kind: "auth", decision: "deny", device: "dev2", topic: "#", reason: "not-authorized", detail: { remote: s.remote, op: "subscribe" } });
  });

  it("drops a publish outside the ACL (acknowledged, not routed, not handed to the gateway) and records it in aggregate", () => {
    const h = harness(acl);
    const ha = h.connect("dev1");
    const d = h.connect("dev2");
    ha.send(sub("#"));
    ha.take();
    d.take();
    for (let i = 1; i <= 5; i++) d.send(pub("tele/dev3/STATE", "spoof", 1, { packetId: i }));
    assert.deepEqual(d.take().map((p) => p.cmd), ["puback", "puback", "puback", "puback", "puback"]);
    assert.deepEqual(pubs(ha.take()), []);
    assert.equal(h.published.length, 0);
    const denials = h.events.filter((e) => e.reason === "not-authorized");
    assert.deepEqual(denials, [{ kind: "auth", decision: "deny", device: "dev2", topic: "tele/dev3/STATE", reason: "not-authorized", detail: { op: "publish", count: 1 } }]);
    h.clock.tick(60000);
    assert.deepEqual(h.events.filter((e) => e.reason === "not-authorized").map((e) => e.detail?.["count"]), [1, 4], "the window's rest in one record");
  });

  it("a will outside the ACL is not published", () => {
    const h = harness(acl);
    const ha = h.connect("dev1");
    ha.send(sub("#"));
    ha.take();
    const d = h.connect("dev2", { will: { topic: "alarm/all", payload: ascii("x"), qos: 0, retain: false } });
    d.handler!.onClose();
    assert.deepEqual(pubs(ha.take()), []);
    assert.equal(h.published.length, 0);
  });
});

describe("mqtt local: retained messages", () => {
  it("delivers retained state to a new subscription with RETAIN=1, live messages with RETAIN=0; empty payload clears", () => {
    const changes: string[] = [];
    const h = harness({ onRetained: (o, m) => void changes.push(`${o}:${m.topic}`) });
    const plug = h.connect("dev2");
    plug.take();
    plug.send(pub("stat/dev2/POWER", "ON", 1, { retain: true, packetId: 3 }));
    plug.send(pub("stat/dev2/RESULT", "{}", 0, { retain: true }));
    const ha = h.connect("dev1");
    ha.take();
    ha.send(sub("stat/#", 1));
    const got = ha.take();
    assert.deepEqual(got[0], { cmd: "suback", packetId: 1, granted: [1] });
    assert.deepEqual(pubs(got), [["stat/dev2/POWER", "ON", 1, true], ["stat/dev2/RESULT", "{}", 0, true]]);
    plug.send(pub("stat/dev2/POWER", "OFF", 0, { retain: true }));
    assert.deepEqual(pubs(ha.take()), [["stat/dev2/POWER", "OFF", 0, false]], "§3.3.1.3: RETAIN 0 on an established subscription");
    plug.send(pub("stat/dev2/RESULT", "", 0, { retain: true }));
    ha.take();
    const later = h.connect("dev3");
    later.send(sub("stat/+/+"));
    assert.deepEqual(pubs(later.take()), [["stat/dev2/POWER", "OFF", 0, true]]);
    assert.deepEqual(changes, ["stored:stat/dev2/POWER", "stored:stat/dev2/RESULT", "replaced:stat/dev2/POWER", "cleared:stat/dev2/RESULT"]);
  });

  it("keeps at most maxRetainedMessages; one more is refused and counted", () => {
    const h = harness({ limits: { maxRetainedMessages: 2 } });
    const s = h.connect("dev1");
    for (const t of ["a", "b", "c", "d"]) s.send(pub(t, "1", 0, { retain: true }));
    assert.deepEqual(h.broker.retained().map((m) => m.topic), ["a", "b"]);
    assert.deepEqual(h.events.filter((e) => e.reason === "retained-full").map((e) => [e.topic, e.detail?.["count"]]), [["c", 1]]);
    h.clock.tick(60000);
    assert.deepEqual(h.events.filter((e) => e.reason === "retained-full").map((e) => e.detail?.["count"]), [1, 1]);
  });

  it("starts from the retained messages it is given (read back from flash)", () => {
    const h = harness({ retained: [{ topic: "x/y", payload: ascii("1"), qos: 0 }] });
    const s = h.connect("dev1");
    s.send(sub("x/+"));
    assert.deepEqual(pubs(s.take()), [["x/y", "1", 0, true]]);
  });
});

describe("mqtt local: QoS 2", () => {
  it("device → broker: PUBREC after acceptance, a resend before PUBREL is not delivered again, PUBCOMP on PUBREL", () => {
    const h = harness();
    const ha = h.connect("dev1");
    ha.send(sub("#", 2));
    ha.take();
    const d = h.connect("dev2");
    d.take();
    d.send(pub("a/b", "once", 2, { packetId: 9 }));
    assert.deepEqual(d.take(), [{ cmd: "pubrec", packetId: 9 }]);
    d.send(pub("a/b", "once", 2, { packetId: 9, dup: true }));
    assert.deepEqual(d.take(), [{ cmd: "pubrec", packetId: 9 }]);
    d.send({ cmd: "pubrel", packetId: 9 });
    assert.deepEqual(d.take(), [{ cmd: "pubcomp", packetId: 9 }]);
    assert.equal(h.published.length, 1, "the gateway saw it once");
    const got = ha.take();
    assert.deepEqual(pubs(got), [["a/b", "once", 2, false]], "the subscriber got it once");
    d.send(pub("a/b", "twice", 2, { packetId: 9 }));
    assert.deepEqual(pubs(ha.take()), [["a/b", "twice", 2, false]], "after PUBREL the id is a new message");
  });

  it("broker → device: PUBLISH, PUBREC → PUBREL, PUBCOMP frees the in-flight slot", () => {
    const h = harness({ limits: { maxInflight: 1 } });
    const ha = h.connect("dev1");
    ha.send(sub("#", 2));
    ha.take();
    const d = h.connect("dev2");
    d.take();
    d.send(pub("a", "1", 2, { packetId: 1 }));
    d.send({ cmd: "pubrel", packetId: 1 });
    const [p] = ha.take();
    assert.ok(p?.cmd === "publish" && p.qos === 2);
    const id = p.packetId!;
    d.send(pub("a", "2", 1, { packetId: 2 }));
    assert.deepEqual(pubs(ha.take()), [], "in flight: the slot is taken until PUBCOMP");
    ha.send({ cmd: "puback", packetId: id });
    assert.equal(h.broker.deliver("a", ascii("3"), 1), 0, "a PUBACK does not settle a QoS 2 message");
    ha.send({ cmd: "pubrec", packetId: id });
    assert.deepEqual(ha.take(), [{ cmd: "pubrel", packetId: id }]);
    ha.send({ cmd: "pubrec", packetId: id });
    assert.deepEqual(ha.take(), [{ cmd: "pubrel", packetId: id }], "a repeated PUBREC gets PUBREL again");
    ha.send({ cmd: "pubcomp", packetId: id });
    assert.equal(h.broker.deliver("a", ascii("4"), 1), 1);
  });

  it("bounds QoS 2 messages awaiting PUBREL per device by maxInflight", () => {
    const h = harness({ limits: { maxInflight: 2 } });
    const d = h.connect("dev2");
    d.take();
    d.send(pub("a", "1", 2, { packetId: 1 }));
    d.send(pub("a", "1", 2, { packetId: 2 }));
    assert.equal(d.closed, false);
    d.send(pub("a", "1", 2, { packetId: 3 }));
    assert.equal(d.closed, true);
    assert.equal(h.events.at(-1)?.reason, "backpressure");
  });
});
