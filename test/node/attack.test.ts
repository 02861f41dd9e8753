/**
 * The evidence promise under attack, on the Node board with real sockets: for ATTACK_SECONDS (60 in
 * `npm test`, 600 with `npm run test:attack`) a separate attacker process floods the gateway with MQTT
 * garbage, refused CONNECTs, sockets that never send CONNECT and wrong admin bearer tokens, from four
 * loopback addresses and many source ports, while a real device publishes at QoS 1 and the owner
 * rotates a pseudonym key now and then. Afterwards: the device stayed connected and every publish was
 * acknowledged; every acknowledged message and every admin action of the window is in the log; the
 * first-boot records are still there (nothing that must be kept was purged); the noise took a bounded
 * number of records; the flash erases stayed within the budget; and the export verifies offline.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { promisify } from "node:util";
import { bootNodeBoard, type RunningBoard } from "../../hosts/node/board.js";
import { connectDevice, demoPassword, exampleOnFreePorts, httpsGet, until } from "../lib/home.js";

const run = promisify(execFile);
const SECONDS = Number(process.env.ATTACK_SECONDS ?? 60);
/**
 * Erases the attack window may cost, per minute of attack: the device's own durable flow records
 * (4 msg/s) plus the aggregated noise. Before noise aggregation the same flood cost ~1,500 erases a
 * minute (the whole 1 MiB log wrapped about six times).
 */
const ERASES_PER_MINUTE_BUDGET = 24;
/** Noise records per minute of attack: one per source address × reason per minute, four addresses. */
const NOISE_RECORDS_PER_MINUTE_BUDGET = 120;
const NOISE_KINDS = new Set(["connect", "auth", "protocol"]);

interface Line {
  seq?: number;
  kind?: string;
  decision?: string;
  device?: string | null;
  reason?: string | null;
  topic?: string | null;
  count?: number;
  detail?: Record<string, unknown>;
}

describe("the evidence promise under attack (Node board, real sockets)", function () {
  this.timeout((SECONDS + 90) * 1000);
  let data: string;
  let configDir: string;
  let board: RunningBoard;

  before(async () => {
    data = mkdtempSync(path.join(tmpdir(), "portcullis-attack-"));
    configDir = await exampleOnFreePorts(mkdtempSync(path.join(tmpdir(), "portcullis-attack-config-")));
    const out = new PassThrough();
    out.resume();
    board = await bootNodeBoard({ configDir, dataDir: data, mqttPort: 0, httpsPort: 0, demo: true, demoDevices: false, host: "127.0.0.1", consoleInput: new PassThrough(), consoleOutput: out });
  });
  after(async () => {
    await board?.stop();
    rmSync(data, { recursive: true, force: true });
    rmSync(configDir, { recursive: true, force: true });
  });

  it(`keeps every flow and admin record through ${SECONDS} s of unauthenticated flooding, within the erase budget`, async () => {
    const token = readFileSync(path.join(data, "owner.token"), "utf8").trim();
    const firstBoot = board.gateway.audit.log.stats().firstSeq;
    const erasesBefore = board.flash.erases;
    const startSeq = board.gateway.audit.log.nextSeq;

    const dev = await connectDevice(board.mqttPort, "thermostat-hall", demoPassword("thermostat-hall"));
    let closes = 0;
    dev.on("close", () => closes++);
    let sent = 0;
    let acked = 0;
    let failed = 0;
    // The device keeps several QoS 1 publishes in flight, as mqtt.js does; each PUBACK comes only once a
    // durable flow commit covers the message (up to audit.flowCommitMs later).
    const publishing = (async () => {
      const end = Date.now() + SECONDS * 1000;
      while (Date.now() < end) {
        sent++;
        dev.publish("home/thermostat-hall/telemetry", JSON.stringify({ temperature_c: 20 + (sent % 5), setpoint_c: 21, humidity: 40 }), { qos: 1 }, (e) => (e ? failed++ : acked++));
        await new Promise((r) => setTimeout(r, 250));
      }
      await until("every publish to be acknowledged", () => (acked + failed === sent ? true : undefined), 20_000);
    })();
    let rotations = 0;
    const admin = (async () => {
      const end = Date.now() + SECONDS * 1000;
      while (Date.now() < end) {
        await new Promise((r) => setTimeout(r, 10_000));
        assert.match(await board.gateway.shell.execute("rotate thermo-cloud"), /rotated/);
        rotations++;
      }
    })();
    const attacker = run("npx", ["--no-install", "tsx", "test/lib/attacker.ts", String(board.mqttPort), String(board.httpsPort), String(SECONDS)], { maxBuffer: 1 << 20 });
    const [{ stdout }] = await Promise.all([attacker, publishing, admin]);
    const counts = JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, number>;
    const erases = board.flash.erases - erasesBefore;

    assert.equal(closes, 0, "the device stayed connected");
    assert.equal(failed, 0, "every publish was acknowledged");
    assert.equal(acked, sent);
    assert.ok(counts.garbage! > 100 && counts.refusedConnects! > 100 && counts.badTokens! > 100, `the attack ran: ${stdout}`);

    // The owner pulls the whole log; it must verify offline.
    const res = await until("the export", async () => {
      const r = await httpsGet(board.httpsPort, "/api/v1/audit/export", token);
      return r.status === 200 ? r : undefined;
    });
    dev.end(true);
    const file = path.join(data, "export.jsonl");
    writeFileSync(file, res.body);
    await run("npx", ["--no-install", "tsx", "tools/audit-verify.ts", file, "--key", path.join(data, "audit-verification.key")]);
    const lines = res.body.trim().split("\n").map((l) => JSON.parse(l) as Line);
    const records = lines.filter((l) => typeof l.seq === "number");

    assert.ok(records.some((r) => r.seq === firstBoot), `the first-boot record seq ${firstBoot} is still in the log`);
    const window = records.filter((r) => r.seq! >= startSeq);
    // Every acknowledged message has a durable record: a forwarded one is counted by a flow commit
    // (this device is the only one publishing to thermo-cloud); one the contract denies (its rate
    // limit) by its own flow record, or by the repeat count of one (flushed by the export).
    const committed = window.filter((r) => r.kind === "flow-summary" && r.reason === "commit").reduce((n, r) => n + Number(r.detail?.["thermo-cloud"] ?? 0), 0);
    const mine = window.filter((r) => r.device === "thermostat-hall");
    const denied =
      mine.filter((r) => r.kind === "flow" && r.decision === "deny").length +
      mine.filter((r) => r.kind === "flow-summary" && r.decision === "deny").reduce((n, r) => n + Number(r.detail?.["repeats"] ?? 0), 0);
    assert.ok(committed + denied >= acked, `every acknowledged message is covered by a durable record: ${committed} forwarded + ${denied} denied for ${acked} acknowledged`);
    const rotated = window.filter((r) => r.kind === "admin" && r.reason === "key-rotated").length;
    assert.equal(rotated, rotations, "every admin action of the window is recorded");

    const noise = window.filter((r) => NOISE_KINDS.has(r.kind ?? "") || (r.kind === "admin" && r.decision === "deny"));
    const minutes = Math.max(1, Math.ceil(SECONDS / 60));
    const attempts = counts.garbage! + counts.refusedConnects! + counts.badTokens!;
    console.log(
      `      attack ${SECONDS} s: ${attempts} hostile attempts (${stdout.trim()}), ${noise.length} noise records, ${window.length} records in the window, ` +
        `${erases} erases (budget ${ERASES_PER_MINUTE_BUDGET * minutes}), ${acked} device messages acknowledged, ${rotations} admin actions`,
    );
    assert.ok(noise.length <= NOISE_RECORDS_PER_MINUTE_BUDGET * (minutes + 1), `noise is aggregated: ${noise.length} records for ${attempts} attempts`);
    assert.ok(erases <= ERASES_PER_MINUTE_BUDGET * minutes, `erases ${erases} within ${ERASES_PER_MINUTE_BUDGET}/min`);
  });
});
