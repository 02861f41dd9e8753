/**
 * TEST ONLY: a throwaway PKI made at test time (never committed): an ECDSA P-256 CA, a server
 * certificate for localhost/127.0.0.1, an expired one, and one from an unrelated CA. Built with
 * @peculiar/x509 on node's WebCrypto so validity dates can be set freely. Also TLS test brokers (aedes,
 * mosquitto) playing the vendor.
 */
import { spkiPin } from "../../hosts/node/uplink.js";
import { issueServer, makeCa, type KeyAndCert } from "../../hosts/node/pki.js";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync, chmodSync } from "node:fs";
import { createServer as createNetServer, connect as netConnect } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Aedes } from "aedes";
import mqtt from "mqtt";

export interface TestServerCert {
  readonly cert: string;
  readonly key: string;
  /** Base64 SHA-256 of the SPKI: what a contract would pin. */
  readonly pin: string;
}

export interface TestCa {
  /** The CA certificate (PEM): the client's trust anchor. */
  readonly ca: string;
  readonly server: TestServerCert;
  readonly expired: TestServerCert;
  /** A server certificate from another CA: the client must not trust it. */
  readonly foreign: TestServerCert;
  /** The other CA's certificate (PEM). */
  readonly foreignCa: string;
}

/** The pin is computed by the uplink's own `spkiPin` from the DER, independently of how pki.ts made it. */
function leaf(k: KeyAndCert): TestServerCert {
  return { cert: k.certPem, key: k.keyPem, pin: spkiPin(new Uint8Array(k.cert.rawData)) };
}

/** Makes a fresh test PKI (ECDSA P-256, made at test time by the board's own hosts/node/pki.ts). */
export async function makeTestCa(): Promise<TestCa> {
  const ca = await makeCa("Portcullis Test CA");
  const other = await makeCa("Unrelated Test CA");
  const names = ["localhost", "127.0.0.1"];
  return {
    ca: ca.certPem,
    server: leaf(await issueServer(ca, "localhost", names, 7)),
    expired: leaf(await issueServer(ca, "localhost", names, -1)),
    foreign: leaf(await issueServer(other, "localhost", names, 7)),
    foreignCa: other.certPem,
  };
}

// ---- TLS brokers for the uplink tests: aedes in-process over node:tls, and mosquitto when installed ----


/** A message the test vendor broker received. */
export interface BrokerMessage {
  readonly topic: string;
  readonly payload: Buffer;
}

export interface TestBroker {
  readonly kind: "aedes" | "mosquitto";
  readonly port: number;
  /** Messages published by clients, in arrival order. */
  readonly received: BrokerMessage[];
  stop(): Promise<void>;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

/** aedes over node:tls on 127.0.0.1. `refuse` makes it answer CONNACK "not authorized". */
export async function startAedesTls(tlsCert: TestServerCert, port = 0, refuse = false, received: BrokerMessage[] = []): Promise<TestBroker> {
  const broker = await Aedes.createBroker(
    refuse ? { authenticate: (_c, _u, _p, done) => done(Object.assign(new Error("not authorized"), { returnCode: 5 }), false) } : {},
  );
  broker.on("publish", (packet, client) => {
    if (client) received.push({ topic: packet.topic, payload: Buffer.from(packet.payload) });
  });
  const server = createTlsServer({ cert: tlsCert.cert, key: tlsCert.key }, (socket) => broker.handle(socket));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  const bound = typeof addr === "object" && addr ? addr.port : port;
  const sockets = new Set<import("node:net").Socket>();
  server.on("secureConnection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  return {
    kind: "aedes",
    port: bound,
    received,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}

/** True when a mosquitto binary is on the PATH. */
export function hasMosquitto(): boolean {
  return spawnSync("mosquitto", ["-h"], { stdio: "ignore" }).error === undefined;
}

function waitForPort(port: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = netConnect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve();
      });
      s.once("error", () => {
        s.destroy();
        if (Date.now() > end) reject(new Error(`port ${port} did not open`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/**
 * mosquitto with one TLS listener on 127.0.0.1:`port`, and a subscriber (over TLS, trusting `ca`)
 * that records what arrives. Files live in a fresh temp directory.
 */
export async function startMosquittoTls(
  ca: string,
  tlsCert: TestServerCert,
  port: number,
  received: BrokerMessage[] = [],
  subscribe = true,
  stateDir?: string,
): Promise<TestBroker> {
  // With a state directory the broker persists sessions across restarts, and the recording subscriber
  // keeps a persistent session (clean = false): what arrives while it is away is kept for it.
  const dir = stateDir ?? mkdtempSync(join(tmpdir(), "portcullis-mosquitto-"));
  chmodSync(dir, 0o777);
  writeFileSync(join(dir, "ca.pem"), ca);
  writeFileSync(join(dir, "server.pem"), tlsCert.cert);
  writeFileSync(join(dir, "server.key"), tlsCert.key, { mode: 0o644 });
  const conf = join(dir, "mosquitto.conf");
  writeFileSync(conf, [
    "per_listener_settings true",
    stateDir ? "persistence true" : "persistence false",
    ...(stateDir ? [`persistence_location ${dir}/`, "max_queued_messages 100000"] : []),
    "log_dest stderr",
    "log_type error",
    `listener ${port} 127.0.0.1`,
    "allow_anonymous true",
    `cafile ${join(dir, "ca.pem")}`,
    `certfile ${join(dir, "server.pem")}`,
    `keyfile ${join(dir, "server.key")}`,
    "",
  ].join("\n"));
  const proc: ChildProcess = spawn("mosquitto", ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  try {
    await waitForPort(port, 5000);
  } catch (e) {
    proc.kill("SIGKILL");
    throw new Error(`mosquitto did not start: ${stderr}`, { cause: e });
  }
  // The recording subscriber verifies the broker like any client: it cannot join a broker whose
  // certificate is expired, so tests of that case pass subscribe = false.
  const sub = subscribe
    ? await mqtt.connectAsync({
        protocol: "mqtts",
        host: "127.0.0.1",
        port,
        ca,
        rejectUnauthorized: true,
        clientId: stateDir ? `vendor-sub-${port}` : `sub-${port}-${Date.now()}`,
        clean: !stateDir,
        reconnectPeriod: 0,
      })
    : undefined;
  sub?.on("message", (topic, payload) => received.push({ topic, payload: Buffer.from(payload) }));
  await sub?.subscribeAsync("#", { qos: 1 });
  return {
    kind: "mosquitto",
    port,
    received,
    stop: async () => {
      await sub?.endAsync(true);
      await new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once("exit", () => resolve());
        proc.kill("SIGTERM");
      });
    },
  };
}
