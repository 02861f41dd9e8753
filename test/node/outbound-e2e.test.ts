/**
 * End to end with a real vendor broker over TLS (aedes in-process; mosquitto when installed): the
 * vendor goes away while devices publish, the gateway restarts during the outage, the vendor comes
 * back, and every allowed message is released once, in order, opening with the vendor key (a resent copy is
 * discarded by seq, as SPEC tells vendors).
 * Overflow follows the contract's policy and is audited; pin mismatches and expired certificates
 * are refused and audited while the queue keeps the messages.
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeCrypto } from "../../hosts/node/crypto.js";
import { nodeRandom } from "../../hosts/node/random.js";
import { nodeUplink } from "../../hosts/node/uplink.js";
import { nodeClock, nodeTimers } from "../../hosts/node/clock.js";
import { EnvelopeSealer } from "../../src/outbound/envelope.js";
import { FlashQueue } from "../../src/outbound/flash-queue.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import type { QueueTerms } from "../../src/outbound/queue.js";
import { UplinkManager } from "../../src/outbound/uplink-manager.js";
import { FlashRing } from "../../src/flash/ring.js";
import { ramFlash } from "../../src/flash/nor.js";
import type { Flash } from "../../src/ports.js";
import type { AuditEvent } from "../../src/audit/types.js";
import { VendorReceiver } from "../../tools/open-envelope.js";
import { freePort, hasMosquitto, makeTestCa, startAedesTls, startMosquittoTls, type BrokerMessage, type TestBroker, type TestCa, type TestServerCert } from "../lib/test-ca.js";
import { skipUnlessAvailable } from "../lib/skip.js";

const crypto = nodeCrypto();
/** The board's key store: it outlives every boot of this file (the queue's storage key and boot counter). */
const keys = new MemoryKeys();
const vendor = crypto.p256Generate();
const enc = new TextEncoder();
const dec = new TextDecoder();
/** The uplink window of these boots: what one failure may resend. */
const window = 4;

/** One gateway boot: a manager over a FlashQueue mounted from `flash`. */
function boot(flash: Flash, pki: TestCa, port: number, events: AuditEvent[], opts: { terms?: Partial<QueueTerms>; pins?: string[] } = {}) {
  const clock = nodeClock();
  const timers = nodeTimers();
  const ring = FlashRing.mount({ flash, tag: 0x51 });
  const queue = new FlashQueue(ring, { maxBytes: 64 * 1024, overflow: "drop-oldest", ttlSeconds: 3600, ...opts.terms }, clock, { crypto, keys, random: nodeRandom(), slot: 0 });
  const sealer = new EnvelopeSealer({ crypto, clock, integration: "acme", contractVersion: "1", encryption: "hpke", vendorPublicKey: vendor.publicKey });
  const mgr = new UplinkManager({
    integration: "acme",
    uplink: nodeUplink({ ca: pki.ca, connectTimeoutMs: 3000 }),
    clock,
    timers,
    random: nodeRandom(),
    queue,
    sealer,
    connection: { host: "localhost", port, clientId: "portcullis-gw", keepalive: 10, ...(opts.pins ? { pins: opts.pins } : {}) },
    onEvent: (e) => events.push(e),
    backoffBaseMs: 50,
    backoffCapMs: 400,
  });
  mgr.start();
  return {
    mgr,
    queue,
    shutdown: () => {
      mgr.stop();
      ring.close();
      timers.cancelAll();
    },
  };
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function openAll(received: BrokerMessage[]) {
  const r = new VendorReceiver({ privateKey: vendor.privateKey, integration: "acme", contractVersion: "1" });
  const out = [];
  for (const m of received) out.push(await r.open(new Uint8Array(m.payload), m.topic));
  return { out, receiver: r };
}

let pki: TestCa;
before(async () => {
  pki = await makeTestCa();
});

for (const kind of ["aedes", "mosquitto"] as const) {
  describe(`outbound end to end with ${kind} as the vendor`, function () {
    this.timeout(60_000);
    // Each test gets its own mosquitto state directory (sessions persist across the vendor's restarts).
    let stateDir = "";
    beforeEach(() => {
      stateDir = mkdtempSync(join(tmpdir(), "portcullis-e2e-"));
    });
    const start = (port: number, received: BrokerMessage[], cert: TestServerCert = pki.server): Promise<TestBroker> =>
      kind === "aedes" ? startAedesTls(cert, port, false, received) : startMosquittoTls(pki.ca, cert, port, received, cert === pki.server, stateDir);
    before(function () {
      if (kind === "mosquitto") skipUnlessAvailable(this, "mosquitto", hasMosquitto() ? undefined : "mosquitto not installed", "apt-get install -y mosquitto");
    });

    it("rides out an outage and a gateway restart: every message released once, in order, opening with the vendor key", async () => {
      const port = await freePort();
      const received: BrokerMessage[] = [];
      const flash = ramFlash(32 * 4096);
      const events: AuditEvent[] = [];
      let broker = await start(port, received);
      let gw = boot(flash, pki, port, events);
      const send = async (from: number, to: number): Promise<void> => {
        for (let i = from; i <= to; i++) assert.ok((await gw.mgr.enqueue(`acme/v1/m`, enc.encode(`{"n":${i}}`))).ok);
      };
      await send(1, 5);
      await until(() => received.length >= 5, 10_000, "the first 5");
      await broker.stop();
      await send(6, 15);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(gw.queue.count, 10, "queued while the vendor is down");
      gw.shutdown(); // the gateway restarts during the outage
      gw = boot(flash, pki, port, events);
      assert.equal(gw.queue.count, 10, "the queue survived the restart");
      await send(16, 20);
      broker = await start(port, received);
      await until(() => received.length >= 20, 20_000, "all 20");
      await new Promise((r) => setTimeout(r, 200));
      gw.shutdown();
      await broker.stop();
      const { out } = await openAll(received);
      const messages = out.filter((o) => o.kind === "message");
      // QoS 1 is at least once (SPEC "Receiving"): the vendor stopping and the gateway restarting may each
      // resend what had no PUBACK yet, at most a window per failure; the receiver discards those by seq.
      assert.deepEqual(out.filter((o) => o.kind !== "message" && o.kind !== "duplicate"), [], "no rejects");
      const dups = out.filter((o) => o.kind === "duplicate").map((o) => o.kind === "duplicate" && o.seq);
      assert.ok(dups.length <= 2 * window, `duplicates ${dups.join(",")} exceed a window per failure`);
      assert.ok(dups.every((s) => typeof s === "number" && s <= 5), `only a seq sent before the outage is resent: ${dups.join(",")}`);
      assert.deepEqual(messages.map((m) => m.kind === "message" && m.seq), Array.from({ length: 20 }, (_, i) => i + 1));
      assert.deepEqual(messages.map((m) => m.kind === "message" && dec.decode(m.payload)), Array.from({ length: 20 }, (_, i) => `{"n":${i + 1}}`));
      assert.ok(events.some((e) => e.kind === "uplink" && e.reason === "connected"));
      assert.ok(received.every((m) => m.payload[0] === 0x01 && (m.payload[1]! & 0x02) === 0), "only HPKE envelopes leave");
    });

    it("overflow while down follows drop-oldest, is audited, and shows as a gap to the vendor", async () => {
      const port = await freePort();
      const received: BrokerMessage[] = [];
      const events: AuditEvent[] = [];
      // The vendor has been up once (its subscriber's session exists) and is down when devices publish.
      await (await start(port, received)).stop();
      // Each message is 30 bytes (9 of topic, 21 of payload): 5 fit in 150.
      const gw = boot(ramFlash(32 * 4096), pki, port, events, { terms: { maxBytes: 5 * 30 } });
      for (let i = 1; i <= 8; i++) await gw.mgr.enqueue("acme/v1/m", enc.encode(`{"n":${String(i).padStart(15, "0")}}`));
      const broker = await start(port, received);
      await until(() => received.length >= 5, 20_000, "the 5 kept");
      await new Promise((r) => setTimeout(r, 200));
      gw.shutdown();
      await broker.stop();
      const drops = events.filter((e) => e.kind === "queue" && e.reason === "overflow");
      assert.equal(drops.reduce((n, e) => n + Number(e.detail?.["count"] ?? 0), 0), 3);
      const { out } = await openAll(received);
      assert.deepEqual(out.map((o) => o.kind === "message" && o.seq), [4, 5, 6, 7, 8]);
    });

    it("a pin mismatch and an expired certificate are refused and audited (reason tls); the queue keeps the message", async () => {
      for (const [cert, pins] of [[pki.server, [pki.foreign.pin]], [pki.expired, undefined]] as const) {
        const port = await freePort();
        const received: BrokerMessage[] = [];
        const events: AuditEvent[] = [];
        const broker = await start(port, received, cert);
        const gw = boot(ramFlash(32 * 4096), pki, port, events, pins ? { pins: [...pins] } : {});
        await gw.mgr.enqueue("acme/v1/m", enc.encode("secret"));
        await until(() => events.some((e) => e.kind === "uplink" && e.decision === "deny"), 10_000, "a tls deny");
        gw.shutdown();
        await broker.stop();
        const deny = events.find((e) => e.kind === "uplink" && e.decision === "deny");
        assert.equal(deny?.reason, "tls");
        assert.equal(gw.queue.count, 1);
        assert.equal(received.length, 0);
      }
    });
  });
}
