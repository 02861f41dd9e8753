/**
 * The whole gateway on in-memory ports: the same wiring as the boards, run on Node and inside XS. A
 * device speaks MQTT bytes to the broker; the vendor side is an Uplink test double that records what
 * would leave (the real uplinks are tested against aedes and mosquitto in test/node).
 */
import assert from "node:assert/strict";
import type { Board, Console, Uplink, UplinkOptions } from "../../src/ports.js";
import { ramFlash } from "../../src/flash/nor.js";
import { startGateway, type Gateway } from "../../src/gateway.js";
import { FLASH_BYTES_NEEDED } from "../../src/gateway/outbound.js";
import { makeDeviceSecret, parseGatewayConfig } from "../../src/config.js";
import { encode } from "../../src/mqtt/codec.js";
import { parseEnvelope, envelopeAad, envelopeInfo } from "../../src/outbound/envelope.js";
import { setupBaseR } from "../../src/crypto/hpke.js";
import { fromUtf8, toBase64, utf8 } from "../../src/util/bytes.js";
import { FakeClock } from "../lib/fake-clock.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { FakeSocket } from "../fixtures/mqtt/fake-socket.js";

interface Sent {
  topic: string;
  payload: Uint8Array;
}

/** An Uplink double: connects at once unless the vendor is down, records publishes, acknowledges them. */
class VendorDouble implements Uplink {
  down = false;
  readonly sent: Sent[] = [];
  readonly #live = new Set<{ close(reason: "network"): void }>();

  connect(o: UplinkOptions) {
    let open = !this.down;
    const live = { close: (reason: "network") => { if (open) { open = false; o.onClose(reason, "vendor went down"); } } };
    Promise.resolve().then(() => (open ? (this.#live.add(live), o.onConnect()) : o.onClose("network", "vendor down")));
    return {
      publish: (topic: string, payload: Uint8Array) => {
        if (!open) return Promise.reject(new Error("closed"));
        this.sent.push({ topic, payload: payload.slice() });
        return Promise.resolve();
      },
      close: () => {
        open = false;
        this.#live.delete(live);
      },
    };
  }

  /** The vendor goes down: every live session drops. */
  outage(): void {
    this.down = true;
    for (const l of this.#live) l.close("network");
    this.#live.clear();
  }
}

const contract = (publicKey: string) =>
  JSON.stringify({
    format: 1, id: "thermo-cloud", version: "1.0.0", vendor: "ThermoCloud", contact: "privacy@thermocloud.example",
    purpose: "Shows the hall temperature in the vendor's app.", effective: "2026-01-01",
    destinations: [{ id: "tc", protocol: "mqtts", host: "vendor.example", port: 8883, topic: "tc/{device-pseudonym}/state", encryption: "hpke", publicKey, keyId: "tc-test" }],
    flows: [{ id: "state", destination: "tc", devices: ["thermostat"], topics: ["home/thermostat/telemetry"],
      fields: [{ path: "/temperature_c", class: "environment" }, { path: "/hvac_mode", class: "usage" }], rate: { perMinute: 600, minIntervalMs: 0 } }],
    terms: { retentionDays: 30, consent: { environment: false, usage: true }, sla: { uptimePercent: 99, maxLatencyMs: 1000 },
      exit: { exportFormat: "json", deletionDays: 30 }, queue: { maxBytes: 8192, overflow: "drop-oldest", ttlSeconds: 3600 } },
  });

async function settle(clock: FakeClock, ms = 50): Promise<void> {
  for (let i = 0; i < 20; i++) {
    clock.tick(Math.ceil(ms / 20));
    await Promise.resolve();
    await new Promise<void>((r) => Promise.resolve().then(() => r()));
  }
}

describe("the gateway on in-memory ports", () => {
  const random = seededRandom("gateway-test");
  const crypto = nobleCrypto(random);
  const vendor = crypto.p256Generate();
  let clock: FakeClock;
  let g: Gateway;
  let sent: Sent[];
  let vendorSide: VendorDouble;
  let out: string[];
  let verificationKey: Uint8Array | undefined;
  let token: string | undefined;
  /** The audit options of gateway.json for the next boot (a test may shrink the partition first). */
  let auditConfig: Record<string, unknown> = { groupCommitMs: 0 };
  let board: Board;

  async function boot(audit: Record<string, unknown>): Promise<void> {
    await g?.stop();
    auditConfig = audit;
    out = [];
    const konsole: Console = { start: () => undefined, write: (t) => void out.push(t) };
    vendorSide = new VendorDouble();
    sent = vendorSide.sent;
    board = {
      clock, timers: clock, random, crypto, flash: ramFlash(FLASH_BYTES_NEEDED), keys: new MemoryKeys(), console: konsole,
      network: { listen: () => { throw new Error("not used: the test hands sockets to the broker"); } },
      uplink: vendorSide,
    };
    const secret = makeDeviceSecret(crypto, new Uint8Array(16), "device-password");
    const parsed = parseGatewayConfig(JSON.stringify({ name: "test home", devices: [{ id: "thermostat", secret }], audit: auditConfig }), [{ source: "tc.json", text: contract(toBase64(vendor.publicKey)) }]);
    assert.ok(parsed.ok, JSON.stringify(parsed));
    g = await startGateway(board, parsed.config, { onVerificationKey: (k) => (verificationKey = k), onOwnerToken: (t) => (token = t) });
    await settle(clock);
  }

  beforeEach(async () => {
    clock = new FakeClock();
    await boot({ groupCommitMs: 0 });
  });

  afterEach(async () => {
    await g?.stop();
  });

  function device(password = "device-password"): FakeSocket {
    const s = new FakeSocket();
    s.handler = g.broker.accept(s);
    s.handler.onData(encode({ cmd: "connect", cleanSession: true, keepalive: 60, clientId: "thermostat", username: "thermostat", password: utf8(password) }));
    return s;
  }
  function publish(s: FakeSocket, body: unknown, topic = "home/thermostat/telemetry"): void {
    s.handler!.onData(encode({ cmd: "publish", topic, payload: utf8(JSON.stringify(body)), qos: 0, retain: false, dup: false }));
  }
  function open(e: Sent): Record<string, unknown> {
    const env = parseEnvelope(e.payload);
    assert.ok(env.enc, "the first envelope of a context carries enc");
    const ctx = setupBaseR(crypto, vendor.privateKey, env.enc!, envelopeInfo("thermo-cloud", "1.0.0"));
    const pt = ctx.openAt(env.seq, envelopeAad(env.header, e.topic), env.body);
    assert.ok(pt, "the vendor key opens the envelope");
    return JSON.parse(fromUtf8(pt!));
  }

  it("hands out the first-boot secrets once and records the boot", () => {
    assert.equal(verificationKey?.length, 32);
    assert.match(token ?? "", /^pct_[A-Za-z0-9_-]{43}$/);
    assert.ok(g.audit.log.query({ kind: "boot" }).length === 1);
  });

  it("sends only contracted fields, sealed to the vendor key, and records the minimization", async () => {
    const s = device();
    await settle(clock);
    assert.equal((s.received[0] as { returnCode?: number }).returnCode, 0);
    publish(s, { temperature_c: 20.5, hvac_mode: "heat", occupancy: true, gps: [52.1, 4.3] });
    await settle(clock);
    assert.equal(sent.length, 1);
    assert.match(sent[0]!.topic, /^tc\/[A-Za-z0-9_-]{22}\/state$/);
    assert.deepEqual(open(sent[0]!), { temperature_c: 20.5 }, "usage needs an opt-in, occupancy and gps are not contracted");
    const lines = (await g.admin.handle({ method: "GET", target: "/api/v1/audit?kind=flow-summary", authorization: `Bearer ${token}`, remote: "test" })).body.map((l) => JSON.parse(l));
    assert.ok(lines.some((l) => l.decision === "minimize" && l.rule === "state" && l.fieldsDropped >= 3), JSON.stringify(lines));
  });

  it("a consent opt-in takes effect on the next message, a withdrawal too", async () => {
    const s = device();
    await settle(clock);
    assert.match(await g.shell.execute("consent thermo-cloud usage opt-in"), /opt-in/);
    publish(s, { temperature_c: 21, hvac_mode: "cool" });
    await settle(clock);
    assert.deepEqual(open(sent[0]!), { temperature_c: 21, hvac_mode: "cool" });
    await g.shell.execute("consent thermo-cloud usage withdrawn");
    publish(s, { temperature_c: 22, hvac_mode: "off" });
    // The second message within the flow-commit window leaves when its commit record is durable.
    await settle(clock, 2100);
    await settle(clock);
    assert.equal(sent.length, 2);
    const last = parseEnvelope(sent[1]!.payload);
    assert.ok(last.seq > parseEnvelope(sent[0]!.payload).seq);
    assert.ok(g.audit.log.query({ kind: "consent" }).some((r) => r.reason === "withdrawn"));
  });

  it("forwards a message only once a durable flow commit counts it", async () => {
    await boot({ groupCommitMs: 0, flowCommitMs: 1000 });
    const s = device();
    await settle(clock);
    publish(s, { temperature_c: 20 });
    await settle(clock);
    assert.equal(sent.length, 1, "the first message after a quiet window is committed at once");
    publish(s, { temperature_c: 21 });
    publish(s, { temperature_c: 22 });
    await settle(clock, 500);
    assert.equal(sent.length, 1, "later ones wait for the commit window");
    const commits = () => g.audit.log.query({ kind: "flow-summary" }).filter((r) => r.reason === "commit");
    assert.equal(commits().reduce((n, r) => n + ((r.detail!["thermo-cloud"] as number | undefined) ?? 0), 0), 1);
    await settle(clock, 600);
    await settle(clock);
    assert.equal(sent.length, 3);
    assert.equal(commits().reduce((n, r) => n + ((r.detail!["thermo-cloud"] as number | undefined) ?? 0), 0), 3, "every message that left is counted on flash");
  });

  it("refuses a wrong password with CONNACK 5 and an audit record", async () => {
    const s = device("wrong");
    await settle(clock);
    assert.equal((s.received[0] as { returnCode?: number }).returnCode, 5);
    assert.ok(s.closed);
    // Refusals are unauthenticated noise: counted per source and minute, written at the next flush.
    await g.audit.log.flushSummaries();
    assert.ok(g.audit.log.query({ kind: "auth" }).some((r) => r.decision === "deny" && r.detail?.claimed === "thermostat" && r.detail.count === 1 && r.device === undefined), "a failed login is counted noise and never names the device");
  });

  it("queues while the vendor is down and delivers in order when it returns", async () => {
    vendorSide.outage();
    const s = device();
    await settle(clock);
    for (let i = 0; i < 5; i++) publish(s, { temperature_c: 10 + i });
    await settle(clock);
    assert.equal(sent.length, 0);
    vendorSide.down = false;
    await settle(clock, 6 * 60_000);
    assert.deepEqual(sent.map((e) => parseEnvelope(e.payload).seq), [1, 2, 3, 4, 5]);
  });

  it("quarantine denies every flow at once and freezes the queue", async () => {
    const s = device();
    await settle(clock);
    assert.match(await g.shell.execute("quarantine thermo-cloud breach reported"), /quarantined/);
    publish(s, { temperature_c: 20 });
    await settle(clock);
    assert.equal(sent.length, 0);
    assert.ok(g.audit.log.query({ kind: "flow" }).some((r) => r.decision === "deny" && r.reason === "quarantined"));
  });

  it("fails closed when the log refuses records (full under legal hold), and resumes when it takes them again", async () => {
    await boot({ groupCommitMs: 0, partitionBytes: 8 * 4096 });
    const s = device();
    await settle(clock);
    assert.match(await g.shell.execute("hold incident 7"), /legal hold placed/);
    let i = 0;
    while (!g.audit.failClosed && i < 2000) {
      // Denied messages are individual records: they fill the small partition quickly.
      publish(s, { n: i++ }, "home/thermostat/unclaimed");
      await settle(clock, 60_000);
    }
    assert.ok(g.audit.failClosed, "the log filled under hold");
    assert.ok(out.some((l) => /ALARM: .*outbound flows stopped/.test(l)), out.join(""));
    // A message the log cannot record is not accepted: no PUBACK, the connection closes, and the
    // device keeps it to send again (nothing acknowledged without a record).
    assert.ok(s.closed, "the refused publish closed its connection");
    const before = sent.length;
    const s2 = device();
    await settle(clock);
    publish(s2, { temperature_c: 19 });
    await settle(clock);
    assert.equal(sent.length, before, "nothing leaves that the log could not record");
    assert.match(await g.shell.execute("unhold"), /lifted/);
    const s3 = device();
    await settle(clock);
    publish(s3, { n: "after" }, "home/thermostat/unclaimed");
    await settle(clock, 60_000);
    assert.ok(!g.audit.failClosed, "the log takes records again once the hold is lifted");
    publish(s3, { temperature_c: 20 });
    await settle(clock, 2100);
    assert.equal(sent.length, before + 1, "flows resume");
  });

  it("`profile` measures the message path by stage on the board's CPU clock, and says so when there is none", async () => {
    assert.match(await g.shell.execute("profile on"), /no CPU clock/);
    let cpu = 0;
    // A CPU clock that moves 3 µs per reading: every stage a message passes gets time and a count.
    Object.assign(clock, { cpuMicros: () => (cpu += 3) });
    try {
      assert.match(await g.shell.execute("profile"), /off/);
      assert.match(await g.shell.execute("profile on"), /on/);
      const s = device();
      await settle(clock);
      assert.match(await g.shell.execute("profile reset"), /reset/);
      for (let i = 0; i < 3; i++) publish(s, { temperature_c: 20 + i, hvac_mode: "heat" });
      publish(s, { temperature_c: 1 }, "home/thermostat/secret"); // no contract covers it: denied
      await settle(clock);
      assert.equal(sent.length, 3);
      const line = await g.shell.execute("profile");
      const m = /^profile: (\d+) messages (\d+) us; (.*)$/.exec(line);
      assert.ok(m, line);
      assert.equal(Number(m[1]), 4, "one policy decision per message");
      const stages = Object.fromEntries(m[3]!.split("; ").map((p) => { const [name, count, total] = p.split(" "); return [name, { count, total: Number(total) }]; }));
      assert.equal(stages.policy!.count, "4");
      assert.equal(stages.queue!.count, "3", "the three allowed ones were queued");
      assert.equal(stages.seal!.count, "3");
      assert.equal(stages.uplink!.count, "3");
      assert.ok(Number(stages.receive!.count) >= 4 && Number(stages.audit!.count) >= 4 && Number(stages.record!.count) >= 1, line);
      for (const name of ["receive", "policy", "audit", "record", "queue", "seal", "uplink"]) assert.ok(stages[name]!.total > 0, `${name}: ${line}`);
      assert.match(await g.shell.execute("profile bogus"), /unknown profile argument "bogus"/);
      assert.match(await g.shell.execute("profile off"), /off/);
    } finally {
      delete (clock as { cpuMicros?: unknown }).cpuMicros;
      await g.shell.execute("profile off");
    }
  });

  it("the console answers status, and an unknown command with the list of commands", async () => {
    assert.match(await g.shell.execute("status"), /audit\s+\d+ records/);
    assert.match(await g.shell.execute("nope"), /^error: unknown command "nope"; commands: .*status/);
  });
});
