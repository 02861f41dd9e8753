/**
 * Issue 14, briefly: the Node board at more than its uplink can carry. A real mqtt.js device floods
 * QoS 1 for a few seconds; the vendor is a real aedes over TLS that takes 10 ms per PUBACK, so the
 * queue (2 KiB, drop-oldest) overflows; the gateway then stops reading the device until it drains.
 * Afterwards every message the device got a PUBACK for must be at the vendor or named by a drop record
 * of the audit log, the drop records' counts must match the status counters, they must be a handful
 * (one per cause and window), and the uplink must have kept delivering during the flood (the intake
 * may not starve it).
 */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import { Aedes } from "aedes";
import mqtt from "mqtt";
import { bootNodeBoard, type RunningBoard } from "../../hosts/node/board.js";
import { makeTestCa } from "../lib/test-ca.js";
import { until } from "../lib/home.js";
import { vendorKeygen } from "../../tools/vendor-keygen.js";
import { parseEnvelope } from "../../src/outbound/envelope.js";
import type { UplinkStats } from "../../src/outbound/uplink-manager.js";

const FLOOD_MS = 3000;
/** The vendor acknowledges one message at a time, each after this long (25 msgs/s at most). */
const VENDOR_PUBACK_MS = 40;
/** The device publishes one message this often (~90 msgs/s: under the flow's rate limit of 100/s). */
const DEVICE_EVERY_MS = 11;

/** A vendor broker that is slow to acknowledge: each PUBLISH is authorized (and so PUBACKed) after a delay. */
async function slowVendor(cert: { cert: string; key: string }, seen: { seq: number; at: number }[]) {
  let turn: Promise<void> = Promise.resolve();
  const broker = await Aedes.createBroker({
    authorizePublish: (_client, packet, done) => {
      seen.push({ seq: parseEnvelope(new Uint8Array(packet.payload as Buffer)).seq, at: Date.now() });
      turn = turn.then(() => new Promise<void>((r) => setTimeout(() => (done(null), r()), VENDOR_PUBACK_MS)));
    },
  });
  const sockets = new Set<TLSSocket>();
  const server = createTlsServer({ cert: cert.cert, key: cert.key }, (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    broker.handle(s);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await new Promise<void>((r) => broker.close(() => r()));
    },
  };
}

const password = (JSON.parse(readFileSync("examples/home/demo-devices.json", "utf8")).devices as { id: string; password: string }[]).find((d) => d.id === "thermostat-hall")!.password;

describe("overload on the Node board: nothing PUBACKed is lost without a record", function () {
  this.timeout(90_000);
  const dirs: string[] = [];
  let board: RunningBoard | undefined;
  let device: mqtt.MqttClient | undefined;
  let vendor: { stop(): Promise<void> } | undefined;

  after(async () => {
    device?.end(true);
    await board?.stop();
    await vendor?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("PUBACKed = at the vendor + named in a drop record; few drop records; the uplink keeps delivering", async () => {
    const tmp = (p: string): string => (dirs.push(mkdtempSync(path.join(tmpdir(), p))), dirs[dirs.length - 1]!);
    const pki = await makeTestCa();
    const seen: { seq: number; at: number }[] = [];
    const v = await slowVendor(pki.server, seen);
    vendor = v;
    const key = vendorKeygen(path.join(tmp("portcullis-overload-keys-"), "vendor.key"));
    const config = tmp("portcullis-overload-config-");
    cpSync("examples/home", config, { recursive: true });
    rmSync(path.join(config, "contracts", "energy-insights.json"));
    const file = path.join(config, "contracts", "thermo-cloud.json");
    const contract = JSON.parse(readFileSync(file, "utf8"));
    Object.assign(contract.destinations[0], { host: "localhost", port: v.port, publicKey: key.publicKey, keyId: key.keyId, pins: [pki.server.pin] });
    contract.flows[0].rate = { perMinute: 6000, minIntervalMs: 0 };
    contract.terms.queue = { maxBytes: 2048, overflow: "drop-oldest", ttlSeconds: 3600 };
    writeFileSync(file, JSON.stringify(contract, null, 2));
    // The device's own publish rate limit (10/s in the demo home) would disconnect it: lifted here.
    const gwFile = path.join(config, "gateway.json");
    const gw = JSON.parse(readFileSync(gwFile, "utf8"));
    gw.broker = { ...gw.broker, publishRatePerSec: 10_000, publishBurst: 10_000 };
    gw.limits = { ...gw.limits, publishRatePerSec: 10_000, publishBurst: 10_000 };
    writeFileSync(gwFile, JSON.stringify(gw, null, 2));

    const consoleOut = new PassThrough();
    consoleOut.resume();
    board = await bootNodeBoard({ configDir: config, dataDir: tmp("portcullis-overload-data-"), mqttPort: 0, httpsPort: 0, demo: false, vendorCaPem: pki.ca, host: "127.0.0.1", consoleInput: new PassThrough(), consoleOutput: consoleOut });
    const b = board;
    const stats = (): UplinkStats => Object.values(b.gateway.outbound.summary())[0]!;
    if (!Object.values(b.gateway.outbound.summary())[0]) throw new Error(`no route: ${JSON.stringify(b.gateway.status().integrations)}`);
    await until("the uplink to connect", () => (stats().state === "connected" ? true : undefined), 20_000);
    device = await mqtt.connectAsync({ host: "127.0.0.1", port: b.mqttPort, clientId: "thermostat-hall", username: "thermostat-hall", password, protocolVersion: 4, reconnectPeriod: 0 });
    const d = device;

    // The flood: one QoS 1 publish every DEVICE_EVERY_MS for FLOOD_MS, ~4× what the vendor takes.
    let acked = 0;
    let sent = 0;
    let failed = 0;
    const started = Date.now();
    const dbg = process.env.OVERLOAD_DEBUG ? setInterval(() => process.stderr.write(`t=${Date.now() - started} sent ${sent} acked ${acked} seen ${seen.length} ${JSON.stringify(stats())}\n`), 500) : undefined;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (Date.now() - started >= FLOOD_MS) {
          clearInterval(timer);
          const check = setInterval(() => sent === acked + failed && (clearInterval(check), resolve()), 20);
          return;
        }
        // Catch up to the rate by the clock, so a loaded machine's late timers still flood as hard.
        const due = Math.floor((Date.now() - started) / DEVICE_EVERY_MS);
        while (sent < due) {
          sent++;
          d.publish("home/thermostat-hall/telemetry", JSON.stringify({ temperature_c: 20 + (sent % 10), setpoint_c: 21, hvac: { mode: "heat" } }), { qos: 1 }, (err) => (err ? failed++ : acked++));
        }
      }, DEVICE_EVERY_MS);
    });
    const floodEnd = Date.now();
    if (dbg) clearInterval(dbg);
    assert.equal(failed, 0);
    // Drain: nothing left queued or in flight, then the last drop window is over.
    await until("the queue to drain", () => (stats().queued === 0 && stats().inFlight === 0 ? true : undefined), 20_000);
    await new Promise((r) => setTimeout(r, 1500));

    const lines = (await b.gateway.audit.exportJsonl(undefined, undefined)).map((l) => JSON.parse(l) as { kind: string; decision: string; reason?: string; detail?: Record<string, unknown> });
    const drops = lines.filter((r) => r.kind === "queue" && r.decision === "deny");
    const flowDenied = lines.filter((r) => r.kind === "flow" && r.decision === "deny").length;
    assert.equal(flowDenied, 0, "no flow was denied (no rate limit in this contract)");
    assert.ok(drops.every((r) => r.reason === "overflow" && typeof r.detail?.["fromSeq"] === "number"), "only overflow drops, each with its range");
    const dropSum = drops.reduce((a, r) => a + (r.detail!["count"] as number), 0);
    const status = stats();
    const statusDropped = Object.values(status.dropped).reduce((a, n) => a + n, 0);

    const seenSeqs = new Set(seen.map((s) => s.seq));
    const ranges = drops.map((r) => [r.detail!["fromSeq"] as number, r.detail!["toSeq"] as number] as const);
    const named = (s: number): boolean => ranges.some(([a, z]) => a <= s && s <= z);
    const maxSeq = Math.max(...seenSeqs, ...ranges.map((r) => r[1]));
    const unnamed: number[] = [];
    for (let s = 1; s <= maxSeq; s++) if (!seenSeqs.has(s) && !named(s)) unnamed.push(s);
    const unseen = maxSeq - [...seenSeqs].filter((s) => s <= maxSeq).length;
    const deliveredInRanges = [...seenSeqs].filter(named).length;
    const duringFlood = new Set(seen.filter((s) => s.at <= floodEnd).map((s) => s.seq)).size;
    const summary = `acked ${acked}, seqs ${maxSeq}, at the vendor ${seenSeqs.size} (${duringFlood} during the flood), dropped ${dropSum} in ${drops.length} records, status ${statusDropped}`;

    // The queue overflows (drops of the oldest); then the devices are held back until it drains.
    assert.ok(dropSum > 0 && drops.length > 0, `the queue overflowed: ${summary}`);
    assert.equal(acked, maxSeq, `each PUBACKed message was queued with its own seq: ${summary}`);
    assert.deepEqual(unnamed.slice(0, 10), [], `every seq the vendor never saw is named by a drop record: ${summary}`);
    assert.ok(dropSum >= unseen && dropSum <= unseen + deliveredInRanges, `the counts cover exactly the unseen ones, plus at most those dropped in flight: ${summary}`);
    assert.equal(statusDropped, dropSum, `the log counts every drop the status counts, once: ${summary}`);
    assert.ok(drops.length <= Math.ceil((Date.now() - started) / 1000) + 1, `one record per window, not per push: ${summary}`);
    // The vendor takes VENDOR_PUBACK_MS per message in turn, so it can carry ~FLOOD_MS / VENDOR_PUBACK_MS.
    assert.ok(duringFlood >= FLOOD_MS / VENDOR_PUBACK_MS / 2, `the uplink kept delivering during the flood: ${summary}`);
  });
});
