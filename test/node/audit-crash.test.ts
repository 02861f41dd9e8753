/**
 * Crash test (issue 13, "Nothing leaves before it is recorded"): the Node board runs as a child process
 * with its own data folder, a real mqtt.js device publishes QoS 1 telemetry through it to a vendor
 * broker (aedes over TLS, test CA), and the board is killed with SIGKILL at random points, several
 * rounds, then restarted on the same data. Afterwards every message the vendor received must be
 * counted by a durable flow-commit record, and each kill must have left an unclean-stop record that
 * names the last durable seq.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import mqtt from "mqtt";
import { parseEnvelope } from "../../src/outbound/envelope.js";
import { freePort, makeTestCa, startAedesTls, type BrokerMessage, type TestBroker } from "../lib/test-ca.js";

const ROUNDS = 4;
const demoDevices = JSON.parse(readFileSync("examples/home/demo-devices.json", "utf8")).devices as { id: string; password: string }[];
const password = (id: string): string => demoDevices.find((d) => d.id === id)!.password;

interface Child {
  readonly proc: ChildProcess;
  readonly mqttPort: number;
  readonly httpsPort: number;
}

function startBoard(configDir: string, dataDir: string, caFile: string): Promise<Child> {
  const proc = spawn(process.execPath, ["--import", "tsx", "test/node/crash-board.ts", configDir, dataDir, caFile], { stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    proc.stderr!.on("data", (c: Buffer) => (err += c.toString()));
    proc.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /READY (\d+) (\d+)/.exec(out);
      if (m) resolve({ proc, mqttPort: Number(m[1]), httpsPort: Number(m[2]) });
    });
    proc.once("exit", (code) => reject(new Error(`board exited (${code}) before it was ready: ${err}`)));
  });
}

function killHard(c: Child): Promise<void> {
  return new Promise((resolve) => {
    c.proc.once("exit", () => resolve());
    c.proc.kill("SIGKILL");
  });
}

function get(port: number, target: string, token: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: target, rejectUnauthorized: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${target}: ${res.statusCode} ${body}`))));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Every record of `kind`, page by page. */
async function records(port: number, token: string, kind: string): Promise<Record<string, any>[]> {
  const out: Record<string, any>[] = [];
  for (let since = 1; ;) {
    const body = await get(port, `/api/v1/audit?kind=${kind}&since=${since}&limit=500`, token);
    const page = body.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as Record<string, any>);
    const fresh = page.filter((r) => r.seq >= since);
    if (fresh.length === 0) return out;
    out.push(...fresh);
    since = Math.max(...fresh.map((r) => r.seq as number)) + 1;
  }
}

/** Publishes QoS 1 telemetry from two plugs every 120 ms (under the broker's per-device rate limit, 10/s) until stopped (errors after the kill are expected). */
function traffic(port: number): { stop(): void } {
  const clients = ["plug-kitchen", "plug-office"].map((id) => {
    const c = mqtt.connect({ host: "127.0.0.1", port, clientId: id, username: id, password: password(id), protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 3000 });
    c.on("error", () => undefined);
    return { id, c };
  });
  let n = 0;
  const timer = setInterval(() => {
    for (const { id, c } of clients) {
      if (c.connected) c.publish(`home/${id}/telemetry`, JSON.stringify({ power_w: n++, energy_wh: 1000 + n, serial: "PLG-0001-KT" }), { qos: 1 }, () => undefined);
    }
  }, 120);
  return {
    stop() {
      clearInterval(timer);
      for (const { c } of clients) c.end(true);
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("audit log under kill -9 (Node board as a child process)", function () {
  this.timeout(90_000);
  let dir: string;
  let vendor: TestBroker;
  const received: BrokerMessage[] = [];

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "portcullis-crash-"));
    const pki = await makeTestCa();
    vendor = await startAedesTls(pki.server, 0, false, received);
    const configDir = path.join(dir, "config");
    cpSync("examples/home", configDir, { recursive: true });
    for (const name of ["energy-insights.json", "thermo-cloud.json"]) {
      const file = path.join(configDir, "contracts", name);
      const c = JSON.parse(readFileSync(file, "utf8"));
      for (const d of c.destinations) d.port = name === "energy-insights.json" ? vendor.port : await freePort();
      for (const f of c.flows) if (f.rate) f.rate = { perMinute: 6000, minIntervalMs: 0 };
      writeFileSync(file, JSON.stringify(c, null, 2));
    }
    writeFileSync(path.join(dir, "ca.pem"), pki.ca);
  });
  after(async () => {
    await vendor?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("every message the vendor received is covered by a durable flow commit; each kill leaves an unclean-stop record", async () => {
    const configDir = path.join(dir, "config");
    const dataDir = path.join(dir, "data");
    const caFile = path.join(dir, "ca.pem");
    for (let round = 0; round < ROUNDS; round++) {
      const board = await startBoard(configDir, dataDir, caFile);
      const t = traffic(board.mqttPort);
      await sleep(1200 + Math.floor(Math.random() * 1800));
      await killHard(board);
      t.stop();
    }
    // The last boot delivers what the queue kept, then the log is read over HTTPS.
    const board = await startBoard(configDir, dataDir, caFile);
    try {
      let seen = -1;
      while (seen !== received.length) {
        seen = received.length;
        await sleep(1500);
      }
      const token = readFileSync(path.join(dataDir, "owner.token"), "utf8").trim();
      const commits = (await records(board.httpsPort, token, "flow-summary")).filter((r) => r.reason === "commit");
      const committed = commits.reduce((n, r) => n + ((r.detail["energy-insights"] as number | undefined) ?? 0), 0);
      const delivered = new Set(received.map((m) => parseEnvelope(new Uint8Array(m.payload)).seq)).size;
      console.log(`      kill -9 × ${ROUNDS}: the vendor received ${delivered} distinct messages; durable flow commits count ${committed}`);
      assert.ok(delivered > 20, `the vendor received ${delivered} messages`);
      assert.ok(committed >= delivered, `durable flow commits count ${committed} messages, the vendor received ${delivered}`);

      const unclean = (await records(board.httpsPort, token, "boot")).filter((r) => r.reason === "unclean-stop");
      assert.equal(unclean.length, ROUNDS, "one unclean-stop record per kill");
      for (const r of unclean) assert.ok(typeof r.detail.lastDurableSeq === "number" && r.detail.lastDurableSeq < r.seq, JSON.stringify(r));
    } finally {
      await killHard(board);
    }
  });
});
