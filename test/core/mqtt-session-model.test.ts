/** Model-based test (fc.commands) of broker sessions: any command sequence keeps the broker's invariants. */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Packet } from "../../src/mqtt/codec.js";
import { CONNECT_TIMEOUT_MS } from "../../src/mqtt/broker.js";
import type { FakeSocket } from "../fixtures/mqtt/fake-socket.js";
import { harness } from "../fixtures/mqtt/harness.js";
import { ascii } from "../fixtures/mqtt/packets.js";

const MAX_CONNECTIONS = 3;
const MAX_PENDING = 2;
const MAX_INFLIGHT = 2;
const IDS = ["dev1", "dev2", "dev3", "dev4"] as const;
const FILTERS = ["#", "a/+", "a/b", "+/b", "cmd/#"] as const;
const TOPICS = ["a/b", "a/c", "cmd/x", "$SYS/a"] as const;

interface Model {
  /** Connected client id → its socket index. */
  connected: Map<string, number>;
  /** Sockets without CONNECT yet: index → opened at (monotonic ms). */
  pending: Map<number, number>;
}

interface Real {
  h: ReturnType<typeof harness>;
  sockets: FakeSocket[];
}

type Cmd = fc.Command<Model, Real>;

function lastPacket(s: FakeSocket): Packet | undefined {
  return s.received.at(-1);
}

class Connect implements Cmd {
  readonly id: string;
  readonly good: boolean;
  constructor(id: string, good: boolean) {
    this.id = id;
    this.good = good;
  }
  check = () => true;
  run(m: Model, r: Real): void {
    const before = r.h.published.length;
    const s = r.h.connect(this.id, this.good ? { will: { topic: `${this.id}/lwt`, payload: ascii("x"), qos: 0, retain: false } } : { pw: "bad" });
    r.sockets.push(s);
    if (m.pending.size >= MAX_PENDING) {
      // Every socket starts pending; at the pending limit it is closed before CONNECT is read.
      assert.deepEqual([s.received, s.closed], [[], true]);
      return;
    }
    const old = m.connected.get(this.id);
    const expected = !this.good ? 5 : old !== undefined || m.connected.size < MAX_CONNECTIONS ? 0 : 3;
    assert.deepEqual(s.received[0], { cmd: "connack", sessionPresent: false, returnCode: expected });
    if (expected === 0) {
      if (old !== undefined) {
        assert.equal(r.sockets[old]!.closed, true, "taken-over socket closed");
        assert.equal(r.h.published.length, before + 1, "taken-over session's will published");
      }
      m.connected.set(this.id, r.sockets.length - 1);
    } else {
      assert.equal(s.closed, true);
    }
  }
  toString = () => `connect(${this.id}, ${this.good})`;
}

class Open implements Cmd {
  check = () => true;
  run(m: Model, r: Real): void {
    const s = r.h.open();
    r.sockets.push(s);
    if (m.pending.size >= MAX_PENDING) assert.equal(s.closed, true);
    else m.pending.set(r.sockets.length - 1, r.h.clock.monotonic());
  }
  toString = () => "open()";
}

class Tick implements Cmd {
  readonly ms: number;
  constructor(ms: number) {
    this.ms = ms;
  }
  check = () => true;
  run(m: Model, r: Real): void {
    r.h.clock.tick(this.ms);
    for (const [i, at] of m.pending) {
      const expired = r.h.clock.monotonic() - at >= CONNECT_TIMEOUT_MS;
      assert.equal(r.sockets[i]!.closed, expired);
      if (expired) m.pending.delete(i);
    }
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
    return r.sockets[m.connected.get(this.id)!]!;
  }
  abstract run(m: Model, r: Real): void;
}

class Publish extends DeviceCmd {
  readonly qos: 0 | 1;
  readonly packetId: number;
  constructor(id: string, qos: 0 | 1, packetId: number) {
    super(id);
    this.qos = qos;
    this.packetId = packetId;
  }
  override run(m: Model, r: Real): void {
    const s = this.socket(m, r);
    const before = r.h.published.length;
    s.send(this.qos === 0
      ? { cmd: "publish", topic: `${this.id}/t`, payload: ascii("1"), qos: 0, retain: false, dup: false }
      : { cmd: "publish", topic: `${this.id}/t`, payload: ascii("1"), qos: 1, retain: false, dup: false, packetId: this.packetId });
    assert.equal(r.h.published.length, before + 1);
    if (this.qos === 1) assert.deepEqual(lastPacket(s), { cmd: "puback", packetId: this.packetId });
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
    assert.deepEqual(lastPacket(s), { cmd: "suback", packetId: 9, granted: [Math.min(this.qos, 1)] });
  }
  override toString = () => `subscribe(${this.id}, ${this.filter}, ${this.qos})`;
}

class Ack extends DeviceCmd {
  override run(m: Model, r: Real): void {
    const s = this.socket(m, r);
    for (const id of unacked(s)) s.send({ cmd: "puback", packetId: id });
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
    assert.equal(s.closed || this.how === "drop", true);
    assert.equal(r.h.published.length, before + (this.how === "clean" ? 0 : 1), "will only on unclean close");
    m.connected.delete(this.id);
  }
  override toString = () => `leave(${this.id}, ${this.how})`;
}

class Deliver implements Cmd {
  readonly topic: string;
  readonly qos: 0 | 1;
  constructor(topic: string, qos: 0 | 1) {
    this.topic = topic;
    this.qos = qos;
  }
  check = () => true;
  run(m: Model, r: Real): void {
    const n = r.h.broker.deliver(this.topic, ascii("d"), this.qos);
    assert.ok(n >= 0 && n <= m.connected.size);
  }
  toString = () => `deliver(${this.topic}, ${this.qos})`;
}

/** QoS 1 packet ids the device received and has not acknowledged. */
function unacked(s: FakeSocket): number[] {
  const open = new Set<number>();
  for (const p of s.received) if (p.cmd === "publish" && p.qos === 1) open.add(p.packetId!);
  for (const id of s.acked) open.delete(id);
  for (const id of open) s.acked.add(id);
  return [...open];
}

function invariants(m: Model, r: Real): void {
  const clients = r.h.broker.clients();
  assert.deepEqual(clients.map((c) => c.clientId).sort(), [...m.connected.keys()].sort());
  for (const c of clients) assert.equal(c.remote, r.sockets[m.connected.get(c.clientId)!]!.remote);
  const live = new Set([...m.connected.values(), ...m.pending.keys()]);
  r.sockets.forEach((s, i) => {
    assert.equal(s.writeAfterClose, false, "no write after close");
    assert.equal(s.closed, !live.has(i), `socket ${i} open iff live in the model`);
    let inflight = 0;
    for (const p of s.received) if (p.cmd === "publish" && p.qos === 1 && !s.acked.has(p.packetId!)) inflight++;
    assert.ok(inflight <= MAX_INFLIGHT, "in-flight limit");
  });
  assert.ok(r.h.clock.pendingCount <= live.size, "at most one timer per live session");
}

describe("mqtt session: model-based", () => {
  it("keeps its invariants under any sequence of connects, publishes, subscriptions, deliveries and closes", () => {
    const id = fc.constantFrom(...IDS);
    const commands = [
      fc.tuple(id, fc.boolean()).map(([i, g]) => new Connect(i, g)),
      fc.constant(new Open()),
      fc.integer({ min: 1, max: 2 * CONNECT_TIMEOUT_MS }).map((ms) => new Tick(ms)),
      fc.tuple(id, fc.constantFrom<0 | 1>(0, 1), fc.integer({ min: 1, max: 0xffff })).map(([i, q, p]) => new Publish(i, q, p)),
      fc.tuple(id, fc.constantFrom(...FILTERS), fc.constantFrom<0 | 1 | 2>(0, 1, 2)).map(([i, f, q]) => new Subscribe(i, f, q)),
      id.map((i) => new Ack(i)),
      fc.tuple(id, fc.constantFrom<"clean" | "drop" | "garbage">("clean", "drop", "garbage")).map(([i, how]) => new Leave(i, how)),
      fc.tuple(fc.constantFrom(...TOPICS), fc.constantFrom<0 | 1>(0, 1)).map(([t, q]) => new Deliver(t, q)),
    ];
    fc.assert(
      fc.property(fc.commands(commands, { maxCommands: 60 }), (cmds) => {
        const setup = () => ({
          model: { connected: new Map(), pending: new Map() } as Model,
          real: {
            h: harness({ limits: { maxConnections: MAX_CONNECTIONS, maxPendingConnections: MAX_PENDING, maxInflight: MAX_INFLIGHT } }),
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
