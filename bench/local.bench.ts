/**
 * `npm run bench -- local`: the home broker's local routing (issue 12).
 *
 * - topic tree: ns per match against the number of subscriptions, and the linear scan it replaced;
 * - in-memory fan-out through the Broker (no sockets): 1 publisher → 0 / 10 / 100 subscribers;
 * - real sockets, mqtt.js clients, side by side with Mosquitto (from Debian) in the same run: 1 → 10 and
 *   1 → 100 subscribers, and 1,000 wildcard subscriptions, as deliveries/s and the ratio to Mosquitto.
 *   Our broker runs in this process (as on the Node board), Mosquitto as its own process.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir, userInfo } from "node:os";
import path from "node:path";
import mqtt from "mqtt";
import { Broker } from "../src/mqtt/broker.js";
import { encode } from "../src/mqtt/codec.js";
import { SubscriptionTree } from "../src/mqtt/subtree.js";
import { topicMatches } from "../src/mqtt/topic.js";
import type { DeviceSocket } from "../src/ports.js";
import { nodeClock, nodeTimers } from "../hosts/node/clock.js";
import { nodeNetwork } from "../hosts/node/network.js";
import { fileURLToPath } from "node:url";
import { MOSQUITTO } from "./lib/systems.js";
import { bundleForXs, runInXs } from "../test/xs/xsnap.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** XS: a topic-tree match among 1,000 subscriptions, and one routed publish (decode, match, 10 encodes). */
const XS_ENTRY = (n: number, work: "match" | "route" | "route5" | "route5props") => `
import { SubscriptionTree } from "./src/mqtt/subtree.ts";
import { Broker } from "./src/mqtt/broker.ts";
import { encode } from "./src/mqtt/codec.ts";
let hits = 0;
if (${JSON.stringify(work)} === "match") {
  const t = new SubscriptionTree();
  for (let i = 0; i < 1000; i++) t.add(i % 2 ? "tele/dev" + i + "/+" : "stat/dev" + i + "/#", i, 1);
  t.add("#", -1, 0);
  for (let k = 0; k < ${n}; k++) t.match("tele/dev" + ((k * 37) % 1000) + "/STATE", () => { hits++; });
} else {
  const v = ${JSON.stringify(work)} === "route" ? 4 : 5;
  const props = ${JSON.stringify(work)} === "route5props" ? { contentType: "application/json", userProperties: [["unit", "C"], ["src", "plug"]] } : undefined;
  const clock = { now: () => 0, monotonic: () => 0, isSet: () => true };
  const timers = { after: () => 0, every: () => 0, cancel() {} };
  const b = new Broker({ clock, timers, authenticate: () => true, onPublish: () => undefined, onEvent: () => undefined, limits: { publishRatePerSec: 1000000, publishBurst: 1000000 } });
  const mk = (id) => { const h = b.accept({ remote: "10.0." + id.length + ".1:1", write: () => true, close() {} }); h.onData(encode({ cmd: "connect", version: v, clientId: id, cleanSession: true, keepalive: 0, username: id, password: new Uint8Array(1) })); return h; };
  for (let i = 0; i < 10; i++) mk("s" + i).onData(encode({ cmd: "subscribe", packetId: 1, subscriptions: [{ filter: "tele/+/STATE", qos: 0 }] }, v));
  const p = mk("pub");
  const msg = encode({ cmd: "publish", topic: "tele/plug/STATE", payload: new Uint8Array(200), qos: 0, retain: false, dup: false, ...(props ? { properties: props } : {}) }, v);
  for (let k = 0; k < ${n}; k++) p.onData(msg);
}
print("done " + hits);
`;

export async function xsPer(work: "match" | "route" | "route5" | "route5props"): Promise<number> {
  const n = 500;
  const [base, full] = await Promise.all([0, n].map(async (k) => (await runInXs(await bundleForXs(XS_ENTRY(k, work), root))).meter));
  if (!base || !full) throw new Error("xsnap reported no meter");
  return Math.round((full.compute - base.compute) / n);
}

function treeFigures(out: Record<string, number | string>): void {
  for (const n of [10, 100, 1000, 10000]) {
    const t = new SubscriptionTree<number>();
    const list: string[] = [];
    for (let i = 0; i < n; i++) {
      const f = i % 4 === 0 ? `tele/dev${i}/+` : i % 4 === 1 ? `stat/dev${i}/#` : i % 4 === 2 ? `+/dev${i}/STATE` : `cmnd/dev${i}/POWER`;
      t.add(f, i, 1);
      list.push(f);
    }
    t.add("#", -1, 0);
    list.push("#");
    const topics = Array.from({ length: 100 }, (_, i) => `tele/dev${(i * 37) % n}/STATE`);
    let hits = 0;
    const N = 200_000;
    let t0 = performance.now();
    for (let k = 0; k < N; k++) t.match(topics[k % 100]!, () => void hits++);
    const tree = ((performance.now() - t0) / N) * 1e6;
    const M = Math.max(200, Math.floor(2e6 / n));
    t0 = performance.now();
    for (let k = 0; k < M; k++) {
      const tp = topics[k % 100]!;
      for (const f of list) if (topicMatches(f, tp)) hits++;
    }
    const linear = ((performance.now() - t0) / M) * 1e6;
    out[`tree: ns per match, ${n} subscriptions (linear scan)`] = `${tree.toFixed(0)} (${linear.toFixed(0)})`;
  }
}

function fanOutFigures(out: Record<string, number | string>): void {
  for (const subs of [0, 10, 100]) {
    const clock = nodeClock();
    const timers = nodeTimers();
    const b = new Broker({ clock, timers, authenticate: () => true, onPublish: () => undefined, onEvent: () => undefined, limits: { maxConnections: 200, publishRatePerSec: 1_000_000, publishBurst: 1_000_000 } });
    const mk = (id: string) => {
      const sock: DeviceSocket = { remote: `10.0.${id.length}.1:1`, write: () => true, close() {} };
      const h = b.accept(sock);
      h.onData(encode({ cmd: "connect", clientId: id, cleanSession: true, keepalive: 0, username: id, password: new Uint8Array(1) }));
      return h;
    };
    for (let i = 0; i < subs; i++) mk(`s${i}`).onData(encode({ cmd: "subscribe", packetId: 1, subscriptions: [{ filter: i % 2 ? "tele/+/STATE" : "#", qos: 0 }] }));
    const p = mk("pub");
    const msg = encode({ cmd: "publish", topic: "tele/plug/STATE", payload: new Uint8Array(200), qos: 0, retain: false, dup: false });
    const N = subs === 100 ? 20_000 : 100_000;
    const t0 = performance.now();
    for (let k = 0; k < N; k++) p.onData(msg);
    const ms = performance.now() - t0;
    out[`in-memory: publishes/s, 1 → ${subs} subscribers, 200 B QoS 0`] = Math.round((N / ms) * 1000);
    b.close();
    timers.cancelAll();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function connect(port: number, id: string): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect({ host: "127.0.0.1", port, clientId: id, username: id, password: "bench", protocolVersion: 4, reconnectPeriod: 0 });
    c.once("connect", () => resolve(c));
    c.once("error", reject);
  });
}

/** Deliveries/s: `subs` clients with `filtersEach` filters each, one publisher, `n` QoS 0 messages over `topics`. */
async function socketRun(port: number, subs: number, filtersEach: (i: number) => string[], topics: string[], n: number, expected: number): Promise<number> {
  const clients: mqtt.MqttClient[] = [];
  let got = 0;
  let done: () => void = () => {};
  const all = new Promise<void>((r) => (done = r));
  for (let i = 0; i < subs; i++) {
    const c = await connect(port, `sub${i}`);
    c.on("message", () => {
      if (++got === expected) done();
    });
    await c.subscribeAsync(filtersEach(i), { qos: 0 });
    clients.push(c);
  }
  const pub = await connect(port, "pub");
  clients.push(pub);
  const payload = Buffer.alloc(200, 120);
  const t0 = performance.now();
  for (let k = 0; k < n; k++) {
    pub.publish(topics[k % topics.length]!, payload, { qos: 0 });
    if (k % 200 === 199) await new Promise((r) => setImmediate(r));
  }
  await Promise.race([all, new Promise((r) => setTimeout(r, 60_000))]);
  const ms = performance.now() - t0;
  for (const c of clients) c.end(true);
  return got < expected ? -got : Math.round((got / ms) * 1000);
}

async function withMosquitto<T>(f: (port: number) => Promise<T>): Promise<T | undefined> {
  if (!existsSync(MOSQUITTO)) return undefined;
  const dir = mkdtempSync(path.join(tmpdir(), "bench-local-"));
  const port = await freePort();
  const conf = path.join(dir, "m.conf");
  writeFileSync(conf, [`user ${userInfo().username}`, "allow_anonymous true", "persistence false", "log_dest stderr", "log_type error", "max_queued_messages 100000", `listener ${port} 127.0.0.1`, ""].join("\n"));
  const child = spawn(MOSQUITTO, ["-c", conf], { stdio: "ignore" });
  try {
    for (let i = 0; i < 100; i++) {
      const ok = await new Promise<boolean>((r) => {
        const s = net.connect(port, "127.0.0.1");
        s.once("connect", () => (s.destroy(), r(true)));
        s.once("error", () => (s.destroy(), r(false)));
      });
      if (ok) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    return await f(port);
  } finally {
    child.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
}

async function withOurs<T>(f: (port: number) => Promise<T>): Promise<T> {
  const timers = nodeTimers();
  const broker = new Broker({
    clock: nodeClock(),
    timers,
    authenticate: () => true,
    onPublish: () => undefined,
    onEvent: () => undefined,
    limits: { maxConnections: 200, maxPendingConnections: 200, maxPendingPerAddress: 200, publishRatePerSec: 1_000_000, publishBurst: 1_000_000, maxSubscriptionsPerClient: 1000 },
  });
  const listener = nodeNetwork({ host: "127.0.0.1" }).listen({ port: 0, onConnection: (s) => broker.accept(s) });
  await listener.ready;
  try {
    return await f(listener.port);
  } finally {
    broker.close();
    listener.close();
    timers.cancelAll();
  }
}

export default async function local(): Promise<Record<string, number | string>> {
  const out: Record<string, number | string> = {};
  treeFigures(out);
  fanOutFigures(out);
  try {
    out["xs computrons per match, 1,000 subscriptions"] = await xsPer("match");
    out["xs computrons per routed 200 B publish, 1 → 10 subscribers (decode + match + 10 encodes)"] = await xsPer("route");
    out["xs computrons per routed publish as above, MQTT 5"] = await xsPer("route5");
    out["xs computrons per routed publish as above, MQTT 5 with content type and 2 user properties"] = await xsPer("route5props");
  } catch (e) {
    out["xs"] = `skipped: ${String(e)}`;
  }
  const cases: { name: string; subs: number; filters: (i: number) => string[]; topics: string[]; n: number; per: number }[] = [
    { name: "1 → 10 subscribers", subs: 10, filters: () => ["tele/#"], topics: ["tele/plug/STATE"], n: 4000, per: 10 },
    { name: "1 → 100 subscribers", subs: 100, filters: () => ["tele/+/STATE"], topics: ["tele/plug/STATE"], n: 500, per: 100 },
    {
      name: "1,000 wildcard subscriptions (10 clients × 100), each message matches 1",
      subs: 10,
      filters: (i) => Array.from({ length: 100 }, (_, k) => (k % 2 ? `tele/d${i}-${k}/+` : `stat/d${i}-${k}/#`)),
      topics: Array.from({ length: 100 }, (_, j) => `tele/d${j % 10}-${(j * 2 + 1) % 100}/STATE`),
      n: 4000,
      per: 1,
    },
  ];
  for (const c of cases) {
    const ours = await withOurs((port) => socketRun(port, c.subs, c.filters, c.topics, c.n, c.n * c.per));
    const theirs = await withMosquitto((port) => socketRun(port, c.subs, c.filters, c.topics, c.n, c.n * c.per));
    out[`sockets: deliveries/s, ${c.name}: ours / mosquitto (ratio)`] =
      theirs === undefined ? `${ours} / (mosquitto not installed)` : `${ours} / ${theirs} (${(ours / theirs).toFixed(2)}×)`;
  }
  return out;
}
