/**
 * The uplink window against a real vendor broker over TLS: aedes, whose `authorizePublish` hook
 * holds each PUBACK until the test lets it go (mosquitto cannot delay a PUBACK, so it is not used
 * here; test/node/outbound-e2e.test.ts runs both). The gateway side is the real thing: nodeUplink
 * (mqtt.js), UplinkManager, FlashQueue. Proved: `window` messages are in flight at once and no more;
 * PUBACKs in reverse order; a connection lost mid-window resends every unacknowledged message and
 * loses none; a gateway that dies with a window in flight redelivers at most the window after reboot;
 * and the vendor's reference receiver gives each message once, in order.
 */
import assert from "node:assert/strict";
import { createServer as createTlsServer } from "node:tls";
import type { Socket } from "node:net";
import { Aedes } from "aedes";
import { until } from "../lib/home.js";
import { nodeCrypto } from "../../hosts/node/crypto.js";
import { nodeRandom } from "../../hosts/node/random.js";
import { nodeUplink } from "../../hosts/node/uplink.js";
import { nodeClock, nodeTimers } from "../../hosts/node/clock.js";
import { EnvelopeSealer, parseEnvelope } from "../../src/outbound/envelope.js";
import { FlashQueue } from "../../src/outbound/flash-queue.js";
import { UplinkManager } from "../../src/outbound/uplink-manager.js";
import { FlashRing } from "../../src/flash/ring.js";
import { ramFlash } from "../../src/flash/nor.js";
import type { Flash } from "../../src/ports.js";
import { VendorReceiver } from "../../tools/open-envelope.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import { makeTestCa, type TestCa } from "../lib/test-ca.js";

const crypto = nodeCrypto();
const vendorKey = crypto.p256Generate();
const WINDOW = 8;

/** An aedes vendor over TLS that holds PUBACKs while `hold` is true; records every PUBLISH it gets. */
async function slowVendor(pki: TestCa) {
  const got: { seq: number; topic: string; payload: Uint8Array }[] = [];
  const pending: { seq: number; release: () => void }[] = [];
  const v = {
    got,
    pending,
    hold: true,
    maxPending: 0,
    port: 0,
    /** PUBACKs the pending ones chosen by `pick` (default: all, newest first). */
    release(pick: (seq: number) => boolean = () => true): void {
      for (let i = pending.length - 1; i >= 0; i--) {
        const p = pending[i]!;
        if (!pick(p.seq)) continue;
        pending.splice(i, 1);
        p.release();
      }
    },
    /** Cuts every connection (the PUBACKs still held are never sent). */
    drop(): void {
      pending.length = 0;
      for (const s of sockets) s.destroy();
    },
    stop: async (): Promise<void> => {
      v.drop();
      await new Promise<void>((r) => server.close(() => r()));
      await new Promise<void>((r) => broker.close(() => r()));
    },
  };
  const broker = await Aedes.createBroker({
    authorizePublish: (_client, packet, done) => {
      const payload = new Uint8Array(packet.payload as Buffer);
      const seq = parseEnvelope(payload).seq;
      got.push({ seq, topic: packet.topic, payload });
      if (!v.hold) return done(null);
      pending.push({ seq, release: () => done(null) });
      v.maxPending = Math.max(v.maxPending, pending.length);
    },
  });
  const sockets = new Set<Socket>();
  const server = createTlsServer({ cert: pki.server.cert, key: pki.server.key }, (s) => broker.handle(s));
  server.on("secureConnection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const addr = server.address();
  v.port = typeof addr === "object" && addr ? addr.port : 0;
  return v;
}

const keys = new MemoryKeys();
function boot(flash: Flash, pki: TestCa, port: number) {
  const clock = nodeClock();
  const timers = nodeTimers();
  const ring = FlashRing.mount({ flash, tag: 0x52 });
  const queue = new FlashQueue(ring, { maxBytes: 64 * 1024, overflow: "drop-oldest", ttlSeconds: 3600 }, clock, { crypto, keys, random: nodeRandom(), slot: 1 });
  const sealer = new EnvelopeSealer({ crypto, clock, integration: "acme", contractVersion: "1", encryption: "hpke", vendorPublicKey: vendorKey.publicKey });
  const mgr = new UplinkManager({
    integration: "acme", uplink: nodeUplink({ ca: pki.ca, connectTimeoutMs: 3000 }), clock, timers, random: nodeRandom(), queue, sealer, window: WINDOW,
    connection: { host: "localhost", port, clientId: "portcullis-gw", keepalive: 10 },
    onEvent: () => undefined, backoffBaseMs: 50, backoffCapMs: 200,
  });
  mgr.start();
  return { mgr, queue, shutdown: () => (mgr.stop(), ring.close(), timers.cancelAll()) };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What the vendor's reference receiver makes of everything the vendor got: in order, each once. */
async function vendorView(got: readonly { topic: string; payload: Uint8Array }[]) {
  const r = new VendorReceiver({ privateKey: vendorKey.privateKey, integration: "acme", contractVersion: "1", maxHeld: WINDOW });
  const kinds: string[] = [];
  for (const m of got) kinds.push((await r.open(m.payload, m.topic)).kind);
  const out = [...r.take(), ...r.flush()];
  return { seqs: out.map((m) => m.seq), texts: out.map((m) => Buffer.from(m.value).toString()), duplicates: kinds.filter((k) => k === "duplicate").length, rejected: kinds.filter((k) => k === "rejected").length };
}

const upTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

describe("uplink window with a vendor that delays PUBACKs (aedes over TLS)", function () {
  this.timeout(60_000);
  let pki: TestCa;
  before(async () => {
    pki = await makeTestCa();
  });

  it(`keeps ${WINDOW} in flight at once and no more; PUBACKs in reverse order; each message once, in order`, async () => {
    const v = await slowVendor(pki);
    const gw = boot(ramFlash(32 * 4096), pki, v.port);
    try {
      for (let i = 1; i <= 30; i++) assert.ok((await gw.mgr.enqueue("acme/v1/m", new TextEncoder().encode(`m${i}`))).ok);
      await until("a full window", () => (v.pending.length === WINDOW) || undefined, 10_000);
      await sleep(200);
      assert.equal(v.pending.length, WINDOW, "nothing beyond the window leaves while its PUBACKs are held");
      assert.deepEqual(v.got.map((g) => g.seq), upTo(WINDOW), "sent in seq order");
      assert.equal(gw.mgr.stats().inFlight, WINDOW);
      while (gw.queue.count > 0) {
        v.release(); // newest first
        await sleep(20);
      }
      assert.equal(v.maxPending, WINDOW);
      const view = await vendorView(v.got);
      assert.deepEqual(view.seqs, upTo(30));
      assert.deepEqual(view.texts, upTo(30).map((i) => `m${i}`));
      assert.equal(view.duplicates + view.rejected, 0);
    } finally {
      gw.shutdown();
      await v.stop();
    }
  });

  it("a connection lost mid-window resends every unacknowledged message, in order, and loses none", async () => {
    const v = await slowVendor(pki);
    const gw = boot(ramFlash(32 * 4096), pki, v.port);
    try {
      for (let i = 1; i <= 30; i++) await gw.mgr.enqueue("acme/v1/m", new TextEncoder().encode(`m${i}`));
      await until("a full window", () => (v.pending.length === WINDOW) || undefined, 10_000);
      v.release((s) => s === 2 || s === 5 || s === 7); // acknowledged above the gap at 1
      await sleep(100);
      assert.equal(gw.queue.count, 30, "nothing retired while 1 is unacknowledged");
      assert.equal(gw.queue.acknowledged, 3);
      v.drop();
      v.hold = false;
      await until("the queue to drain after the reconnect", () => (gw.queue.count === 0) || undefined, 20_000);
      assert.ok(gw.mgr.stats().connects >= 2);
      const second = v.got.slice(WINDOW).map((g) => g.seq);
      assert.deepEqual(second.slice(0, 5), [1, 3, 4, 6, 8], "the unacknowledged ones again, in order, and not 2, 5, 7");
      assert.deepEqual(second.slice(5), upTo(30).slice(8), "then the rest");
      const view = await vendorView(v.got);
      assert.deepEqual(view.seqs, upTo(30));
      assert.equal(view.duplicates, 5);
      assert.equal(view.rejected, 0);
    } finally {
      gw.shutdown();
      await v.stop();
    }
  });

  it("a gateway that dies with a window in flight redelivers at most the window after reboot, and loses none", async () => {
    const v = await slowVendor(pki);
    const flash = ramFlash(32 * 4096);
    let gw = boot(flash, pki, v.port);
    try {
      for (let i = 1; i <= 30; i++) await gw.mgr.enqueue("acme/v1/m", new TextEncoder().encode(`m${i}`));
      await until("a full window", () => (v.pending.length === WINDOW) || undefined, 10_000);
      v.release((s) => s !== 1); // all but the oldest: held by the cursor
      await sleep(100);
      v.release(); // and the oldest: the gateway dies before that PUBACK reaches it, 2–8 held by the cursor
      gw.shutdown();
      v.drop();
      v.hold = false;
      gw = boot(flash, pki, v.port);
      await until("the rebooted gateway to drain", () => (gw.queue.count === 0) || undefined, 20_000);
      const view = await vendorView(v.got);
      assert.deepEqual(view.seqs, upTo(30), "none lost, each once, in order");
      assert.ok(view.duplicates <= WINDOW, `${view.duplicates} redelivered, window ${WINDOW}`);
      assert.ok(view.duplicates > 0, "the cut fell between the PUBACKs and the cursor's record");
      assert.equal(view.rejected, 0);
    } finally {
      gw.shutdown();
      await v.stop();
    }
  });
});
