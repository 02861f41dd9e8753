/**
 * Board profiles enforced by the gateway (issues #9 and #14): gateway.json may lower a limit, never
 * raise it; the 9th device on the esp32 profile gets CONNACK 3 and a record; a contract rejected at
 * load is `blocked: <reason>` with an alarm while the others keep forwarding; every limit shows in
 * `status` as used/limit with when it was last reached. In-memory ports, run on Node and inside XS.
 */
import assert from "node:assert/strict";
import type { Board, Console, Uplink, UplinkOptions } from "../../src/ports.js";
import { ramFlash } from "../../src/flash/nor.js";
import { startGateway, type Gateway } from "../../src/gateway.js";
import { FLASH_BYTES_NEEDED } from "../../src/gateway/outbound.js";
import { brokerLimits, makeDeviceSecret, parseGatewayConfig, type ParseOptions } from "../../src/config.js";
import { PROFILES, profileByName, resolveLimits } from "../../src/profiles.js";
import { encode } from "../../src/mqtt/codec.js";
import { ConnackCode } from "../../src/mqtt/packets.js";
import { toBase64, utf8 } from "../../src/util/bytes.js";
import { FakeClock } from "../lib/fake-clock.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { FakeSocket } from "../fixtures/mqtt/fake-socket.js";

class Vendors implements Uplink {
  readonly sent: { host: string; topic: string }[] = [];
  /** Every vendor is unreachable: connections fail, queues fill. */
  down = false;
  connect(o: UplinkOptions) {
    if (this.down) {
      Promise.resolve().then(() => o.onClose("network", "vendor down"));
      return { publish: () => Promise.reject(new Error("closed")), close: () => undefined };
    }
    let open = true;
    Promise.resolve().then(() => open && o.onConnect());
    return {
      publish: (topic: string) => {
        if (!open) return Promise.reject(new Error("closed"));
        this.sent.push({ host: o.host, topic });
        return Promise.resolve();
      },
      close: () => void (open = false),
    };
  }
}

const contract = (id: string, device: string, publicKey: string, topics: string[] = [`home/${device}/telemetry`]) =>
  JSON.stringify({
    format: 1, id, version: "1.0.0", vendor: "V", contact: "privacy@v.example", purpose: "Shows a reading in the vendor's app.", effective: "2026-01-01",
    destinations: [{ id: "d", protocol: "mqtts", host: `${id}.example`, port: 8883, topic: "v/{device-pseudonym}/state", encryption: "hpke", publicKey, keyId: "k" }],
    flows: [{ id: "state", destination: "d", devices: [device], topics, fields: [{ path: "/temperature_c", class: "environment" }], rate: { perMinute: 600, minIntervalMs: 0 } }],
    terms: { retentionDays: 30, consent: { environment: false }, sla: { uptimePercent: 99, maxLatencyMs: 1000 }, exit: { exportFormat: "json", deletionDays: 30 }, queue: { maxBytes: 8192, overflow: "drop-oldest", ttlSeconds: 3600 } },
  });

async function settle(clock: FakeClock, ms = 50): Promise<void> {
  for (let i = 0; i < 20; i++) {
    clock.tick(Math.ceil(ms / 20));
    await Promise.resolve();
    await new Promise<void>((r) => Promise.resolve().then(() => r()));
  }
}

describe("board profiles in the gateway", () => {
  const random = seededRandom("gateway-profiles");
  const crypto = nobleCrypto(random);
  const vendorKey = crypto.p256Generate();
  const pub = toBase64(vendorKey.publicKey);
  const secret = makeDeviceSecret(crypto, new Uint8Array(16), "pw");
  const dev = (id: string) => ({ id, secret });
  const parse = (v: Record<string, unknown>, contracts: { source: string; text: string }[] = [], o: ParseOptions = {}) =>
    parseGatewayConfig(JSON.stringify({ name: "p", audit: { groupCommitMs: 0 }, ...v }), contracts, o);
  const paths = (r: ReturnType<typeof parse>) => (r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`));
  let clock: FakeClock;
  let g: Gateway | undefined;
  let vendors: Vendors;
  let out: string[];

  beforeEach(() => {
    clock = new FakeClock();
  });
  afterEach(async () => {
    await g?.stop();
    g = undefined;
  });

  async function boot(v: Record<string, unknown>, contracts: { source: string; text: string }[] = [], o: ParseOptions = {}, vendorDown = false): Promise<Gateway> {
    out = [];
    const konsole: Console = { start: () => undefined, write: (t) => void out.push(t) };
    vendors = new Vendors();
    vendors.down = vendorDown;
    const board: Board = {
      clock, timers: clock, random, crypto, flash: ramFlash(FLASH_BYTES_NEEDED), keys: new MemoryKeys(), console: konsole,
      network: { listen: () => { throw new Error("not used"); } },
      uplink: vendors,
    };
    const parsed = parse(v, contracts, o);
    assert.ok(parsed.ok, JSON.stringify(parsed));
    g = await startGateway(board, parsed.config, { onVerificationKey: () => undefined, onOwnerToken: () => undefined, stage: (name) => void stages.push(name) });
    await settle(clock);
    return g;
  }
  /** The boot stages startGateway reported (the firmware prints its live heap at each). */
  let stages: string[] = [];
  function connect(gw: Gateway, id: string, remote = "192.0.2.1:50000"): FakeSocket {
    const s = new FakeSocket(remote);
    s.handler = gw.broker.accept(s);
    s.handler.onData(encode({ cmd: "connect", cleanSession: true, keepalive: 0, clientId: id, username: id, password: utf8("pw") }));
    return s;
  }
  const connack = (s: FakeSocket) => {
    const p = s.received.find((x) => x.cmd === "connack");
    return p && p.cmd === "connack" ? p.returnCode : undefined;
  };
  const publish = (s: FakeSocket, topic: string, body: unknown, packetId?: number) =>
    s.handler!.onData(encode({ cmd: "publish", topic, payload: utf8(JSON.stringify(body)), qos: packetId === undefined ? 0 : 1, retain: false, dup: false, ...(packetId === undefined ? {} : { packetId }) }));

  describe("gateway.json: profile and limits", () => {
    it("defaults to the node profile, whose limits are the large home's (50 devices, 8 integrations)", () => {
      const r = parse({ devices: [dev("a")] });
      assert.ok(r.ok);
      assert.equal(r.config.profile, "node");
      assert.deepEqual(r.config.limits, PROFILES.node.limits);
      assert.equal(r.config.limits.sessions, 50);
      assert.equal(r.config.limits.integrations, 8);
      assert.equal(brokerLimits(r.config).maxConnections, 50);
    });

    it("lowers a limit; raising one above the profile is an error with its path", () => {
      const low = parse({ profile: "esp32", devices: [dev("a")], limits: { sessions: 3, pipelineBytes: 4096 } });
      assert.ok(low.ok, JSON.stringify(low));
      assert.equal(low.config.limits.sessions, 3);
      assert.equal(low.config.limits.pipelineBytes, 4096);
      assert.equal(low.config.limits.devices, 8, "the others stay the profile's");
      assert.equal(brokerLimits(low.config).maxConnections, 3);
      assert.deepEqual(paths(parse({ profile: "esp32", devices: [], limits: { sessions: 9 } })), ["/limits/sessions: at most 8 on the esp32 profile"]);
      assert.deepEqual(paths(parse({ devices: [], limits: { integrations: 9, bogus: 1, devices: 0 } })).sort(), [
        "/limits/bogus: unknown limit; one of devices, sessions, pendingConnections, inflightPerDevice, integrations, uplinkWindow, uplinkConnections, adminSessions, pipelineBytes, publishRatePerSec, publishBurst",
        "/limits/devices: must be a positive integer",
        "/limits/integrations: at most 8 on the node profile",
      ]);
      assert.deepEqual(paths(parse({ devices: [], limits: [] })), ["/limits: must be an object"]);
    });

    it("checks broker.* and admin.maxConnections against the profile (and a lowered limit)", () => {
      assert.deepEqual(paths(parse({ profile: "esp32", devices: [], broker: { maxConnections: 9, maxInflight: 5, publishRatePerSec: 10 } })).sort(), [
        "/broker/maxConnections: at most 8 on the esp32 profile",
        "/broker/maxInflight: at most 4 on the esp32 profile",
      ]);
      assert.deepEqual(paths(parse({ profile: "esp32", devices: [], limits: { sessions: 4 }, broker: { maxConnections: 5 } })), ["/broker/maxConnections: at most 4 (limits.sessions)"]);
      const ok = parse({ profile: "esp32", devices: [], broker: { maxConnections: 6 } });
      assert.ok(ok.ok);
      assert.equal(brokerLimits(ok.config).maxConnections, 6);
      assert.deepEqual(paths(parse({ profile: "esp32", devices: [], admin: { maxConnections: 2 } })), ["/admin/maxConnections: at most 1 on the esp32 profile"]);
    });

    it("refuses devices beyond the profile's, naming the first one too many", () => {
      const nine = Array.from({ length: 9 }, (_, i) => dev(`d${i}`));
      assert.deepEqual(paths(parse({ profile: "esp32", devices: nine })), ["/devices/8: at most 8 devices on the esp32 profile"]);
      assert.deepEqual(paths(parse({ devices: nine.slice(0, 3), limits: { devices: 2 } })), ["/devices/2: at most 2 devices (limits.devices)"]);
      assert.ok(parse({ profile: "esp32-psram", devices: nine }).ok);
    });

    it("names the profiles for an unknown one; the host's profile wins and gateway.json must agree with it", () => {
      assert.deepEqual(paths(parse({ profile: "esp8266", devices: [] })), ["/profile: unknown board profile; one of esp32, esp32-psram, node"]);
      const host = parse({ devices: [] }, [], { profile: "esp32" });
      assert.ok(host.ok);
      assert.equal(host.config.profile, "esp32");
      assert.deepEqual(paths(parse({ profile: "node", devices: [] }, [], { profile: "esp32" })), ["/profile: this board runs the esp32 profile, not node"]);
      assert.throws(() => profileByName("esp8266"), /one of esp32, esp32-psram, node/);
      assert.throws(() => resolveLimits(PROFILES.esp32, { sessions: 9 }), /at most 8 on the esp32 profile/);
    });
  });

  it("reports each boot stage once, in boot order, so the firmware can measure the heap of each", async () => {
    stages = [];
    await boot({ profile: "esp32", devices: [dev("d0")] });
    assert.deepEqual(stages, ["audit", "policy", "outbound", "broker", "incidents", "actions", "routes", "admin", "commands", "outbound start"]);
  });

  it("esp32: the 9th device gets CONNACK 3 and an aggregated record while the 8 stay served; status shows 8/8 and the hit", async () => {
    const ids = Array.from({ length: 8 }, (_, i) => `d${i}`);
    const gw = await boot({ profile: "esp32", devices: ids.map(dev) });
    const socks = ids.map((id, i) => connect(gw, id, `192.0.2.${i + 1}:5000`));
    assert.deepEqual(socks.map(connack), ids.map(() => ConnackCode.Accepted));
    clock.tick(1000);
    const hitAt = clock.now();
    const ninth = connect(gw, "d8", "192.0.2.99:5000");
    const again = connect(gw, "d8", "192.0.2.99:5001");
    assert.equal(connack(ninth), ConnackCode.ServerUnavailable, "full, before any credential check");
    assert.equal(connack(again), ConnackCode.ServerUnavailable);
    assert.ok(ninth.closed && again.closed);
    assert.equal(gw.broker.clients().length, 8, "the 8 stay connected");
    const takeover = connect(gw, "d3", "192.0.2.4:5001");
    assert.equal(connack(takeover), ConnackCode.Accepted, "a configured device reconnecting takes its own session over, even when full");
    publish(socks[0]!, "home/d0/telemetry", { temperature_c: 20 }, 1);
    await settle(clock);
    assert.ok(socks[0]!.received.some((p) => p.cmd === "puback"), "a served device is still acknowledged");
    const st = gw.status() as { limits: { sessions: { used: number; limit: number; hits: number; lastHit: number | null } } };
    assert.deepEqual([st.limits.sessions.used, st.limits.sessions.limit, st.limits.sessions.hits], [8, 8, 2]);
    assert.equal(st.limits.sessions.lastHit, hitAt);
    assert.match(await gw.shell.execute("status"), /sessions {6}8\/8 +reached 2×, last 2026-01-01T00:00:01\.\d{3}Z/);
    clock.tick(61_000);
    await gw.audit.log.flushSummaries();
    const refusals = gw.audit.log.query({ kind: "connect" }).filter((r) => r.decision === "deny" && r.reason === "limit");
    assert.equal(refusals.length, 1, "two refusals from one address in a minute are one record");
    assert.equal(refusals[0]!.detail?.count, 2);
    assert.equal(refusals[0]!.detail?.claimed, "d8");
  });

  it("a lowered sessions limit refuses a configured device with CONNACK 3 after its credentials check", async () => {
    const ids = ["a", "b", "c"];
    const gw = await boot({ profile: "esp32", devices: ids.map(dev), limits: { sessions: 2 } });
    const socks = ids.map((id, i) => connect(gw, id, `192.0.2.${i + 1}:5000`));
    assert.deepEqual(socks.map(connack), [ConnackCode.Accepted, ConnackCode.Accepted, ConnackCode.ServerUnavailable]);
    assert.equal(gw.broker.usage().maxSessions, 2);
  });

  it("esp32 serves exactly its 8 devices: the profile's own sessions limit", async () => {
    const ids = Array.from({ length: 8 }, (_, i) => `d${i}`);
    const gw = await boot({ profile: "esp32", devices: ids.map(dev) });
    const socks = ids.map((id, i) => connect(gw, id, `192.0.2.${i + 1}:5000`));
    assert.deepEqual(socks.map(connack), ids.map(() => ConnackCode.Accepted));
    assert.equal(gw.broker.usage().maxSessions, 8);
    assert.equal(gw.broker.usage().maxPending, 4);
  });

  it("esp32: a fifth socket awaiting CONNECT evicts the oldest (pendingConnections 4), counted in status", async () => {
    const gw = await boot({ profile: "esp32", devices: [dev("a")] });
    const idle = Array.from({ length: 5 }, (_, i) => {
      const s = new FakeSocket(`192.0.2.${i + 10}:4000`);
      s.handler = gw.broker.accept(s);
      return s;
    });
    assert.deepEqual(idle.map((s) => s.closed), [true, false, false, false, false]);
    const st = gw.status() as { limits: { pending: { used: number; limit: number; hits: number } } };
    assert.deepEqual([st.limits.pending.used, st.limits.pending.limit, st.limits.pending.hits], [4, 4, 1]);
    assert.equal(connack(connect(gw, "a", "192.0.2.1:1")), ConnackCode.Accepted, "a device still gets in");
  });

  it("a contract over a contract limit is `blocked: <reason>` with an alarm; its device is denied `blocked`, the other integration forwards", async () => {
    const fifty = Array.from({ length: 50 }, (_, i) => `home/camera/t${i}`);
    const gw = await boot({ profile: "esp32", devices: [dev("thermostat"), dev("camera")] }, [
      { source: "contracts/cam-cloud.json", text: contract("cam-cloud", "camera", pub, fifty) },
      { source: "contracts/thermo-cloud.json", text: contract("thermo-cloud", "thermostat", pub) },
    ]);
    const listed = await gw.shell.execute("integrations");
    assert.match(listed, /cam-cloud +blocked: \/flows\/0\/topics: .*8/);
    assert.match(listed, /thermo-cloud +active/);
    assert.match(await gw.shell.execute("status"), /thermo-cloud \(active v1\.0\.0\), cam-cloud \(blocked: \/flows\/0\/topics: more than the limit of 8 topic filters per rule\)/);
    const st = gw.status() as { integrations: { id: string; state: string; blocked?: string }[] };
    assert.deepEqual(st.integrations.map((i) => [i.id, i.state]), [["thermo-cloud", "active"], ["cam-cloud", "blocked"]]);
    assert.match(st.integrations[1]!.blocked!, /^\/flows\/0\/topics: /);
    const alarms = gw.audit.log.query({ kind: "alarm" });
    assert.equal(alarms.length, 1);
    assert.equal(alarms[0]!.integration, "cam-cloud");
    assert.equal(alarms[0]!.reason, "integration-blocked");
    assert.match(out.join(""), /ALARM: integration cam-cloud blocked: \/flows\/0\/topics/);
    const cam = connect(gw, "camera", "192.0.2.7:5000");
    const th = connect(gw, "thermostat", "192.0.2.8:5000");
    publish(cam, "home/camera/t3", { temperature_c: 1 }, 1);
    publish(th, "home/thermostat/telemetry", { temperature_c: 21 }, 1);
    await settle(clock);
    assert.ok(cam.received.some((p) => p.cmd === "puback"), "a denied message is recorded, then acknowledged");
    const flows = gw.audit.log.query({ kind: "flow" });
    const camFlow = flows.find((r) => r.device === "camera");
    assert.deepEqual([camFlow?.decision, camFlow?.integration, camFlow?.reason], ["deny", "cam-cloud", "blocked"]);
    assert.equal(vendors.sent.filter((s) => s.host === "thermo-cloud.example").length, 1, "the other integration still forwards");
    assert.equal(vendors.sent.filter((s) => s.host === "cam-cloud.example").length, 0);
    // Removing the blocked integration lists it no more; its device's messages then have no contract.
    assert.match(await gw.shell.execute("remove cam-cloud"), /removed cam-cloud/);
    publish(cam, "home/camera/t3", { temperature_c: 1 });
    await settle(clock);
    assert.equal(gw.audit.log.query({ kind: "flow" }).filter((r) => r.device === "camera").at(-1)?.reason, "no-contract");
  });

  it("a third integration on esp32 (limit 2) is blocked by the limit, counted in status; the first two forward", async () => {
    const gw = await boot({ profile: "esp32", devices: [dev("a"), dev("b"), dev("c")] }, [
      { source: "a.json", text: contract("a-cloud", "a", pub) },
      { source: "b.json", text: contract("b-cloud", "b", pub) },
      { source: "c.json", text: contract("c-cloud", "c", pub) },
    ]);
    const st = gw.status() as { integrations: { id: string; state: string; blocked?: string }[]; limits: { integrations: { used: number; limit: number; hits: number } } };
    assert.deepEqual(st.integrations.map((i) => `${i.id}:${i.state}`), ["a-cloud:active", "b-cloud:active", "c-cloud:blocked"]);
    assert.equal(st.integrations[2]!.blocked, "more than the limit of 2 integrations");
    assert.deepEqual([st.limits.integrations.used, st.limits.integrations.limit, st.limits.integrations.hits], [2, 2, 1]);
    assert.equal(gw.audit.log.query({ kind: "alarm" })[0]?.detail?.overLimit, true);
    const [a, c] = [connect(gw, "a", "192.0.2.1:1"), connect(gw, "c", "192.0.2.3:1")];
    publish(a, "home/a/telemetry", { temperature_c: 1 });
    publish(c, "home/c/telemetry", { temperature_c: 1 });
    await settle(clock);
    assert.deepEqual(vendors.sent.map((s) => s.host), ["a-cloud.example"]);
    assert.equal(gw.audit.log.query({ kind: "flow" }).find((r) => r.device === "c")?.reason, "blocked");
  });

  it("a queue that overflows while its vendor is down counts as the queue limit reached, with the queue's own record", async () => {
    const gw = await boot({ devices: [dev("thermostat")] }, [{ source: "t.json", text: contract("thermo-cloud", "thermostat", pub) }], {}, true);
    const th = connect(gw, "thermostat", "192.0.2.8:5000");
    for (let i = 0; i < 200; i++) {
      publish(th, "home/thermostat/telemetry", { temperature_c: i, pad: "x".repeat(200) });
      await settle(clock, 5);
    }
    await settle(clock, 1000); // drops are written once per cause and 1 s window (issue 14)
    const st = gw.status() as { limits: { queueBytes: { used: number; limit: number; hits: number; lastHit: number | null } } };
    assert.equal(st.limits.queueBytes.limit, 8192, "the contract's queue.maxBytes");
    assert.ok(st.limits.queueBytes.used > 0 && st.limits.queueBytes.used <= 8192, `used ${st.limits.queueBytes.used}`);
    assert.ok(st.limits.queueBytes.hits >= 1 && st.limits.queueBytes.lastHit !== null);
    assert.ok(gw.audit.log.query({ kind: "queue" }).some((r) => r.decision === "deny" && r.reason === "overflow"));
    assert.match(await gw.shell.execute("status"), /queue +\d+(\.\d)? (B|KiB)\/8\.0 KiB +reached \d+×/);
  });

  it("a contract that is not JSON is listed blocked under its source, with an alarm", async () => {
    const gw = await boot({ devices: [dev("thermostat")] }, [{ source: "contracts/broken.json", text: "{ nope" }, { source: "t.json", text: contract("thermo-cloud", "thermostat", pub) }]);
    const st = gw.status() as { integrations: { id: string; state: string; blocked?: string }[] };
    assert.deepEqual(st.integrations.map((i) => i.state), ["active", "blocked"]);
    assert.match(st.integrations[1]!.blocked!, /not valid JSON/);
    assert.equal(gw.audit.log.query({ kind: "alarm" }).length, 1);
  });

  it("the pipeline bound: at pipelineBytes every device socket is paused, and reading resumes once the messages are recorded", async () => {
    const gw = await boot({ profile: "esp32", devices: [dev("a"), dev("b")], limits: { pipelineBytes: 1024 }, audit: { groupCommitMs: 200 } });
    const a = connect(gw, "a", "192.0.2.1:1");
    const b = connect(gw, "b", "192.0.2.2:1");
    const body = { temperature_c: 1, pad: "x".repeat(400) };
    publish(a, "home/a/telemetry", body, 1);
    assert.equal(a.paused || b.paused, false);
    publish(b, "home/b/telemetry", body, 1);
    publish(a, "home/a/telemetry", body, 2);
    assert.ok(a.paused && b.paused, "both sockets paused once 1024 bytes wait for their record");
    const st = gw.status() as { limits: { pipelineBytes: { used: number; limit: number; hits: number }; devicesPaused: boolean; pipelinePeakBytes: number } };
    assert.equal(st.limits.pipelineBytes.limit, 1024);
    assert.ok(st.limits.pipelineBytes.used >= 1024 && st.limits.pipelineBytes.hits === 1 && st.limits.devicesPaused);
    assert.match(await gw.shell.execute("status"), /DEVICES PAUSED: pipeline full/);
    assert.equal(a.received.filter((p) => p.cmd === "puback").length, 0, "nothing acknowledged before its record is durable");
    await settle(clock, 400);
    assert.ok(!a.paused && !b.paused, "reading resumes");
    assert.equal(a.received.filter((p) => p.cmd === "puback").length, 2);
    assert.equal(b.received.filter((p) => p.cmd === "puback").length, 1);
    clock.tick(61_000);
    const flushed = gw.audit.log.flushSummaries();
    await settle(clock, 400);
    await flushed;
    // A repeated deny is recorded as a repeat of the first record (flow-summary `repeats`).
    const recorded = gw.audit.log.query({ kind: "flow" }).length + gw.audit.log.query({ kind: "flow-summary" }).reduce((n, r) => n + Number(r.detail?.repeats ?? 0), 0);
    assert.equal(recorded, 3, "every message recorded, none lost");
    const rec = gw.audit.log.query({ kind: "queue" }).find((r) => r.reason === "limit");
    assert.equal(rec?.detail?.limit, "pipelineBytes");
    assert.equal((gw.status() as { limits: { pipelineBytes: { used: number } } }).limits.pipelineBytes.used, 0);
  });
});
