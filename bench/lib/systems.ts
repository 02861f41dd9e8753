/**
 * The processes of the end-to-end benches, each its own OS process: the vendor (Debian's mosquitto,
 * TLS listener for the systems under test, plain loopback listener for the observer), the gateway
 * (the Node board, `node --import tsx hosts/node/main.ts`, so the pid is the node process itself), and
 * the Mosquitto bridge (a second mosquitto bridging to the vendor over TLS). Certificates come from a
 * test CA made at run time in a temp directory that is removed afterwards; nothing is committed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { userInfo } from "node:os";
import path from "node:path";
import { makeDeviceSecret } from "../../src/config.js";
import { nodeCrypto } from "../../hosts/node/crypto.js";
import { freePort, type TestCa } from "../../test/lib/test-ca.js";
import { vendorKeygen } from "../../tools/vendor-keygen.js";

export const MOSQUITTO = process.env.PORTCULLIS_MOSQUITTO ?? "/usr/sbin/mosquitto";
/** Flows in the bench contract, one per topic slot: the per-flow × device rate limit (6000/min at most) then caps no run. */
export const FLOW_SLOTS = 32;
export const INTEGRATION = "bench-vendor";
export const CONTRACT_VERSION = "1.0.0";

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything the process wrote to stderr (and stdout for the gateway), for error messages. */
  log(): string;
  exited(): boolean;
  stop(): Promise<void>;
}

export interface BenchDevice {
  readonly id: string;
  readonly password: string;
}

function startProc(name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): Proc {
  const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], env: env ?? process.env });
  let out = "";
  const keep = (d: Buffer): void => {
    out += d.toString();
    if (out.length > 20_000) out = out.slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  child.on("error", (e) => keep(Buffer.from(String(e))));
  if (child.pid === undefined) throw new Error(`${name}: could not start ${cmd}`);
  let exited = false;
  const done = new Promise<void>((resolve) => child.once("exit", () => ((exited = true), resolve())));
  return {
    name,
    child,
    pid: child.pid,
    log: () => out,
    exited: () => exited,
    async stop() {
      if (exited) return;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await done;
      clearTimeout(t);
    },
  };
}

/** Resolves once `port` on 127.0.0.1 accepts a connection; rejects after `ms` or when the process exits. */
export function waitForPort(port: number, ms: number, proc?: Proc): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      if (proc?.exited()) return reject(new Error(`${proc.name} exited: ${proc.log().slice(-2000)}`));
      const s = netConnect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), resolve()));
      s.once("error", () => {
        s.destroy();
        if (Date.now() > end) reject(new Error(`${proc?.name ?? "port"} ${port} did not open in ${ms} ms: ${proc?.log().slice(-2000) ?? ""}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export interface Vendor extends Proc {
  /** The test CA (PEM file) the vendor's certificate chains to. */
  readonly caFile: string;
  readonly tlsPort: number;
  readonly plainPort: number;
}

/** The vendor cloud: mosquitto with a TLS listener (the test CA's server cert) and a plain one for the observer. */
/** The lines both mosquitto configs share. */
function mosquittoCommon(): string[] {
  return [
    // mosquitto started as root drops to user "mosquitto", who could not read the 0600 files here.
    `user ${userInfo().username}`,
    "per_listener_settings false",
    "allow_anonymous true",
    "persistence false",
    "log_dest stderr",
    "log_type error",
    "max_queued_messages 0",
  ];
}

export async function startVendor(dir: string, ca: TestCa): Promise<Vendor> {
  mkdirSync(dir, { recursive: true });
  const tlsPort = await freePort();
  const plainPort = await freePort();
  writeFileSync(path.join(dir, "ca.pem"), ca.ca);
  writeFileSync(path.join(dir, "server.pem"), ca.server.cert);
  writeFileSync(path.join(dir, "server.key"), ca.server.key, { mode: 0o600 });
  const conf = path.join(dir, "vendor.conf");
  writeFileSync(conf, [
    ...mosquittoCommon(),
    "max_inflight_messages 0",
    `listener ${tlsPort} 127.0.0.1`,
    `cafile ${path.join(dir, "ca.pem")}`,
    `certfile ${path.join(dir, "server.pem")}`,
    `keyfile ${path.join(dir, "server.key")}`,
    `listener ${plainPort} 127.0.0.1`,
    "",
  ].join("\n"));
  const p = startProc("vendor mosquitto", MOSQUITTO, ["-c", conf]);
  await waitForPort(plainPort, 5000, p);
  await waitForPort(tlsPort, 5000, p);
  return { ...p, caFile: path.join(dir, "ca.pem"), tlsPort, plainPort };
}

export interface Target extends Proc {
  /** Where the devices connect. */
  readonly port: number;
  readonly kind: "gateway" | "bridge";
  /** The gateway's admin HTTPS port and owner token (gateway only). */
  readonly httpsPort?: number;
  readonly ownerToken?: string;
}

/** The Mosquitto bridge: a local broker for the devices, bridging bench/# to the vendor over verified TLS, QoS 1. */
export async function startBridge(dir: string, vendor: Vendor): Promise<Target> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const conf = path.join(dir, "bridge.conf");
  writeFileSync(conf, [
    ...mosquittoCommon(),
    `listener ${port} 127.0.0.1`,
    "connection vendor",
    `address 127.0.0.1:${vendor.tlsPort}`,
    `bridge_cafile ${vendor.caFile}`,
    "bridge_insecure false",
    "bridge_protocol_version mqttv311",
    `remote_clientid bridge-${randomBytes(4).toString("hex")}`,
    "cleansession true",
    "try_private false",
    "topic bench/# out 1",
    "",
  ].join("\n"));
  const p = startProc("mosquitto bridge", MOSQUITTO, ["-c", conf]);
  await waitForPort(port, 5000, p);
  return { ...p, port, kind: "bridge" };
}

/** gateway.json devices and the bench contract (FLOW_SLOTS flows, topic `bench/+/s<k>`, HPKE to a fresh vendor key). */
export function writeGatewayConfig(dir: string, devices: readonly BenchDevice[], vendor: Vendor, vendorKeyFile: string): void {
  mkdirSync(path.join(dir, "contracts"), { recursive: true });
  const crypto = nodeCrypto();
  writeFileSync(path.join(dir, "gateway.json"), JSON.stringify({
    name: "bench home",
    devices: devices.map((d) => ({ id: d.id, secret: makeDeviceSecret(crypto, randomBytes(16), d.password), groups: ["bench"] })),
    audit: { groupCommitMs: 20 },
    // The bench measures the pipeline, not the per-device defences: no publish rate limit to speak
    // of (the node profile's ceiling; DESIGN.md "Board profiles"), and the node profile's 50 sessions for N = 50.
    broker: { publishRatePerSec: 100_000, publishBurst: 100_000 },
  }, null, 2));
  const { publicKey, keyId } = vendorKeygen(vendorKeyFile);
  const fields = [
    { path: "/mid", class: "diagnostic" },
    { path: "/ts", class: "diagnostic" },
    { path: "/power_w", class: "energy" },
    { path: "/energy_wh", class: "energy" },
    { path: "/voltage", class: "energy" },
    { path: "/serial", class: "identifier" },
    { path: "/pad", class: "diagnostic" },
  ];
  const contract = {
    format: 1,
    id: INTEGRATION,
    version: CONTRACT_VERSION,
    vendor: "Bench Vendor",
    contact: "privacy@bench.example",
    purpose: "Benchmark: measures the gateway end to end against a Mosquitto bridge.",
    effective: "2026-01-01",
    destinations: [{ id: "vendor", protocol: "mqtts", host: "127.0.0.1", port: vendor.tlsPort, topic: "ingest/{integration}/{device-pseudonym}/{flow}", encryption: "hpke", publicKey, keyId }],
    flows: Array.from({ length: FLOW_SLOTS }, (_, k) => ({
      id: `s${k}`, destination: "vendor", groups: ["bench"], topics: [`bench/+/s${k}`], fields, pseudonymize: ["/serial"], rate: { perMinute: 6000, minIntervalMs: 0 },
    })),
    terms: {
      retentionDays: 30,
      consent: { diagnostic: false, energy: false, identifier: false },
      sla: { uptimePercent: 99, maxLatencyMs: 5000 },
      exit: { exportFormat: "json", deletionDays: 30 },
      queue: { maxBytes: 1048576, overflow: "drop-oldest", ttlSeconds: 86400 },
    },
  };
  writeFileSync(path.join(dir, "contracts", `${INTEGRATION}.json`), JSON.stringify(contract, null, 2));
}

/**
 * The Node board as its own process. `cpuProfDir` starts node with --cpu-prof (the profile is written
 * when the gateway stops cleanly on SIGTERM).
 */
export async function startGateway(dir: string, configDir: string, caFile: string, cpuProfDir?: string): Promise<Target> {
  const dataDir = path.join(dir, "data");
  const port = await freePort();
  const httpsPort = await freePort();
  const args = [
    ...(cpuProfDir ? ["--cpu-prof", "--cpu-prof-dir", cpuProfDir] : []),
    "--import", "tsx", "hosts/node/main.ts",
    "--config", configDir, "--data", dataDir, "--mqtt-port", String(port), "--https-port", String(httpsPort), "--no-demo", "--vendor-ca", caFile,
  ];
  const p = startProc("gateway", process.execPath, args);
  await waitForPort(port, 30_000, p);
  await waitForPort(httpsPort, 10_000, p);
  const ownerToken = readFileSync(path.join(dataDir, "owner.token"), "utf8").trim();
  return { ...p, port, httpsPort, ownerToken, kind: "gateway" };
}

/** utime + stime of a process in ms (/proc/<pid>/stat, fields 14 and 15, in clock ticks of 100 Hz). */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

/** VmHWM (peak) and VmRSS of a process in MB (/proc/<pid>/status). */
export function memMb(pid: number): { peak: number; rss: number } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(s)?.[1] ?? NaN);
    return { peak: kb("VmHWM") / 1024, rss: kb("VmRSS") / 1024 };
  } catch {
    return { peak: NaN, rss: NaN };
  }
}

export function makeDevices(n: number): BenchDevice[] {
  return Array.from({ length: n }, (_, i) => ({ id: `bench-dev-${String(i).padStart(3, "0")}`, password: randomBytes(12).toString("base64url") }));
}
