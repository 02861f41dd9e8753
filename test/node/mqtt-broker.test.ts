/** The broker over real TCP (nodeNetwork) against mqtt.js, mqtt-packet and, when installed, mosquitto clients. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import net from "node:net";
import { promisify } from "node:util";
import fc from "fast-check";
import mqtt from "mqtt";
import mqttPacket from "mqtt-packet";
import { Broker } from "../../src/mqtt/broker.js";
import { Decoder, encode, type Packet } from "../../src/mqtt/codec.js";
import type { AuditEvent } from "../../src/audit/types.js";
import type { Listener } from "../../src/ports.js";
import { nodeClock, nodeTimers } from "../../hosts/node/clock.js";
import { nodeNetwork } from "../../hosts/node/network.js";
import { packet as anyPacket } from "../fixtures/mqtt/arbitraries.js";
import { CREDENTIALS, type Published } from "../fixtures/mqtt/harness.js";
import { skipUnlessAvailable } from "../lib/skip.js";

const run = promisify(execFile);

interface Rig {
  broker: Broker;
  listener: Listener;
  events: AuditEvent[];
  published: Published[];
  /** Resolves with the next gateway publish. */
  nextPublish(): Promise<Published>;
  /** Resolves with the next audit event of `kind`. */
  nextEvent(kind: AuditEvent["kind"]): Promise<AuditEvent>;
  stop(): void;
}

async function rig(): Promise<Rig> {
  const timers = nodeTimers();
  const events: AuditEvent[] = [];
  const published: Published[] = [];
  let publishWaiters: ((p: Published) => void)[] = [];
  let eventWaiters: { kind: string; resolve: (e: AuditEvent) => void }[] = [];
  const broker = new Broker({
    clock: nodeClock(),
    timers,
    authenticate: (id, _u, pw) => pw !== undefined && CREDENTIALS.get(id) === Buffer.from(pw).toString(),
    authorizeSubscribe: (id, filter) => filter.startsWith(`cmd/${id}/`),
    onPublish: (clientId, topic, payload, qos) => {
      const p = { clientId, topic, payload, qos };
      published.push(p);
      publishWaiters.forEach((w) => w(p));
      publishWaiters = [];
    },
    onEvent: (e) => {
      events.push(e);
      const ready = eventWaiters.filter((w) => w.kind === e.kind);
      eventWaiters = eventWaiters.filter((w) => w.kind !== e.kind);
      ready.forEach((w) => w.resolve(e));
    },
  });
  const listener = nodeNetwork({ host: "127.0.0.1" }).listen({ port: 0, onConnection: (s) => broker.accept(s) });
  await listener.ready;
  return {
    broker,
    listener,
    events,
    published,
    nextPublish: () => new Promise((resolve) => publishWaiters.push(resolve)),
    nextEvent: (kind) => new Promise((resolve) => eventWaiters.push({ kind, resolve })),
    stop() {
      broker.close();
      listener.close();
      timers.cancelAll();
    },
  };
}

function client(r: Rig, clientId: string, options: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect({
      host: "127.0.0.1",
      port: r.listener.port,
      clientId,
      username: clientId,
      password: CREDENTIALS.get(clientId) ?? "none",
      protocolVersion: 4,
      reconnectPeriod: 0,
      ...options,
    });
    c.once("connect", () => resolve(c));
    c.once("error", (e) => {
      c.end(true);
      reject(e);
    });
  });
}

describe("mqtt broker over TCP with mqtt.js", () => {
  let r: Rig;
  const clients: mqtt.MqttClient[] = [];
  const track = async (p: Promise<mqtt.MqttClient>) => {
    const c = await p;
    clients.push(c);
    return c;
  };
  beforeEach(async () => (r = await rig()));
  afterEach(() => {
    clients.splice(0).forEach((c) => c.end(true));
    r.stop();
  });

  it("accepts a device with the right password", async () => {
    await track(client(r, "dev1"));
    assert.deepEqual(r.broker.clients().map((c) => c.clientId), ["dev1"]);
    assert.equal(r.events[0]?.kind, "connect");
    assert.match(String(r.events[0]?.detail?.["remote"]), /^127\.0\.0\.1:\d+$/);
  });

  it("refuses a wrong password with CONNACK 5 (mqtt.js: Not authorized)", async () => {
    await assert.rejects(client(r, "dev1", { password: "guess" }), (e: Error & { code?: number }) => {
      assert.equal(e.code, 5);
      assert.match(e.message, /Not authorized/);
      return true;
    });
    assert.equal(r.events[0]?.reason, "not-authorized");
  });

  it("passes QoS 0 and QoS 1 publishes to the gateway", async () => {
    const c = await track(client(r, "dev1"));
    const got = r.nextPublish();
    c.publish("dev1/temp", "21.5", { qos: 0 });
    assert.deepEqual(await got, { clientId: "dev1", topic: "dev1/temp", payload: new Uint8Array(Buffer.from("21.5")), qos: 0 });
    await c.publishAsync("dev1/hum", "40", { qos: 1 }); // resolves on PUBACK
    assert.equal(r.published.at(-1)?.topic, "dev1/hum");
    assert.equal(r.published.at(-1)?.qos, 1);
  });

  it("delivers gateway messages to a subscribed device, and refuses filters it may not have", async () => {
    const c = await track(client(r, "dev1"));
    const granted = await c.subscribeAsync("cmd/dev1/#", { qos: 1 });
    assert.deepEqual(granted.map((g) => [g.topic, g.qos]), [["cmd/dev1/#", 1]]);
    // mqtt.js turns a SUBACK 0x80 into an error.
    await assert.rejects(c.subscribeAsync("cmd/dev2/#", { qos: 0 }), /Subscribe error/);
    assert.equal(r.events.at(-1)?.reason, "not-authorized");
    const message = new Promise<[string, Buffer, number]>((resolve) => c.once("message", (t, p, pk) => resolve([t, p, pk.qos])));
    assert.equal(r.broker.deliver("cmd/dev1/light", new Uint8Array(Buffer.from("on")), 1), 1);
    assert.deepEqual(await message, ["cmd/dev1/light", Buffer.from("on"), 1]);
  });

  it("publishes the will when a device drops, not when it disconnects cleanly", async () => {
    const will = { topic: "dev1/status", payload: Buffer.from("offline"), qos: 1 as const, retain: false };
    const a = await client(r, "dev1", { will });
    const got = r.nextPublish();
    a.stream.destroy();
    assert.deepEqual(await got, { clientId: "dev1", topic: "dev1/status", payload: new Uint8Array(will.payload), qos: 1 });
    const b = await client(r, "dev2", { will: { ...will, topic: "dev2/status" } });
    const gone = r.nextEvent("disconnect");
    await b.endAsync();
    assert.equal((await gone).reason, "clean");
    assert.deepEqual(r.published.map((p) => p.topic), ["dev1/status"]);
  });

  it("closes only a connection that sends garbage; another client keeps working", async () => {
    const good = await track(client(r, "dev2"));
    const raw = net.connect(r.listener.port, "127.0.0.1");
    const closed = new Promise<void>((resolve) => raw.on("close", () => resolve()));
    raw.on("error", () => {});
    raw.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f]));
    await closed;
    assert.equal(r.events.find((e) => e.kind === "protocol")?.reason, "bad-remaining-length");
    await good.publishAsync("dev2/x", "still here", { qos: 1 });
    assert.equal(r.published.at(-1)?.topic, "dev2/x");
  });

  it("closes a silent device after 1.5 × keepalive on real timers, while mqtt.js pings and stays", async () => {
    const pinging = await track(client(r, "dev2", { keepalive: 1 }));
    const raw = net.connect(r.listener.port, "127.0.0.1");
    raw.on("error", () => {});
    raw.resume(); // read the CONNACK, else the socket never sees the end
    raw.write(encode({ cmd: "connect", clientId: "dev1", cleanSession: true, keepalive: 1, username: "dev1", password: new Uint8Array(Buffer.from(CREDENTIALS.get("dev1")!)) }));
    const started = Date.now();
    await new Promise<void>((resolve) => raw.on("close", () => resolve()));
    const waited = Date.now() - started;
    assert.ok(waited >= 1400 && waited < 3000, `closed after ${waited} ms`);
    assert.ok(r.events.some((e) => e.kind === "disconnect" && e.device === "dev1" && e.reason === "keepalive"));
    assert.equal(pinging.connected, true);
  });

  it("takes over a session when the same device connects again", async () => {
    const first = await client(r, "dev1");
    const firstClosed = new Promise<void>((resolve) => first.once("close", () => resolve()));
    await track(client(r, "dev1"));
    await firstClosed;
    first.end(true);
    assert.equal(r.broker.clients().length, 1);
    assert.ok(r.events.some((e) => e.kind === "disconnect" && e.reason === "takeover"));
  });
});

/** mqtt-packet's packet shape for one of ours. */
function toMp(p: Packet): Record<string, unknown> {
  const b = (u: Uint8Array) => Buffer.from(u);
  switch (p.cmd) {
    case "connect":
      return {
        cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: p.cleanSession, clientId: p.clientId, keepalive: p.keepalive,
        ...(p.username !== undefined ? { username: p.username } : {}),
        ...(p.password !== undefined ? { password: b(p.password) } : {}),
        ...(p.will ? { will: { ...p.will, payload: b(p.will.payload) } } : {}),
      };
    case "publish":
      return { cmd: "publish", topic: p.topic, payload: b(p.payload), qos: p.qos, retain: p.retain, dup: p.dup, ...(p.packetId ? { messageId: p.packetId } : {}) };
    case "subscribe":
      return { cmd: "subscribe", messageId: p.packetId, subscriptions: p.subscriptions.map((s) => ({ topic: s.filter, qos: s.qos })) };
    case "suback":
      return { cmd: "suback", messageId: p.packetId, granted: [...p.granted] };
    case "unsubscribe":
      return { cmd: "unsubscribe", messageId: p.packetId, unsubscriptions: [...p.filters] };
    case "connack":
      return { cmd: "connack", returnCode: p.returnCode, sessionPresent: p.sessionPresent };
    case "puback": case "pubrec": case "pubrel": case "pubcomp": case "unsuback":
      return { cmd: p.cmd, messageId: p.packetId };
    default:
      return { cmd: p.cmd };
  }
}

/** Ours, from what mqtt-packet parsed. */
function fromMp(m: Record<string, any>): Packet {
  const u = (x: Buffer) => new Uint8Array(x);
  switch (m["cmd"]) {
    case "connect":
      return {
        cmd: "connect", clientId: m.clientId, cleanSession: m.clean, keepalive: m.keepalive,
        ...(m.username !== undefined ? { username: m.username } : {}),
        ...(m.password !== undefined ? { password: u(m.password) } : {}),
        ...(m.will ? { will: { topic: m.will.topic, payload: u(m.will.payload), qos: m.will.qos, retain: m.will.retain } } : {}),
      };
    case "publish":
      return { cmd: "publish", topic: m.topic, payload: u(m.payload), qos: m.qos, retain: m.retain, dup: m.dup, ...(m.qos > 0 ? { packetId: m.messageId } : {}) };
    case "subscribe":
      return { cmd: "subscribe", packetId: m.messageId, subscriptions: m.subscriptions.map((s: any) => ({ filter: s.topic, qos: s.qos })) };
    case "suback":
      return { cmd: "suback", packetId: m.messageId, granted: m.granted };
    case "unsubscribe":
      return { cmd: "unsubscribe", packetId: m.messageId, filters: m.unsubscriptions };
    case "connack":
      return { cmd: "connack", sessionPresent: m.sessionPresent, returnCode: m.returnCode };
    case "puback": case "pubrec": case "pubrel": case "pubcomp": case "unsuback":
      return { cmd: m.cmd, packetId: m.messageId };
    default:
      return { cmd: m.cmd };
  }
}

describe("mqtt codec cross-checked with mqtt-packet", () => {
  it("mqtt-packet parses what we encode, and we decode what mqtt-packet generates", () => {
    fc.assert(
      fc.property(anyPacket, (p) => {
        const parsed: Record<string, unknown>[] = [];
        const parser = mqttPacket.parser({ protocolVersion: 4 });
        parser.on("packet", (x) => parsed.push(x as unknown as Record<string, unknown>));
        parser.on("error", (e) => assert.fail(`mqtt-packet refused our ${p.cmd}: ${e.message}`));
        parser.parse(Buffer.from(encode(p)));
        assert.deepEqual(parsed.map(fromMp), [p]);

        // mqtt-packet will not generate an empty client id with clean session 0; §3.1.3.1 makes that
        // the server's refusal (CONNACK 2), which our session gives, so only the first direction applies.
        if (p.cmd === "connect" && p.clientId === "" && !p.cleanSession) return;
        const ours: Packet[] = [];
        const generated = mqttPacket.generate(toMp(p) as never, { protocolVersion: 4 });
        const err = new Decoder({ onPacket: (x) => ours.push(x) }).push(new Uint8Array(generated));
        assert.equal(err, undefined);
        assert.deepEqual(ours, [p]);
        assert.deepEqual(new Uint8Array(generated), encode(p));
      }),
      { numRuns: 1000 },
    );
  });
});

describe("mqtt broker with mosquitto clients", () => {
  let r: Rig;
  before(async function () {
    let why: string | undefined;
    try {
      await run("mosquitto_pub", ["--help"]).catch((e: { code?: unknown }) => {
        if (e.code === "ENOENT") throw e;
      });
    } catch {
      why = "mosquitto_pub not installed";
    }
    skipUnlessAvailable(this, "mosquitto-clients", why, "apt-get install -y mosquitto-clients");
  });
  beforeEach(async () => (r = await rig()));
  afterEach(() => r.stop());

  const pub = (id: string, pw: string) =>
    run("mosquitto_pub", ["-V", "mqttv311", "-h", "127.0.0.1", "-p", String(r.listener.port), "-i", id, "-u", id, "-P", pw, "-t", `${id}/t`, "-m", "hello", "-q", "1"]);

  it("refuses mosquitto_pub with an unknown client id", async () => {
    await assert.rejects(pub("unknown", "x"), (e: Error & { stderr?: string }) => {
      assert.match(String(e.stderr), /not authori[sz]ed/i);
      return true;
    });
    assert.deepEqual([r.events[0]?.kind, r.events[0]?.device, r.events[0]?.detail?.["claimed"]], ["auth", undefined, "unknown"]);
  });

  it("accepts mosquitto_pub with the device's credentials (QoS 1)", async () => {
    await pub("dev1", CREDENTIALS.get("dev1")!);
    assert.deepEqual(r.published.map((p) => [p.clientId, p.topic, p.qos]), [["dev1", "dev1/t", 1]]);
  });
});
