/**
 * Deferred acceptance over real TCP with mqtt.js: the broker's PUBACK waits for the gateway's promise
 * (its record is durable), goes out in arrival order, and at the acceptance limit the socket is paused
 * so the device is held back by TCP rather than buffered in the gateway.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { Broker, type PublishAck } from "../../src/mqtt/broker.js";
import type { AuditEvent } from "../../src/audit/types.js";
import type { DeviceSocket } from "../../src/ports.js";
import { nodeClock, nodeTimers } from "../../hosts/node/clock.js";
import { nodeNetwork, type NodeListener } from "../../hosts/node/network.js";
import { CREDENTIALS } from "../fixtures/mqtt/harness.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Call {
  topic: string;
  resolve(): void;
  reject(e: Error): void;
}

// Both ways a host accepts: a promise per message (onPublish), or settling the session's PublishAck
// (onPublishAck, the gateway's path, no promise per message).
for (const mode of ["promise", "ack"] as const)
describe(`mqtt broker over TCP: PUBACK after the gateway's acceptance (${mode === "promise" ? "onPublish promise" : "onPublishAck"})`, () => {
  let listener: NodeListener;
  let broker: Broker;
  let timers: ReturnType<typeof nodeTimers>;
  let calls: Call[];
  let events: AuditEvent[];
  let pauses: number;
  let resumes: number;
  let client: mqtt.MqttClient | undefined;

  async function start(maxPendingAccepts: number): Promise<mqtt.MqttClient> {
    timers = nodeTimers();
    calls = [];
    events = [];
    pauses = 0;
    resumes = 0;
    broker = new Broker({
      clock: nodeClock(),
      timers,
      authenticate: (id, _u, pw) => pw !== undefined && CREDENTIALS.get(id) === Buffer.from(pw).toString(),
      onPublish: (_id, topic) => new Promise<void>((resolve, reject) => void calls.push({ topic, resolve, reject })),
      ...(mode === "ack" ? { onPublishAck: (_id: string, topic: string, _p: Uint8Array, _q: 0 | 1, ack: PublishAck) => void calls.push({ topic, resolve: () => ack.accept(), reject: (e) => ack.refuse(e) }) } : {}),
      onEvent: (e) => void events.push(e),
      limits: { maxPendingAccepts },
    });
    // Count the broker's pause/resume calls on the real node socket.
    const counted = (s: DeviceSocket): DeviceSocket => ({
      remote: s.remote,
      write: (d) => s.write(d),
      close: () => s.close(),
      pause: () => (pauses++, s.pause!()),
      resume: () => (resumes++, s.resume!()),
    });
    listener = nodeNetwork({ host: "127.0.0.1" }).listen({ port: 0, onConnection: (s) => broker.accept(counted(s)) });
    await listener.ready;
    const c = mqtt.connect({ host: "127.0.0.1", port: listener.port, clientId: "dev1", username: "dev1", password: CREDENTIALS.get("dev1")!, protocolVersion: 4, reconnectPeriod: 0 });
    await new Promise<void>((resolve, reject) => (c.once("connect", () => resolve()), c.once("error", reject)));
    client = c;
    return c;
  }

  async function until(what: string, ok: () => boolean): Promise<void> {
    for (let i = 0; i < 200 && !ok(); i++) await sleep(10);
    assert.ok(ok(), what);
  }

  afterEach(() => {
    client?.end(true);
    client = undefined;
    broker.close();
    listener.close();
    timers.cancelAll();
  });

  it("mqtt.js sees each PUBACK only after its acceptance, in the order it published", async () => {
    const c = await start(8);
    const acked: string[] = [];
    const sends = ["a", "b", "c"].map((t) => c.publishAsync(`dev1/${t}`, t, { qos: 1 }).then(() => void acked.push(t)));
    await until("three publishes reach the gateway", () => calls.length === 3);
    await sleep(50);
    assert.deepEqual(acked, [], "no PUBACK before acceptance");
    calls[2]!.resolve();
    calls[1]!.resolve();
    await sleep(50);
    assert.deepEqual(acked, [], "b and c wait for a");
    calls[0]!.resolve();
    await Promise.all(sends);
    assert.deepEqual(acked, ["a", "b", "c"]);
  });

  it("at the acceptance limit the socket is paused, and resumed when one is accepted", async () => {
    const c = await start(1);
    const sends = ["a", "b", "c"].map((t) => c.publishAsync(`dev1/${t}`, t, { qos: 1 }));
    await until("the first publish reaches the gateway", () => calls.length === 1);
    await sleep(50);
    assert.deepEqual([calls.length, pauses], [1, 1], "the rest wait (held by the session, then in TCP), not in the gateway");
    for (let n = 1; n <= 3; n++) {
      await until(`publish ${n} reaches the gateway`, () => calls.length === n);
      calls[n - 1]!.resolve();
    }
    await Promise.all(sends);
    assert.deepEqual(calls.map((x) => x.topic), ["dev1/a", "dev1/b", "dev1/c"]);
    assert.ok(resumes >= 1 && resumes <= pauses);
  });

  it("a rejected acceptance closes the connection without a PUBACK", async () => {
    const c = await start(8);
    const closed = new Promise<void>((resolve) => c.once("close", () => resolve()));
    let acked = false;
    void c.publishAsync("dev1/a", "x", { qos: 1 }).then(() => (acked = true), () => {});
    await until("the publish reaches the gateway", () => calls.length === 1);
    calls[0]!.reject(new Error("audit log unavailable"));
    await closed;
    assert.equal(acked, false);
    assert.equal(events.at(-1)?.reason, "internal-error");
  });

  if (mode === "ack") {
    it("settling twice, or after the connection closed, sends nothing more", async () => {
      const c = await start(8);
      const acked: string[] = [];
      void c.publishAsync("dev1/a", "a", { qos: 1 }).then(() => void acked.push("a"), () => {});
      await until("a reaches the gateway", () => calls.length === 1);
      calls[0]!.resolve();
      calls[0]!.resolve();
      calls[0]!.reject(new Error("late"));
      await until("a acknowledged once", () => acked.length === 1);
      await sleep(50);
      assert.equal(c.connected, true, "a late refusal of a settled message closes nothing");
      const closed = new Promise<void>((resolve) => c.once("close", () => resolve()));
      void c.publishAsync("dev1/b", "b", { qos: 1 }).then(() => void acked.push("b"), () => {});
      await until("b reaches the gateway", () => calls.length === 2);
      calls[1]!.reject(new Error("refused"));
      await closed;
      calls[1]!.resolve();
      assert.deepEqual(acked, ["a"]);
    });
  }
});
