/**
 * The Node uplink (hosts/node/uplink.ts) against real TLS brokers: aedes over node:tls, and mosquitto
 * when installed. Verification is always on; pins, wrong CAs and expired certificates fail as "tls".
 */
import assert from "node:assert/strict";
import { nodeUplink, spkiPin } from "../../hosts/node/uplink.js";
import type { UplinkFailure, UplinkOptions, UplinkSession } from "../../src/ports.js";
import { freePort, hasMosquitto, makeTestCa, startAedesTls, startMosquittoTls, type TestBroker, type TestCa } from "../lib/test-ca.js";
import { X509Certificate, createHash } from "node:crypto";
import { skipUnlessAvailable } from "../lib/skip.js";

interface Outcome {
  connected: boolean;
  closed?: { reason: UplinkFailure; detail: string };
}

/** Connects and waits until onConnect or onClose. */
function attempt(uplink: ReturnType<typeof nodeUplink>, port: number, extra: Partial<UplinkOptions> = {}): Promise<{ session: UplinkSession; outcome: Outcome; closed: Promise<Outcome> }> {
  const outcome: Outcome = { connected: false };
  let onClosed: (o: Outcome) => void = () => undefined;
  const closed = new Promise<Outcome>((r) => (onClosed = r));
  return new Promise((resolve) => {
    const session = uplink.connect({
      host: "localhost",
      port,
      clientId: `gw-${Math.random().toString(16).slice(2)}`,
      keepalive: 30,
      ...extra,
      onConnect: () => {
        outcome.connected = true;
        resolve({ session, outcome, closed });
      },
      onClose: (reason, detail) => {
        outcome.closed = { reason, detail };
        onClosed(outcome);
        resolve({ session, outcome, closed });
      },
    });
  });
}

let pki: TestCa;
before(async () => {
  pki = await makeTestCa();
});

describe("spkiPin", () => {
  it("is base64 SHA-256 of the certificate's SubjectPublicKeyInfo DER (node's cert.pubkey agrees for EC)", () => {
    const x = new X509Certificate(pki.server.cert);
    const spki = x.publicKey.export({ type: "spki", format: "der" });
    assert.equal(spkiPin(x.raw), createHash("sha256").update(spki).digest("base64"));
    assert.equal(Buffer.from(pki.server.pin, "base64").length, 32);
    assert.notEqual(pki.server.pin, pki.expired.pin);
  });
});

const kinds: ("aedes" | "mosquitto")[] = ["aedes", "mosquitto"];
for (const kind of kinds) {
  describe(`nodeUplink against ${kind} over TLS`, function () {
    this.timeout(20_000);
    const start = async (cert = pki.server): Promise<TestBroker> =>
      kind === "aedes" ? startAedesTls(cert) : startMosquittoTls(pki.ca, cert, await freePort(), [], cert !== pki.expired);
    before(function () {
      if (kind === "mosquitto") skipUnlessAvailable(this, "mosquitto", hasMosquitto() ? undefined : "mosquitto not installed", "apt-get install -y mosquitto");
    });

    it("connects, publishes QoS 1 (resolves on PUBACK) and the message arrives", async () => {
      const b = await start();
      try {
        const { session, outcome } = await attempt(nodeUplink({ ca: pki.ca }), b.port);
        assert.ok(outcome.connected, JSON.stringify(outcome.closed));
        await session.publish("vendor/t", new Uint8Array([1, 2, 3]), 1);
        const t0 = Date.now();
        while (b.received.length === 0 && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
        assert.deepEqual(b.received.map((m) => [m.topic, [...m.payload]]), [["vendor/t", [1, 2, 3]]]);
        session.close();
        session.close();
        await assert.rejects(session.publish("vendor/t", new Uint8Array(1), 1));
      } finally {
        await b.stop();
      }
    });

    it("the correct SPKI pin is accepted", async () => {
      const b = await start();
      try {
        const { session, outcome } = await attempt(nodeUplink({ ca: pki.ca }), b.port, { pins: ["AAAA", pki.server.pin] });
        assert.ok(outcome.connected, JSON.stringify(outcome.closed));
        session.close();
      } finally {
        await b.stop();
      }
    });

    it("a pin mismatch is refused as tls", async () => {
      const b = await start();
      try {
        const { outcome } = await attempt(nodeUplink({ ca: pki.ca }), b.port, { pins: [pki.foreign.pin] });
        assert.equal(outcome.connected, false);
        assert.equal(outcome.closed?.reason, "tls", outcome.closed?.detail);
        assert.match(outcome.closed?.detail ?? "", /pin/);
      } finally {
        await b.stop();
      }
    });

    it("a server chain from another CA is refused as tls (and so are the system roots)", async () => {
      const b = await start();
      try {
        const wrongCa = await attempt(nodeUplink({ ca: pki.foreignCa }), b.port);
        assert.equal(wrongCa.outcome.closed?.reason, "tls", wrongCa.outcome.closed?.detail);
        const systemRoots = await attempt(nodeUplink(), b.port);
        assert.equal(systemRoots.outcome.closed?.reason, "tls", systemRoots.outcome.closed?.detail);
      } finally {
        await b.stop();
      }
    });

    it("an expired server certificate is refused as tls", async () => {
      const b = await start(pki.expired);
      try {
        const { outcome } = await attempt(nodeUplink({ ca: pki.ca }), b.port);
        assert.equal(outcome.closed?.reason, "tls");
        assert.match(outcome.closed?.detail ?? "", /expired/i);
      } finally {
        await b.stop();
      }
    });

    it("a broker going away closes the session once with 'closed' and rejects what is in flight", async () => {
      const b = await start();
      const { session, outcome, closed } = await attempt(nodeUplink({ ca: pki.ca }), b.port);
      assert.ok(outcome.connected);
      await b.stop();
      const end = await closed;
      assert.ok(end.closed && ["closed", "network"].includes(end.closed.reason), JSON.stringify(end.closed));
      await assert.rejects(session.publish("t", new Uint8Array(1), 1));
    });
  });
}

describe("nodeUplink failure mapping", function () {
  this.timeout(20_000);
  it("nothing listening → network", async () => {
    const { outcome } = await attempt(nodeUplink({ ca: pki.ca }), await freePort());
    assert.equal(outcome.closed?.reason, "network", outcome.closed?.detail);
  });

  it("CONNACK not authorized → refused", async () => {
    const b = await startAedesTls(pki.server, 0, true);
    try {
      const { outcome } = await attempt(nodeUplink({ ca: pki.ca }), b.port);
      assert.equal(outcome.closed?.reason, "refused", outcome.closed?.detail);
    } finally {
      await b.stop();
    }
  });

  it("rejects bad options at once", () => {
    assert.throws(() => nodeUplink().connect({ host: "", port: 1, clientId: "x", keepalive: 1, onConnect() {}, onClose() {} }));
  });
});
