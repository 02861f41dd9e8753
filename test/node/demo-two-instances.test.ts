/**
 * Two `npm start` demos started at the same moment (issue #13): each with its own --data, --mqtt-port and --https-port
 * boots, serves MQTT and HTTPS, and runs its demo vendors on ports of its own (the example contracts'
 * fixed 18883/18884 made the second one fail). The second one's config also holds a contract file
 * that is not JSON: it is reported as `file:line: message` and blocks only itself. Spawns the real
 * hosts/node/main.ts; stops only the processes it started.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import mqtt from "mqtt";
import { freePort } from "../lib/test-ca.js";

interface Instance {
  readonly proc: ChildProcess;
  readonly data: string;
  readonly mqttPort: number;
  readonly httpsPort: number;
  output: string;
}

function status(port: number, token: string): Promise<{ code: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/api/v1/status", rejectUnauthorized: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ code: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function until(what: string, f: () => boolean, ms = 40000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const password = (JSON.parse(readFileSync("examples/home/demo-devices.json", "utf8")).devices as { id: string; password: string }[]).find((d) => d.id === "thermostat-hall")!.password;

describe("two demo instances at once", function () {
  this.timeout(120000);
  const dirs: string[] = [];
  const running: Instance[] = [];
  const tmp = (p: string) => (dirs.push(mkdtempSync(path.join(tmpdir(), p))), dirs.at(-1)!);

  async function start(configDir?: string): Promise<Instance> {
    const data = tmp("portcullis-demo-data-");
    const mqttPort = await freePort();
    const httpsPort = await freePort();
    const args = ["hosts/node/main.ts", "--data", data, "--mqtt-port", String(mqttPort), "--https-port", String(httpsPort), ...(configDir ? ["--config", configDir] : [])];
    const proc = spawn(path.resolve("node_modules/.bin/tsx"), args, { stdio: ["pipe", "pipe", "pipe"] });
    const inst: Instance = { proc, data, mqttPort, httpsPort, output: "" };
    for (const s of [proc.stdout!, proc.stderr!]) s.on("data", (c: Buffer) => (inst.output += c.toString()));
    running.push(inst);
    await until(`instance on ${mqttPort} to boot`, () => inst.output.includes(`MQTT on port ${mqttPort}`) || proc.exitCode !== null);
    assert.equal(proc.exitCode, null, `the instance exited:\n${inst.output}`);
    return inst;
  }

  after(async () => {
    for (const i of running) {
      if (i.proc.exitCode !== null) continue;
      const gone = new Promise((r) => i.proc.once("exit", r));
      i.proc.kill("SIGTERM");
      await gone;
    }
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("both boot and serve MQTT and HTTPS, with demo vendors on different ports; a broken contract blocks only itself", async () => {
    const config = tmp("portcullis-demo-config-");
    cpSync("examples/home", config, { recursive: true });
    const good = readFileSync(path.join(config, "contracts", "energy-insights.json"), "utf8");
    writeFileSync(path.join(config, "contracts", "zz-broken.json"), good.slice(0, good.indexOf('"purpose"') + 16)); // unterminated string

    // Both at the same moment: the second must not lose a race for the example's vendor ports.
    const [a, b] = await Promise.all([start(), start(config)]);
    const vendorPorts = (i: Instance) => /demo: \d+ vendor brokers over TLS on ([\d, ]+)/.exec(i.output)?.[1];
    assert.ok(vendorPorts(a) && vendorPorts(b), a.output + b.output);
    const pa = vendorPorts(a)!.split(", ");
    const pb = vendorPorts(b)!.split(", ");
    assert.equal(pa.filter((p) => pb.includes(p)).length, 0, `vendor ports must not collide: ${pa} / ${pb}`);

    const broken = path.join(b.data, "demo", "config", "contracts", "zz-broken.json");
    assert.ok(b.output.includes(`${broken}:`), b.output);
    assert.match(b.output, /zz-broken\.json:\d+: not valid JSON/);
    assert.match(b.output, /zz-broken: blocked/);

    for (const i of [a, b]) {
      const token = readFileSync(path.join(i.data, "owner.token"), "utf8").trim();
      const s = await status(i.httpsPort, token);
      assert.equal(s.code, 200);
      assert.equal(JSON.parse(s.body).integrations.filter((x: { state: string }) => x.state === "active").length, 2, s.body);
      const c = await mqtt.connectAsync({ host: "127.0.0.1", port: i.mqttPort, clientId: "probe-thermostat", username: "thermostat-hall", password, protocolVersion: 4, reconnectPeriod: 0 }).catch((e: Error & { code?: number }) => e);
      // A wrong client id for these credentials is refused with CONNACK 5: the broker answered.
      assert.ok(c instanceof Error && (c as { code?: number }).code === 5, "the MQTT side answers");
    }
    const remembered = readFileSync(path.join(b.data, "demo", "ports.json"), "utf8");
    assert.deepEqual(Object.values(JSON.parse(remembered)).map(String).sort(), pb.slice().sort(), "the ports are remembered for the next start");
  });
});
