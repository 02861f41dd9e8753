/**
 * Model-based test (fc.commands) of broker sessions. The model predicts exactly which sockets are open,
 * which pending socket each new one evicts, which devices each delivery reaches at which QoS and packet
 * id, how many timers run and how many evictions the records count.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Packet } from "../../src/mqtt/codec.js";
import { CONNECT_TIMEOUT_MS } from "../../src/mqtt/broker.js";
import type { FakeSocket } from "../fixtures/mqtt/fake-socket.js";
import { harness } from "../fixtures/mqtt/harness.js";
import { ascii } from "../fixtures/mqtt/packets.js";
import { referenceMatches } from "../fixtures/mqtt/reference-topic.js";

const MAX_CONNECTIONS = 3;
const MAX_PENDING = 3;
const MAX_PER_ADDRESS = 2;
const MAX_INFLIGHT = 2;
const WINDOW_MS = 15000;
const IDS = ["dev1", "dev2", "dev3", "dev4"] as const;
const ADDRESSES = ["192.0.2.1", "192.0.2.2"] as const;
const FILTERS = ["#", "a/+", "a/b", "+/b", "cmd/#"] as const;
const TOPICS = ["a/b", "a/c", "cmd/x", "$SYS/a"] as const;

interface Device {
  socket: number;
  /** Filter → granted QoS. */
  subs: Map<string, 0 | 1 | 2>;
  /** QoS 1 and 2 deliveries not yet settled. */
  unacked: { id: number; qos: 1 | 2 }[];
}

interface Model {
  connected: Map<string, Device>;
  /** Sockets without CONNECT yet, oldest first. */
  pending: { socket: number; at: number; address: string }[];
  /** Open eviction-record windows by address: opened at, evictions after the first. */
  windows: Map<string, { at: number; more: number }>;
  evictions: number;
  /** Local messages skipped at a receiver's in-flight limit. */
  localDrops: number;
}

interface Real {
  h: ReturnType<typeof harness>;
  sockets: FakeSocket[];
}

type Cmd = fc.Command<Model, Real>;

const matches = referenceMatches;

/**
 * What one message to `topic` at `qos` must do (a device's publish routed locally, a will, or a gateway
 * delivery): reach every connected device with a matching subscription once, at min(qos, its highest
 * grant), except one at its in-flight limit. Checks what each socket got and returns the other
 * packets per device, and the number of devices reached.
 */
function fanOut(m: Model, r: Real, topic: string, qos: 0 | 1 | 2, local = true): { rest: Map<string, Packet[]>; reached: number } {
  const rest = new Map<string, Packet[]>();
  let reached = 0;
  for (const [id, d] of m.connected) {
    let granted = -1;
    for (const [f, g] of d.subs) if (g > granted && matches(f, topic)) granted = g;
    let q: 0 | 1 | 2 | undefined = granted < 0 ? undefined : ((qos < granted ? qos : granted) as 0 | 1 | 2);
    if (q !== undefined && q > 0 && d.unacked.length >= MAX_INFLIGHT) {
      q = undefined; // at the in-flight limit: skipped, and a local message's drop counted per receiver
      if (local) {
        m.localDrops++;
        const w = m.windows.get(`drop:${id}`);
        if (w) w.more++;
        else m.windows.set(`drop:${id}`, { at: r.h.clock.monotonic(), more: 0 });
      }
    }
    const got = r.sockets[d.socket]!.take();
    const pubs = got.filter((p) => p.cmd === "publish");
    rest.set(id, got.filter((p) => p.cmd !== "publish"));
    if (q === undefined) {
      assert.deepEqual(pubs, [], `${id} must not get ${topic}`);
      continue;
    }
    reached++;
    assert.equal(pubs.length, 1, `${id} gets ${topic} once`);
    const p = pubs[0]!;
    assert.ok(p.cmd === "publish");
    assert.deepEqual([p.topic, p.qos, p.retain], [topic, q, false]);
    if (q > 0) {
      assert.ok(!d.unacked.some((u) => u.id === p.packetId), `packet id ${p.packetId} is already in flight`);
      d.unacked.push({ id: p.packetId!, qos: q as 1 | 2 });
    }
  }
  return { rest, reached };
}

/** What the broker must do when socket `index` from `address` is accepted: evict, then add it as pending. */
function modelOpen(m: Model, r: Real, index: number, address: string): void {
  const same = m.pending.filter((p) => p.address === address);
  const victim = same.length >= MAX_PER_ADDRESS ? same[0] : m.pending.length >= MAX_PENDING ? m.pending[0] : undefined;
  if (victim !== undefined) {
    m.pending = m.pending.filter((p) => p !== victim);
    m.evictions++;
    const w = m.windows.get(victim.address);
    if (w) w.more++;
    else m.windows.set(victim.address, { at: r.h.clock.monotonic(), more: 0 });
  }
  m.pending.push({ socket: index, at: r.h.clock.monotonic(), address });
}

class Open implements Cmd {
  readonly address: string;
  constructor(address: string) {
    this.address = address;
  }
  check = () => true;
  run(m: Model, r: Real): void {
    r.sockets.push(r.h.open(this.address));
    modelOpen(m, r, r.sockets.length - 1, this.address);
  }
  toString = () => `open(${this.address})`;
}

class Connect implements Cmd {
  readonly id: string;
  readonly good: boolean;
  readonly address: string;
  constructor(id: string, good: boolean, address: string) {
    this.id = id;
    this.good = good;
    this.address = address;
  }
  check = () => true;
  run(m: Model, r: Real): void {
    const before = r.h.published.length;
    // The harness accepts the socket and sends CONNECT at once: model the accept, then the CONNECT.
    const index = r.sockets.length;
    const will = { topic: `${this.id}/lwt`, payload: ascii("x"), qos: 0 as const, retain: false };
    const s = r.h.connect(this.id, { from: this.address, ...(this.good ? { will } : { pw: "bad" }) });
    r.sockets.push(s);
    modelOpen(m, r, index, this.address);
    m.pending = m.pending.filter((p) => p.socket !== index); // CONNECT read: no longer pending
    const old = m.connected.get(this.id);
    // Full (and no session of this id to take over): CONNACK 3 before the credentials are checked.
    const expected = old === undefined && m.connected.size >= MAX_CONNECTIONS ? 3 : !this.good ? 5 : 0;
    assert.deepEqual(s.take(), [{ cmd: "connack", sessionPresent: false, returnCode: expected }]);
    if (expected === 0) {
      if (old !== undefined) {
        assert.equal(r.h.published.length, before + 1, "taken-over session's will published");
        m.connected.delete(this.id);
        fanOut(m, r, `${this.id}/lwt`, 0);
      }
      m.connected.set(this.id, { socket: index, subs: new Map(), unacked: [] });
    }
  }
  toString = () => `connect(${this.id}, ${this.good}, ${this.address})`;
}

class Tick implements Cmd {
  readonly ms: number;
  constructor(ms: number) {
    this.ms = ms;
  }
  check = () => true;
  run(m: Model, r: Real): void {
    r.h.clock.tick(this.ms);
    const now = r.h.clock.monotonic();
    m.pending = m.pending.filter((p) => now - p.at < CONNECT_TIMEOUT_MS);
    for (const [k, w] of m.windows) if (now - w.at >= WINDOW_MS) m.windows.delete(k);
  }
  toString = () => `tick(${this.ms})`;
}

/** Commands that act on a connected device. */
abstract class DeviceCmd implements Cmd {
  readonly id: string;
  constructor(id: string) {
    this.id = id;
  }
  check(m: Readonly<Model>): boolean {
    return m.connected.has(this.id);
  }
  socket(m: Model, r: Real): FakeSocket {
    return r.sockets[m.connected.get(this.id)!.socket]!;
  }
  abstract run(m: Model, r: Real): void;
}

class Publish extends DeviceCmd {
  readonly qos: 0 | 1 | 2;
  readonly packetId: number;
  constructor(id: string, qos: 0 | 1 | 2, packetId: number) {
    super(id);
    this.qos = qos;
    this.packetId = packetId;
  }
  override run(m: Model, r: Real): void {
    const s = this.socket(m, r);
    const before = r.h.published.length;
    const topic = `${this.id}/t`;
    s.send(this.qos === 0
      ? { cmd: "publish", topic, payload: ascii("1"), qos: 0, retain: false, dup: false }
      : { cmd: "publish", topic, payload: ascii("1"), qos: this.qos, retain: false, dup: false, packetId: this.packetId });
    assert.deepEqual(r.h.published.slice(before), [{ clientId: this.id, topic, payload: ascii("1"), qos: this.qos === 0 ? 0 : 1 }]);
    // Routed to every matching subscription, the publisher's own included (§3.3.5).
    const { rest } = fanOut(m, r, topic, this.qos);
    const ack = this.qos === 1 ? [{ cmd: "puback", packetId: this.packetId }] : this.qos === 2 ? [{ cmd: "pubrec", packetId: this.packetId }] : [];
    assert.deepEqual(rest.get(this.id), ack);
    if (this.qos === 2) {
      s.send({ cmd: "pubrel", packetId: this.packetId });
      assert.deepEqual(s.take(), [{ cmd: "pubcomp", packetId: this.packetId }]);
    }
  }
  override toString = () => `publish(${this.id}, qos ${this.qos})`;
}

class Subscribe extends DeviceCmd {
  readonly filter: string;
  readonly qos: 0 | 1 | 2;
  constructor(id: string, filter: string, qos: 0 | 1 | 2) {
    super(id);
    this.filter = filter;
    this.qos = qos;
  }
  override run(m: Model, r: Real): void {
    const s = this.socket(m, r);
    s.send({ cmd: "subscribe", packetId: 9, subscriptions: [{ filter: this.filter, qos: this.qos }] });
    const g = this.qos;
    assert.deepEqual(s.take(), [{ cmd: "suback", packetId: 9, granted: [g] }]);
    m.connected.get(this.id)!.subs.set(this.filter, g);
  }
  override toString = () => `subscribe(${this.id}, ${this.filter}, ${this.qos})`;
}

class Ack extends DeviceCmd {
  override run(m: Model, r: Real): void {
    const s = this.socket(m, r);
    const d = m.connected.get(this.id)!;
    const rels: Packet[] = [];
    for (const u of d.unacked) {
      if (u.qos === 1) s.send({ cmd: "puback", packetId: u.id });
      else {
        s.send({ cmd: "pubrec", packetId: u.id });
        rels.push({ cmd: "pubrel", packetId: u.id });
      }
    }
    assert.deepEqual(s.take(), rels, "PUBREL for each PUBREC (§4.3.3)");
    for (const u of d.unacked) if (u.qos === 2) s.send({ cmd: "pubcomp", packetId: u.id });
    d.unacked = [];
    assert.deepEqual(s.take(), []);
  }
  override toString = () => `ack(${this.id})`;
}

class Leave extends DeviceCmd {
  readonly how: "clean" | "drop" | "garbage";
  constructor(id: string, how: "clean" | "drop" | "garbage") {
    super(id);
    this.how = how;
  }
  override run(m: Model, r: Real): void {
    const s = this.socket(m, r);
    const before = r.h.published.length;
    if (this.how === "clean") s.send({ cmd: "disconnect" });
    else if (this.how === "drop") s.handler!.onClose();
    else s.send(Uint8Array.of(0x00, 0x02, 0xff, 0xff)); // reserved packet type 0: always malformed
    assert.equal(r.h.published.length, before + (this.how === "clean" ? 0 : 1), "will only on unclean close");
    m.connected.delete(this.id);
    if (this.how !== "clean") fanOut(m, r, `${this.id}/lwt`, 0);
  }
  override toString = () => `leave(${this.id}, ${this.how})`;
}

class Deliver implements Cmd {
  readonly topic: string;
  readonly qos: 0 | 1;
  /** Back-to-back deliveries (so the in-flight limit is reached often). */
  readonly times: number;
  constructor(topic: string, qos: 0 | 1, times: number) {
    this.topic = topic;
    this.qos = qos;
    this.times = times;
  }
  check = () => true;
  run(m: Model, r: Real): void {
    for (let i = 0; i < this.times; i++) this.once(m, r);
  }
  once(m: Model, r: Real): void {
    const before = new Map([...m.connected].map(([id, d]) => [id, d.unacked.length]));
    const n = r.h.broker.deliver(this.topic, ascii("d"), this.qos);
    const { rest, reached } = fanOut(m, r, this.topic, this.qos, false);
    assert.equal(n, reached);
    for (const [id, extra] of rest) assert.deepEqual(extra, [], `${id} gets nothing else (${before.get(id)} in flight before)`);
  }
  toString = () => `deliver(${this.topic}, ${this.qos}) × ${this.times}`;
}

function invariants(m: Model, r: Real): void {
  const clients = r.h.broker.clients();
  assert.deepEqual(clients.map((c) => c.clientId).sort(), [...m.connected.keys()].sort());
  for (const c of clients) assert.equal(c.remote, r.sockets[m.connected.get(c.clientId)!.socket]!.remote);
  const live = new Set([...[...m.connected.values()].map((d) => d.socket), ...m.pending.map((p) => p.socket)]);
  r.sockets.forEach((s, i) => {
    assert.equal(s.writeAfterClose, false, "no write after close");
    assert.equal(s.closed, !live.has(i), `socket ${i} open iff live in the model`);
    assert.deepEqual(s.received, [], `socket ${i} got nothing the model did not predict`);
  });
  // One connect timer per pending socket (keepalive is 0) and one per open record window: nothing leaks.
  assert.equal(r.h.clock.pendingCount, m.pending.length + m.windows.size, "timers");
  // Records count every eviction exactly: what was written plus what the open windows still hold.
  let recorded = 0;
  for (const e of r.h.events) if (e.reason === "evicted") recorded += e.detail?.["count"] as number;
  let held = 0;
  for (const [k, w] of m.windows) if (!k.startsWith("drop:")) held += w.more; // drop:<id> windows count local drops
  assert.equal(recorded + held, m.evictions, "evictions counted");
  let drops = 0;
  for (const e of r.h.events) if (e.reason === "inflight-full") drops += e.detail?.["count"] as number;
  for (const [k, w] of m.windows) if (k.startsWith("drop:")) drops += w.more;
  assert.equal(drops, m.localDrops, "local drops counted exactly");
}

describe("mqtt session: model-based", () => {
  it("predicts open sockets, evictions, deliveries, in-flight ids, timers and eviction counts exactly", () => {
    const id = fc.constantFrom(...IDS);
    const address = fc.constantFrom(...ADDRESSES);
    const commands = [
      fc.tuple(id, fc.boolean(), address).map(([i, g, a]) => new Connect(i, g, a)),
      address.map((a) => new Open(a)),
      fc.integer({ min: 1, max: 2 * CONNECT_TIMEOUT_MS }).map((ms) => new Tick(ms)),
      fc.tuple(id, fc.constantFrom<0 | 1 | 2>(0, 1, 2), fc.integer({ min: 1, max: 0xffff })).map(([i, q, p]) => new Publish(i, q, p)),
      fc.tuple(id, fc.constantFrom(...FILTERS), fc.constantFrom<0 | 1 | 2>(0, 1, 2)).map(([i, f, q]) => new Subscribe(i, f, q)),
      id.map((i) => new Ack(i)),
      fc.tuple(id, fc.constantFrom<"clean" | "drop" | "garbage">("clean", "drop", "garbage")).map(([i, how]) => new Leave(i, how)),
      fc.tuple(fc.constantFrom(...TOPICS), fc.constantFrom<0 | 1>(0, 1), fc.integer({ min: 1, max: 3 })).map(([t, q, n]) => new Deliver(t, q, n)),
    ];
    fc.assert(
      fc.property(fc.commands(commands, { maxCommands: 60, size: "max" }), (cmds) => {
        const setup = () => ({
          model: { connected: new Map(), pending: [], windows: new Map(), evictions: 0, localDrops: 0 } as Model,
          real: {
            h: harness({
              limits: {
                maxConnections: MAX_CONNECTIONS, maxPendingConnections: MAX_PENDING, maxPendingPerAddress: MAX_PER_ADDRESS,
                maxInflight: MAX_INFLIGHT, aggregateWindowMs: WINDOW_MS, publishBurst: 1000,
              },
            }),
            sockets: [],
          } as Real,
        });
        fc.modelRun(setup, [...cmds].map((c) => wrap(c)));
      }),
      { numRuns: 300 },
    );
  });
});

/** Runs the invariants after every command. */
function wrap(c: Cmd): Cmd {
  return {
    check: (m) => c.check(m),
    run: (m, r) => {
      c.run(m, r);
      invariants(m, r);
    },
    toString: () => c.toString(),
  };
}
