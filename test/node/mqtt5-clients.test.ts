/** MQTT 5 with real clients over TCP: mosquitto_pub/mosquitto_sub -V mqttv5 and mqtt.js protocolVersion 5. */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import mqtt from "mqtt";
import mqttPacket from "mqtt-packet";
import { Decoder, encode, type Packet } from "../../src/mqtt/codec.js";
import { Broker } from "../../src/mqtt/broker.js";
import type { Listener } from "../../src/ports.js";
import { nodeClock, nodeTimers } from "../../hosts/node/clock.js";
import { nodeNetwork } from "../../hosts/node/network.js";
import { CREDENTIALS, type Published } from "../fixtures/mqtt/harness.js";

const run = promisify(execFile);

function decode5(bytes: Uint8Array): { packets: Packet[]; error?: string } {
  const packets: Packet[] = [];
  const d = new Decoder({ onPacket: (p) => packets.push(p), version: 5 });
  const e = d.push(bytes);
  return e ? { packets, error: e.code } : { packets };
}

describe("mqtt 5 codec against mqtt-packet", () => {
  it("matches mqtt-packet's v5 generate and parse for PUBLISH, CONNACK and SUBSCRIBE", async () => {
    const mp = mqttPacket;
    const cases: [Packet, object][] = [
      [
        { cmd: "publish", topic: "t", payload: new Uint8Array([1, 2]), qos: 1, retain: false, dup: false, packetId: 3, properties: { contentType: "x", userProperties: [["a", "b"]], messageExpiryInterval: 60 } },
        { cmd: "publish", topic: "t", payload: Buffer.from([1, 2]), qos: 1, retain: false, dup: false, messageId: 3, properties: { contentType: "x", userProperties: { a: "b" }, messageExpiryInterval: 60 } },
      ],
      [
        { cmd: "connack", sessionPresent: false, returnCode: 0, properties: { receiveMaximum: 8, maximumPacketSize: 16384, topicAliasMaximum: 8 } },
        { cmd: "connack", sessionPresent: false, reasonCode: 0, properties: { receiveMaximum: 8, maximumPacketSize: 16384, topicAliasMaximum: 8 } },
      ],
      [
        { cmd: "subscribe", packetId: 2, subscriptions: [{ filter: "a/#", qos: 1, nl: true, rap: true, rh: 2 }] },
        { cmd: "subscribe", messageId: 2, subscriptions: [{ topic: "a/#", qos: 1, nl: true, rap: true, rh: 2 }] },
      ],
    ];
    for (const [ours, theirs] of cases) {
      // Property order is free (§2.2.2), so compare decoded packets both ways, not bytes.
      const theirBytes = mp.generate(theirs as never, { protocolVersion: 5 });
      const mine = decode5(new Uint8Array(theirBytes));
      assert.equal(mine.error, undefined, ours.cmd);
      assert.deepEqual(mine.packets, [ours], ours.cmd);
      assert.equal(encode(ours, 5).length, theirBytes.length, ours.cmd);
      const parser = mp.parser({ protocolVersion: 5 });
      let got: Record<string, unknown> | undefined;
      parser.on("packet", (p: unknown) => void (got = p as Record<string, unknown>));
      parser.parse(Buffer.from(encode(ours, 5)));
      const norm = (x: unknown): string => JSON.stringify(x, (_k, v: unknown) => (v && typeof v === "object" && !Array.isArray(v) && !(v instanceof Uint8Array) ? Object.fromEntries(Object.entries(v).sort((a, b) => (a[0] < b[0] ? -1 : 1))) : v));
      for (const [k, v] of Object.entries(theirs)) assert.equal(norm(got?.[k]), norm(v), `${ours.cmd}.${k}`);
    }
  });

});

async function rig(): Promise<{ broker: Broker; listener: Listener; published: Published[]; stop(): void }> {
  const timers = nodeTimers();
  const published: Published[] = [];
  const broker = new Broker({
    clock: nodeClock(),
    timers,
    authenticate: (id, _u, pw) => pw !== undefined && CREDENTIALS.get(id) === Buffer.from(pw).toString(),
    authorizeSubscribe: (_id, filter) => filter !== "secret/#",
    onPublish: (clientId, topic, payload, qos) => void published.push({ clientId, topic, payload, qos }),
    onEvent: () => {},
  });
  const listener = nodeNetwork({ host: "127.0.0.1" }).listen({ port: 0, onConnection: (s) => broker.accept(s) });
  await listener.ready;
  return { broker, listener, published, stop: () => (broker.close(), listener.close(), timers.cancelAll()) };
}

function v5(port: number, id: string, options: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect({ host: "127.0.0.1", port, clientId: id, username: id, password: CREDENTIALS.get(id) ?? "x", protocolVersion: 5, reconnectPeriod: 0, ...options });
    c.once("connect", () => resolve(c));
    c.once("error", reject);
  });
}

describe("mqtt 5 with real clients", function () {
  this.timeout(20000);
  let r: Awaited<ReturnType<typeof rig>>;
  beforeEach(async () => (r = await rig()));
  afterEach(() => r.stop());

  it("mosquitto_sub -V mqttv5 receives mosquitto_pub -V mqttv5's message with its user property", async function () {
    try {
      await run("mosquitto_pub", ["--help"]);
    } catch (e) {
      if ((e as { code?: unknown }).code === "ENOENT") return this.skip();
    }
    const port = String(r.listener.port);
    const sub = spawn("mosquitto_sub", ["-V", "mqttv5", "-h", "127.0.0.1", "-p", port, "-i", "dev1", "-u", "dev1", "-P", "pw-one", "-t", "home/#", "-C", "1", "-F", "%t %p %P"]);
    let out = "";
    sub.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const done = new Promise<number>((resolve) => sub.on("close", resolve));
    await new Promise((res) => setTimeout(res, 500));
    await run("mosquitto_pub", ["-V", "mqttv5", "-h", "127.0.0.1", "-p", port, "-i", "dev2", "-u", "dev2", "-P", "pw-two", "-t", "home/temp", "-m", "21.5", "-q", "1", "-D", "publish", "user-property", "unit", "C"]);
    assert.equal(await done, 0);
    assert.match(out, /^home\/temp 21\.5 unit:C/);
    assert.deepEqual(r.published.map((p) => [p.clientId, p.topic, Buffer.from(p.payload).toString(), p.qos]), [["dev2", "home/temp", "21.5", 1]]);
  });

  it("mosquitto_pub -V mqttv5 with a wrong password gets CONNACK 0x86 (bad user name or password)", async function () {
    try {
      await run("mosquitto_pub", ["-V", "mqttv5", "-h", "127.0.0.1", "-p", String(r.listener.port), "-i", "dev1", "-u", "dev1", "-P", "wrong", "-t", "a", "-m", "x"]);
      assert.fail("accepted");
    } catch (e) {
      if ((e as { code?: unknown }).code === "ENOENT") return this.skip();
      assert.match(String((e as { stderr?: string }).stderr), /bad user name or password/i);
    }
  });

  it("mqtt.js v5: properties reach a v5 subscriber, SUBACK 0x87 for a refused filter, topic aliases work", async () => {
    const port = r.listener.port;
    const a = await v5(port, "dev1");
    const granted = await a.subscribeAsync("t/#", { qos: 1 });
    assert.deepEqual(granted.map((g) => g.qos), [1]);
    await assert.rejects(a.subscribeAsync("secret/#", { qos: 1 }), /Not authorized/); // SUBACK 0x87
    const got = new Promise<mqtt.IPublishPacket>((resolve) => a.on("message", (_t, _p, packet) => resolve(packet)));
    const b = await v5(port, "dev2");
    await b.publishAsync("t/x", "hi", { qos: 1, properties: { userProperties: { k: "v" }, contentType: "text/plain", responseTopic: "t/reply", correlationData: Buffer.from("c1"), topicAlias: 1 } });
    await b.publishAsync("", "again", { qos: 1, properties: { topicAlias: 1 } });
    const p = await got;
    assert.equal(p.topic, "t/x");
    assert.deepEqual({ ...p.properties?.userProperties }, { k: "v" });
    assert.equal(p.properties?.contentType, "text/plain");
    assert.equal(p.properties?.responseTopic, "t/reply");
    assert.deepEqual(p.properties?.correlationData, Buffer.from("c1"));
    await new Promise((res) => setTimeout(res, 200));
    assert.deepEqual(r.published.map((x) => x.topic), ["t/x", "t/x"]);
    await a.endAsync();
    await b.endAsync();
  });

  it("mqtt.js v5: a subscriber that allows topic aliases gets them, resolved to the right topics (§3.3.2.3.4)", async () => {
    const port = r.listener.port;
    const a = await v5(port, "dev1", { properties: { topicAliasMaximum: 4 } });
    const got: [string, string, number | undefined][] = [];
    a.on("message", (topic, payload, packet) => got.push([topic, payload.toString(), packet.properties?.topicAlias]));
    await a.subscribeAsync("tele/#", { qos: 1 });
    const b = await v5(port, "dev2");
    for (let i = 0; i < 3; i++) for (const t of ["tele/plug/STATE", "tele/plug/SENSOR"]) await b.publishAsync(t, `${t.slice(10)}${i}`, { qos: 1 });
    await new Promise((res) => setTimeout(res, 200));
    assert.deepEqual(got.map(([t, p]) => [t, p]), [0, 1, 2].flatMap((i) => [["tele/plug/STATE", `STATE${i}`], ["tele/plug/SENSOR", `SENSOR${i}`]]));
    assert.deepEqual(got.map(([, , alias]) => alias), [1, 2, 1, 2, 1, 2], "every delivery carries its alias");
    await a.endAsync();
    await b.endAsync();
  });

  it("mqtt.js v5: a retained message carries its expiry's time left, and is gone once it expired (§3.3.2.3.3)", async () => {
    const port = r.listener.port;
    const pub = await v5(port, "dev2");
    await pub.publishAsync("s/temp", "21.5", { qos: 1, retain: true, properties: { messageExpiryInterval: 2, contentType: "text/plain" } });
    await pub.publishAsync("s/door", "open", { qos: 1, retain: true });
    const t0 = Date.now();
    await pub.endAsync();
    const receive = async (ms: number): Promise<mqtt.IPublishPacket[]> => {
      const c = await v5(port, "dev1");
      const got: mqtt.IPublishPacket[] = [];
      c.on("message", (_t, _p, packet) => got.push(packet));
      await c.subscribeAsync("s/#", { qos: 1 });
      await new Promise((res) => setTimeout(res, ms));
      await c.endAsync();
      return got;
    };
    await new Promise((res) => setTimeout(res, 1100));
    const early = await receive(300);
    assert.ok(Date.now() - t0 < 2000, "the first subscriber came too late for the test to mean anything");
    assert.deepEqual(early.map((m) => [m.topic, m.payload.toString(), m.retain, m.properties?.messageExpiryInterval, m.properties?.contentType]), [
      ["s/temp", "21.5", true, 1, "text/plain"], // 2 s less the ~1.1 s it waited, rounded up
      ["s/door", "open", true, undefined, undefined],
    ]);
    await new Promise((res) => setTimeout(res, Math.max(0, 2100 - (Date.now() - t0))));
    const late = await receive(300);
    assert.deepEqual(late.map((m) => m.topic), ["s/door"], "the expired retained message was still delivered");
    assert.deepEqual(r.broker.retained().map((m) => m.topic), ["s/door"]);
  });
});
