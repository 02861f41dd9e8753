/**
 * UplinkManager with FakeClock and a scripted uplink (the port's test double; the real one runs in
 * test/node/outbound-e2e.test.ts): backoff bounds, cap and jitter, in-order drain with one in flight,
 * tls denies keep the queue, purge and freeze stop sending at once, each session a fresh HPKE context;
 * then the window: N in flight, PUBACKs in any order, the cursor, a reconnect mid-window.
 */
import assert from "node:assert/strict";
import { FakeClock } from "../lib/fake-clock.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { MemoryQueue } from "../../src/outbound/queue.js";
import { EnvelopeSealer, parseEnvelope } from "../../src/outbound/envelope.js";
import { CONGESTION_CALM_MS, MAX_BACKOFF_MS, MAX_CONGESTION_HOLD_MS, UplinkManager } from "../../src/outbound/uplink-manager.js";
import { deriveKeyPair } from "../../src/crypto/hpke.js";
import type { AuditEvent } from "../../src/audit/types.js";
import { PROFILES } from "../../src/profiles.js";
import type { Random, Uplink, UplinkFailure, UplinkOptions, UplinkSession } from "../../src/ports.js";

class ScriptedUplink implements Uplink {
  attempts: UplinkOptions[] = [];
  published: { topic: string; payload: Uint8Array; resolve: () => void; reject: (e: Error) => void }[] = [];
  closedByCore = 0;
  connect(o: UplinkOptions): UplinkSession {
    this.attempts.push(o);
    return {
      publish: (topic, payload) => new Promise<void>((resolve, reject) => this.published.push({ topic, payload, resolve, reject })),
      close: () => {
        this.closedByCore++;
      },
    };
  }
  get current(): UplinkOptions {
    return this.attempts[this.attempts.length - 1]!;
  }
  accept(): void {
    this.current.onConnect();
  }
  fail(reason: UplinkFailure, detail = "x"): void {
    for (const p of this.published.splice(0)) p.reject(new Error("closed"));
    this.current.onClose(reason, detail);
  }
  async puback(at = 0): Promise<void> {
    this.published.splice(at, 1)[0]?.resolve();
    for (let i = 0; i < 10; i++) await Promise.resolve();
  }
  seqs(): number[] {
    return this.published.map((p) => parseEnvelope(p.payload).seq);
  }
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

function setup(random: Random = seededRandom("mgr"), window: number | null = 1) {
  const clock = new FakeClock();
  const crypto = nobleCrypto(seededRandom("mgr-crypto"));
  const vendor = deriveKeyPair(crypto, new Uint8Array(32).fill(9));
  const uplink = new ScriptedUplink();
  const events: AuditEvent[] = [];
  const queue = new MemoryQueue({ maxBytes: 10_000, overflow: "drop-oldest", ttlSeconds: 3600 }, clock);
  const sealer = new EnvelopeSealer({ crypto, clock, integration: "acme", contractVersion: "1", encryption: "hpke", vendorPublicKey: vendor.publicKey });
  const mgr = new UplinkManager({
    integration: "acme",
    uplink,
    clock,
    timers: clock,
    random,
    queue,
    sealer,
    connection: { host: "vendor.example", port: 8883, clientId: "gw", keepalive: 30, pins: ["pin"] },
    onEvent: (e) => events.push(e),
    ...(window === null ? {} : { window }),
  });
  return { clock, uplink, events, queue, sealer, mgr };
}

const text = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

describe("UplinkManager backoff", () => {
  it("full jitter: each delay is within [0, min(cap, base·2^n)], reaching the 5-minute cap and never above", () => {
    const { mgr } = setup();
    for (let n = 0; n < 40; n++) {
      const ceiling = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** n);
      for (let k = 0; k < 50; k++) {
        const d = mgr.backoffMs(n);
        assert.ok(d >= 0 && d <= ceiling, `attempt ${n}: ${d} > ${ceiling}`);
      }
    }
  });

  it("jitter spreads over the range (not a constant), and the extremes of the random source map to 0 and the ceiling", () => {
    const { mgr } = setup();
    const ds = Array.from({ length: 200 }, () => mgr.backoffMs(20));
    assert.ok(Math.min(...ds) < MAX_BACKOFF_MS * 0.2 && Math.max(...ds) > MAX_BACKOFF_MS * 0.8);
    const zeros = setup({ fill: (b) => b.fill(0) }).mgr;
    const ones = setup({ fill: (b) => b.fill(0xff) }).mgr;
    assert.equal(zeros.backoffMs(50), 0);
    assert.ok(ones.backoffMs(50) <= MAX_BACKOFF_MS && ones.backoffMs(50) > MAX_BACKOFF_MS - 1);
  });

  it("retries after the chosen delay, grows while down, resets after a connect", async () => {
    const { clock, uplink, mgr } = setup();
    mgr.start();
    for (let i = 0; i < 12; i++) {
      uplink.fail("network");
      assert.equal(mgr.state, "waiting");
      assert.ok(mgr.lastDelayMs <= Math.min(MAX_BACKOFF_MS, 1000 * 2 ** i));
      const before = uplink.attempts.length;
      clock.tick(mgr.lastDelayMs);
      assert.equal(uplink.attempts.length, before + 1);
    }
    uplink.accept();
    uplink.fail("closed");
    assert.ok(mgr.lastDelayMs <= 1000, "attempt counter reset by the connect");
    mgr.stop();
    assert.equal(clock.pendingCount, 0, "stop cancels every timer");
  });
});

describe("UplinkManager drain", () => {
  it("sends in order with one in flight, one ECDH per session, and acks only on PUBACK", async () => {
    const { uplink, mgr, queue, sealer } = setup();
    mgr.start();
    for (let i = 0; i < 3; i++) await mgr.enqueue(`acme/t${i}`, text(`m${i}`));
    assert.equal(uplink.published.length, 0, "nothing before the session is up");
    uplink.accept();
    await flush();
    assert.equal(uplink.published.length, 1, "one in flight");
    const first = parseEnvelope(uplink.published[0]!.payload);
    assert.equal(first.seq, 1);
    assert.ok(first.enc, "the first envelope of a session carries enc");
    await uplink.puback();
    assert.equal(queue.count, 2);
    const second = parseEnvelope(uplink.published[0]!.payload);
    assert.equal(second.seq, 2);
    assert.equal(second.enc, undefined, "after a PUBACK the context is known to the vendor");
    await uplink.puback();
    await uplink.puback();
    assert.equal(queue.count, 0);
    assert.equal(mgr.stats().sent, 3);
    assert.equal(sealer.contextsStarted, 1);
  });

  it("a drop mid-flight keeps the message; the next session resends it first, in a new context", async () => {
    const { clock, uplink, mgr, queue, sealer } = setup();
    mgr.start();
    uplink.accept();
    await mgr.enqueue("t", text("a"));
    await mgr.enqueue("t", text("b"));
    await flush();
    uplink.fail("closed");
    await flush();
    assert.equal(queue.count, 2);
    clock.tick(mgr.lastDelayMs);
    uplink.accept();
    await flush();
    const env = parseEnvelope(uplink.published[0]!.payload);
    assert.equal(env.seq, 1);
    assert.ok(env.enc);
    assert.equal(sealer.contextsStarted, 2);
  });

  it("a tls failure is an audited deny (reason tls) and the messages stay queued", async () => {
    const { uplink, mgr, queue, events } = setup();
    mgr.start();
    await mgr.enqueue("t", text("a"));
    uplink.fail("tls", "SPKI pin mismatch");
    const deny = events.find((e) => e.kind === "uplink" && e.decision === "deny");
    assert.equal(deny?.reason, "tls");
    assert.equal(deny?.integration, "acme");
    assert.equal(deny?.detail?.["queued"], 1);
    assert.equal(queue.count, 1);
  });

  it("freeze stops sending at once (nothing more leaves), thaw resumes in order", async () => {
    const { uplink, mgr, queue } = setup();
    mgr.start();
    uplink.accept();
    for (let i = 0; i < 3; i++) await mgr.enqueue("t", text(`${i}`));
    await flush();
    assert.equal(uplink.published.length, 1);
    mgr.freeze("quarantine");
    await uplink.puback(); // the one already in flight completes
    assert.equal(uplink.published.length, 0, "nothing new is sent while frozen");
    assert.equal(queue.count, 2);
    mgr.thaw("released");
    await flush();
    assert.equal(parseEnvelope(uplink.published[0]!.payload).seq, 2);
  });

  it("purge drops everything at once and is audited; a PUBACK for the in-flight one is harmless", async () => {
    const { uplink, mgr, queue, events } = setup();
    mgr.start();
    uplink.accept();
    for (let i = 0; i < 4; i++) await mgr.enqueue("t", text(`${i}`));
    await flush();
    await mgr.purge("consent withdrawn");
    assert.equal(queue.count, 0);
    await uplink.puback();
    assert.equal(uplink.published.length, 0);
    const p = events.find((e) => e.reason === "purge");
    assert.equal(p?.detail?.["count"], 4);
    assert.equal((await mgr.enqueue("t", text("new"))).ok, true, "the queue accepts again after a purge");
  });

  it("overflow drops and refusals are audited with their cause", async () => {
    const { mgr, events, clock } = setup();
    mgr.start();
    for (let i = 0; i < 12; i++) await mgr.enqueue("t", new Uint8Array(999));
    assert.equal(mgr.stats().dropped["overflow"], 2);
    assert.equal(events.filter((e) => e.kind === "queue" && e.reason === "overflow").length, 0, "drops of one window wait for its end");
    clock.tick(1000);
    // The two pushes that each dropped one share one record, with the sum and the range.
    const drops = events.filter((e) => e.kind === "queue" && e.reason === "overflow");
    assert.equal(drops.length, 1);
    assert.deepEqual(drops[0]!.detail, { count: 2, bytes: 2 * 1000, total: 2, fromSeq: 1, toSeq: 2, reports: 2 });
    const big = await mgr.enqueue("t", new Uint8Array(20_000));
    assert.equal(!big.ok && big.reason, "too-large");
    clock.tick(1000);
    const refused = events.filter((e) => e.kind === "queue" && e.reason === "too-large");
    assert.equal(refused.length, 1);
    assert.equal(refused[0]!.detail?.["count"], 1);
    clock.tick(3600 * 1000 + 60_000);
    await flush();
    clock.tick(1000);
    assert.ok(events.some((e) => e.reason === "ttl"), "the periodic sweep drops expired messages");
  });
});

describe("UplinkManager window", () => {
  it("keeps N in flight, sealed in send order in one context; PUBACKs in any order; the cursor retires the contiguous prefix", async () => {
    const { uplink, mgr, queue, sealer } = setup(seededRandom("w"), 3);
    mgr.start();
    for (let i = 0; i < 6; i++) await mgr.enqueue("t", text(`m${i}`));
    uplink.accept();
    await flush();
    assert.deepEqual(uplink.seqs(), [1, 2, 3], "three in flight at once");
    assert.ok(uplink.published.every((p) => parseEnvelope(p.payload).enc), "before any PUBACK every envelope carries enc");
    assert.equal(mgr.stats().inFlight, 3);
    await uplink.puback(2); // seq 3 first
    assert.equal(queue.count, 6, "3 is acknowledged but 1 and 2 are not: nothing retired");
    assert.deepEqual(uplink.seqs(), [1, 2], "an acknowledged message above a gap still holds its place in the window");
    await uplink.puback(0); // seq 1: the cursor passes 1 only
    assert.equal(queue.count, 5);
    assert.deepEqual(uplink.seqs(), [2, 4], "4 leaves once 1 is retired");
    assert.equal(parseEnvelope(uplink.published[1]!.payload).enc, undefined, "after a PUBACK the context is known");
    await uplink.puback(0); // seq 2: the cursor passes 2 and 3 in one step
    assert.equal(queue.count, 3);
    assert.deepEqual(uplink.seqs(), [4, 5, 6]);
    while (uplink.published.length) await uplink.puback(uplink.published.length - 1); // newest first
    assert.equal(queue.count, 0);
    assert.equal(mgr.stats().sent, 6);
    assert.equal(sealer.contextsStarted, 1);
  });

  it("a reconnect mid-window resends every unacknowledged message in order, in a new context, and not the acknowledged ones", async () => {
    const { clock, uplink, mgr, queue, sealer } = setup(seededRandom("w2"), 4);
    mgr.start();
    uplink.accept();
    for (let i = 0; i < 6; i++) await mgr.enqueue("t", text(`m${i}`));
    await flush();
    assert.deepEqual(uplink.seqs(), [1, 2, 3, 4]);
    await uplink.puback(1); // 2 acknowledged, above the gap at 1
    uplink.fail("closed");
    await flush();
    assert.equal(queue.count, 6, "2 is acknowledged, but stays until 1 is");
    clock.tick(mgr.lastDelayMs);
    uplink.accept();
    await flush();
    assert.deepEqual(uplink.seqs(), [1, 3, 4], "1, 3, 4 again, then the window (4, with 2 held) is full");
    const envs = uplink.published.map((p) => parseEnvelope(p.payload));
    assert.equal(new Set(envs.map((e) => Array.from(e.contextId).join(","))).size, 1);
    assert.equal(sealer.contextsStarted, 2);
    await uplink.puback(0);
    assert.deepEqual(uplink.seqs(), [3, 4, 5, 6], "1 and 2 retired: 5 and 6 leave");
    while (uplink.published.length) await uplink.puback();
    assert.equal(queue.count, 0);
  });

  it("defaults to the node profile's uplinkWindow and refuses a bad window", () => {
    const { mgr } = setup(seededRandom("w3"), null);
    assert.equal(mgr.stats().window, PROFILES.node.limits.uplinkWindow);
    for (const window of [0, 1.5, -1, 70_000]) assert.throws(() => setup(seededRandom("w4"), window), /window/);
  });

  it("an overflow makes the route congested (devices held) until the queue drains to half", async () => {
    const { uplink, mgr, queue } = setup();
    mgr.start();
    uplink.accept();
    assert.equal(mgr.congested, false);
    for (let i = 0; i < 11; i++) await mgr.enqueue("t", new Uint8Array(999));
    assert.equal(mgr.congested, true, "the queue overflowed");
    const high = queue.count;
    while (queue.count > high / 2) {
      assert.equal(mgr.congested, true);
      await uplink.puback();
    }
    assert.equal(mgr.congested, false, "drained to half: the devices are read again");
  });

  it("a vendor that stays connected but never acknowledges holds the devices at most MAX_CONGESTION_HOLD_MS, then calm", async () => {
    const { uplink, mgr, clock } = setup();
    mgr.start();
    uplink.accept();
    for (let i = 0; i < 11; i++) await mgr.enqueue("t", new Uint8Array(999));
    assert.equal(mgr.congested, true);
    clock.tick(MAX_CONGESTION_HOLD_MS);
    assert.equal(mgr.congested, false, "the hold ends though nothing drained");
    await mgr.enqueue("t", new Uint8Array(999));
    assert.equal(mgr.congested, false, "no new hold during the calm: the overflow policy applies");
    clock.tick(CONGESTION_CALM_MS);
    await mgr.enqueue("t", new Uint8Array(999));
    assert.equal(mgr.congested, true);
  });

  it("a disconnected uplink never holds the devices (its queue's policy applies)", async () => {
    const { mgr } = setup();
    mgr.start(); // never connects
    for (let i = 0; i < 11; i++) await mgr.enqueue("t", new Uint8Array(999));
    assert.equal(mgr.congested, false);
  });
});
