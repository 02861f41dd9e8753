/** Persistent sessions (clean session 0): parked state, redelivery with DUP, bounds, takeover, clean discard. */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Packet } from "../../src/mqtt/codec.js";
import { harness } from "../fixtures/mqtt/harness.js";
import { ascii } from "../fixtures/mqtt/packets.js";

const pub = (topic: string, payload: string, qos: 0 | 1 | 2 = 1, packetId = 1): Packet =>
  ({ cmd: "publish", topic, payload: ascii(payload), qos, retain: false, dup: false, ...(qos > 0 ? { packetId } : {}) }) as Packet;
const text = (p: Packet) => (p.cmd === "publish" ? String.fromCharCode(...p.payload) : p.cmd);

describe("mqtt persist: persistent sessions", () => {
  it("keeps subscriptions and QoS 1/2 messages while offline; resumes with session present, unacked first with DUP", () => {
    const h = harness();
    const ha = h.connect("dev1", { cleanSession: false });
    ha.send({ cmd: "subscribe", packetId: 1, subscriptions: [{ filter: "tele/#", qos: 2 }] });
    ha.take();
    const plug = h.connect("dev2");
    plug.take();
    plug.send(pub("tele/a", "sent-not-acked", 1, 5));
    const [first] = ha.take();
    assert.ok(first?.cmd === "publish" && first.qos === 1);
    ha.handler!.onClose(); // gone without acknowledging
    plug.send(pub("tele/b", "q0-not-kept", 0));
    plug.send(pub("tele/c", "while-away-1", 1, 6));
    plug.send(pub("tele/d", "while-away-2", 2, 7));
    plug.send({ cmd: "pubrel", packetId: 7 });
    assert.deepEqual(h.broker.parkedSessions(), [{ clientId: "dev1", queued: 2, dropped: 0 }]);
    const again = h.connect("dev1", { cleanSession: false });
    const got = again.take();
    assert.deepEqual(got[0], { cmd: "connack", sessionPresent: true, returnCode: 0 });
    const pubs = got.slice(1);
    assert.deepEqual(pubs.map(text), ["sent-not-acked", "while-away-1", "while-away-2"]);
    assert.ok(pubs[0]?.cmd === "publish" && pubs[0].dup && pubs[0].packetId === first.packetId, "same id, DUP set (§4.4)");
    assert.ok(pubs[2]?.cmd === "publish" && pubs[2].qos === 2);
    // The subscription came back too: no new SUBSCRIBE needed.
    plug.send(pub("tele/e", "live", 0));
    assert.deepEqual(again.take().map(text), ["live"]);
    assert.deepEqual(h.broker.parkedSessions(), []);
  });

  it("a clean session discards the parked state (§3.1.2.4)", () => {
    const h = harness();
    const a = h.connect("dev1", { cleanSession: false });
    a.send({ cmd: "subscribe", packetId: 1, subscriptions: [{ filter: "x", qos: 1 }] });
    a.send({ cmd: "disconnect" });
    assert.equal(h.broker.subscriptionCount, 1, "kept while parked");
    const b = h.connect("dev1");
    assert.deepEqual(b.take(), [{ cmd: "connack", sessionPresent: false, returnCode: 0 }]);
    assert.equal(h.broker.subscriptionCount, 0);
    h.connect("dev2").send(pub("x", "1"));
    assert.deepEqual(b.take(), []);
  });

  it("bounds the queue per session: the oldest is dropped and counted (in the connect record on resume)", () => {
    const h = harness({ limits: { maxQueuedPerSession: 3 } });
    const a = h.connect("dev1", { cleanSession: false });
    a.send({ cmd: "subscribe", packetId: 1, subscriptions: [{ filter: "x", qos: 1 }] });
    a.send({ cmd: "disconnect" });
    const p = h.connect("dev2");
    for (let i = 1; i <= 5; i++) p.send(pub("x", `m${i}`, 1, i));
    assert.deepEqual(h.broker.parkedSessions(), [{ clientId: "dev1", queued: 3, dropped: 2 }]);
    const b = h.connect("dev1", { cleanSession: false });
    assert.deepEqual(b.take().slice(1).map(text), ["m3", "m4", "m5"]);
    assert.equal(h.events.filter((e) => e.kind === "connect" && e.device === "dev1").at(-1)?.detail?.["dropped"], 2);
  });

  it("bounds parked sessions: one more ends the oldest", () => {
    const h = harness({ limits: { maxParkedSessions: 2 } });
    for (const id of ["dev1", "dev2", "dev3"]) {
      const s = h.connect(id, { cleanSession: false });
      s.send({ cmd: "subscribe", packetId: 1, subscriptions: [{ filter: `x/${id}`, qos: 1 }] });
      s.send({ cmd: "disconnect" });
    }
    assert.deepEqual(h.broker.parkedSessions().map((p) => p.clientId), ["dev2", "dev3"]);
    assert.equal(h.broker.subscriptionCount, 2);
    assert.ok(h.events.some((e) => e.reason === "session-evicted" && e.device === "dev1"));
  });

  it("takeover by the same client id closes the old connection, publishes its will, and the new one resumes", () => {
    const h = harness();
    const watcher = h.connect("dev3");
    watcher.send({ cmd: "subscribe", packetId: 1, subscriptions: [{ filter: "lwt/#", qos: 0 }] });
    watcher.take();
    const old = h.connect("dev1", { cleanSession: false, will: { topic: "lwt/dev1", payload: ascii("gone"), qos: 0, retain: false } });
    old.send({ cmd: "subscribe", packetId: 1, subscriptions: [{ filter: "x", qos: 1 }] });
    const fresh = h.connect("dev1", { cleanSession: false });
    assert.equal(old.closed, true);
    assert.deepEqual(fresh.take(), [{ cmd: "connack", sessionPresent: true, returnCode: 0 }]);
    assert.deepEqual(watcher.take().map(text), ["gone"]);
    h.connect("dev2").send(pub("x", "after"));
    assert.deepEqual(fresh.take().map(text), ["after"]);
  });

  it("a QoS 2 id received before the client left is still known after it resumes (no second delivery)", () => {
    const h = harness();
    const sub = h.connect("dev2");
    sub.send({ cmd: "subscribe", packetId: 1, subscriptions: [{ filter: "#", qos: 2 }] });
    sub.take();
    const d = h.connect("dev1", { cleanSession: false });
    d.send(pub("a", "once", 2, 4));
    d.handler!.onClose(); // PUBREC lost with the connection
    const back = h.connect("dev1", { cleanSession: false });
    back.send({ ...pub("a", "once", 2, 4), dup: true } as Packet);
    back.send({ cmd: "pubrel", packetId: 4 });
    assert.deepEqual(back.take().map((p) => p.cmd), ["connack", "pubrec", "pubcomp"]);
    assert.deepEqual(sub.take().filter((p) => p.cmd === "publish").map(text), ["once"]);
  });

  it("a QoS 1 message is never lost nor duplicated to a persistent subscriber across reconnects (model)", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constant("pub" as const), fc.constant("ack" as const), fc.constant("drop" as const), fc.constant("back" as const)), { maxLength: 40 }), (ops) => {
        const h = harness({ limits: { maxInflight: 2, maxQueuedPerSession: 100 } });
        let s = h.connect("dev1", { cleanSession: false });
        s.send({ cmd: "subscribe", packetId: 1, subscriptions: [{ filter: "t", qos: 1 }] });
        const p = h.connect("dev2");
        let online = true;
        let n = 0;
        const acked = new Set<string>();
        const unacked = new Map<number, string>();
        const read = () => {
          for (const x of s.take()) if (x.cmd === "publish") unacked.set(x.packetId!, text(x));
        };
        for (const op of ops) {
          if (op === "pub") p.send(pub("t", `m${++n}`, 1, (n % 60000) + 1));
          else if (op === "ack" && online) {
            read();
            for (const [id, m] of unacked) {
              s.send({ cmd: "puback", packetId: id });
              assert.ok(!acked.has(m), `${m} delivered again after its PUBACK`);
              acked.add(m);
            }
            unacked.clear();
          } else if (op === "drop" && online) {
            read();
            s.handler!.onClose();
            online = false;
          } else if (op === "back" && !online) {
            s = h.connect("dev1", { cleanSession: false });
            online = true;
            unacked.clear(); // resent with DUP on resume
          }
          if (online) read();
        }
        if (!online) s = h.connect("dev1", { cleanSession: false });
        for (let round = 0; round < 200; round++) {
          read();
          if (unacked.size === 0) break;
          for (const [id, m] of unacked) {
            s.send({ cmd: "puback", packetId: id });
            acked.add(m);
          }
          unacked.clear();
        }
        assert.deepEqual([...acked].sort(), Array.from({ length: n }, (_, i) => `m${i + 1}`).sort(), "every message delivered and acknowledged once");
      }),
      { numRuns: 200 },
    );
  });
});

describe("mqtt persist: QoS 2 refused by the gateway", () => {
  it("a QoS 2 PUBLISH the gateway did not accept is handed on again when a persistent session resends it", async () => {
    let refuse = true;
    const seen: string[] = [];
    const h = harness({
      onPublish: (_id, topic) => {
        seen.push(topic);
        return refuse ? Promise.reject(new Error("audit log refuses")) : undefined;
      },
    });
    const d = h.connect("dev1", { cleanSession: false });
    d.send(pub("a", "x", 2, 3));
    for (let i = 0; i < 5; i++) await Promise.resolve();
    assert.equal(d.closed, true, "closed, no PUBREC");
    assert.deepEqual(d.take().map((p) => p.cmd), ["connack"]);
    refuse = false;
    const back = h.connect("dev1", { cleanSession: false });
    back.send({ ...pub("a", "x", 2, 3), dup: true } as Packet);
    assert.deepEqual(back.take().map((p) => p.cmd), ["connack", "pubrec"]);
    assert.deepEqual(seen, ["a", "a"], "handed to the gateway again");
  });
});
