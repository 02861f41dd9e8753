/**
 * The demo home for `npm start`: two vendor clouds (aedes over TLS, certificates from a CA made at
 * start) that open what they receive with their HPKE keys, and simulated devices publishing
 * telemetry — one thermostat over-collects, so minimized and denied flows show within seconds. One
 * vendor goes down for a while to show the outbound queue riding out an outage.
 *
 * Vendor ports: the example contracts name 18883/18884. Each demo vendor listens on the port this
 * data folder used before (`<data>/demo/ports.json`), else the contract's; when that one is taken it
 * takes a free port from the OS. Only then are the contracts the gateway gets written, with the ports
 * bound: a restart keeps the same (approved) contracts, and a second demo with another `--data` runs
 * beside the first, even when both start at the same moment.
 */
import { createPublicKey } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createServer as createTlsServer, type Server as TlsServer } from "node:tls";
import { Aedes } from "aedes";
import mqtt from "mqtt";
import { makeCa, issueServer } from "./pki.js";
import { VendorReceiver, readVendorKey } from "../../tools/open-envelope.js";
import { vendorKeygen } from "../../tools/vendor-keygen.js";

export interface Demo {
  /** PEM of the CA the demo vendors' certificates chain to. */
  readonly caPem: string;
  /** The config the gateway runs with: the example's, with the demo vendors' public keys in its contracts. */
  readonly configDir: string;
  startDevices(mqttPort: number): Promise<void>;
  stop(): Promise<void>;
}

interface DemoDevice {
  readonly id: string;
  /** DEMO ONLY credentials (see examples/home/demo-devices.json). */
  readonly password: string;
  readonly topic: string;
  readonly everyMs: number;
  readonly payload: Record<string, unknown>;
}

interface Vendor {
  readonly integration: string;
  readonly destination: { port: number };
  readonly key: string;
  readonly name: string;
  port: number;
  server?: TlsServer;
  broker?: Aedes;
  received: number;
}

/** Fills `{rand:a:b}` numbers and `{now}` in a device's payload template. */
function render(template: unknown): unknown {
  if (typeof template === "string") {
    const m = /^\{rand:(-?[\d.]+):(-?[\d.]+)\}$/.exec(template);
    if (m) return Math.round((Number(m[1]) + Math.random() * (Number(m[2]) - Number(m[1]))) * 10) / 10;
    if (template === "{now}") return new Date().toISOString();
    return template;
  }
  if (Array.isArray(template)) return template.map(render);
  if (template && typeof template === "object") return Object.fromEntries(Object.entries(template).map(([k, v]) => [k, render(v)]));
  return template;
}

/** The uncompressed P-256 point (base64) of a vendor key file. */
function publicKeyOf(keyFile: string): string {
  const jwk = createPublicKey(readFileSync(keyFile)).export({ format: "jwk" });
  return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x ?? "", "base64url"), Buffer.from(jwk.y ?? "", "base64url")]).toString("base64");
}

/**
 * Prepares the demo: vendor key pairs in `<data>/demo/vendors/` (made once, kept across restarts so the
 * contracts stay the approved ones), and `<data>/demo/config/`: the example config with those public
 * keys in its contracts (SPEC.md "Contracts", "Vendor keys").
 */
export async function startDemo(options: { dataDir: string; configDir: string; say: (line: string) => void }): Promise<Demo> {
  const { say } = options;
  const demoDir = path.join(options.dataDir, "demo");
  const keysDir = path.join(demoDir, "vendors");
  const configDir = path.join(demoDir, "config");
  const contractsOut = path.join(configDir, "contracts");
  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  mkdirSync(contractsOut, { recursive: true });
  for (const f of ["gateway.json", "demo-devices.json"]) {
    if (existsSync(path.join(options.configDir, f))) copyFileSync(path.join(options.configDir, f), path.join(configDir, f));
  }
  const ca = await makeCa("Portcullis demo vendor CA");
  const leaf = await issueServer(ca, "localhost", ["localhost", "127.0.0.1"], 30);
  const contractsDir = path.join(options.configDir, "contracts");
  const vendors: Vendor[] = [];
  const receivers = new Map<string, VendorReceiver>();
  const portsFile = path.join(demoDir, "ports.json");
  const ports: Record<string, number> = existsSync(portsFile) ? JSON.parse(readFileSync(portsFile, "utf8")) : {};
  const toWrite: { name: string; contract: unknown }[] = [];
  for (const name of existsSync(contractsDir) ? readdirSync(contractsDir).filter((n) => n.endsWith(".json")).sort() : []) {
    const text = readFileSync(path.join(contractsDir, name), "utf8");
    let c;
    try {
      c = JSON.parse(text);
    } catch {
      // Not JSON: handed to the gateway as it is, which reports it (file:line: message) and blocks
      // only that integration; the demo runs no vendor for it.
      writeFileSync(path.join(contractsOut, name), text);
      continue;
    }
    for (const dest of Array.isArray(c?.destinations) ? c.destinations : []) {
      if (dest.host !== "localhost" || dest.encryption !== "hpke" || typeof dest.port !== "number") continue;
      const keyFile = path.join(keysDir, `${c.id}.${dest.id}.key`);
      if (!existsSync(keyFile)) vendorKeygen(keyFile);
      dest.publicKey = publicKeyOf(keyFile);
      const key = `${c.id}/${dest.id}`;
      receivers.set(key, new VendorReceiver({ privateKey: readVendorKey(keyFile), integration: c.id, contractVersion: c.version }));
      vendors.push({ integration: c.id, destination: dest, key, name: c.vendor ?? c.id, port: ports[key] ?? dest.port, received: 0 });
    }
    toWrite.push({ name, contract: c });
  }

  const startVendor = async (v: Vendor): Promise<void> => {
    const broker = await Aedes.createBroker();
    broker.on("publish", (packet, client) => {
      if (!client) return;
      v.received++;
      const receiver = receivers.get(v.key);
      const payload = new Uint8Array(packet.payload as Buffer);
      if (!receiver) return say(`[vendor ${v.name}] ${packet.topic}: ${payload.length} bytes (no key to open them)`);
      receiver.open(payload, packet.topic).then(
        (r) => {
          if (r.kind === "message") say(`[vendor ${v.name}] seq ${r.seq}${r.missing ? ` (${r.missing} missing before)` : ""} ${packet.topic} ${Buffer.from(r.payload).toString("utf8")}`);
          else if (r.kind === "duplicate") say(`[vendor ${v.name}] duplicate of seq ${r.seq}`);
          else say(`[vendor ${v.name}] REJECTED (${r.reason}): ${r.detail}`);
        },
        (e: unknown) => say(`[vendor ${v.name}] could not open: ${e instanceof Error ? e.message : String(e)}`),
      );
    });
    const server = createTlsServer({ key: leaf.keyPem, cert: leaf.certPem + ca.certPem /* the chain, as public brokers serve it */ }, broker.handle as never);
    const listen = (port: number): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, "127.0.0.1", () => {
          server.off("error", reject);
          resolve();
        });
      });
    try {
      await listen(v.port);
    } catch (e) {
      // Taken (another demo, or anything else): at first start any free port will do.
      if ((e as { code?: string }).code !== "EADDRINUSE" || v.server !== undefined || started) throw e;
      await listen(0);
      v.port = (server.address() as { port: number }).port;
    }
    v.server = server;
    v.broker = broker;
  };
  const stopVendor = async (v: Vendor): Promise<void> => {
    const server = v.server;
    const broker = v.broker;
    delete v.server;
    delete v.broker;
    await new Promise<void>((resolve) => broker ? broker.close(() => resolve()) : resolve());
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  };

  let started = false;
  for (const v of vendors) {
    await startVendor(v);
    v.destination.port = ports[v.key] = v.port;
  }
  started = true;
  // The contracts the gateway runs with name the ports the vendors really listen on.
  for (const w of toWrite) writeFileSync(path.join(contractsOut, w.name), JSON.stringify(w.contract, null, 2) + "\n");
  writeFileSync(portsFile, JSON.stringify(ports, null, 2) + "\n");
  say(`demo: ${vendors.length} vendor brokers over TLS on ${vendors.map((v) => v.port).join(", ")}`);

  const clients: mqtt.MqttClient[] = [];
  const timers: NodeJS.Timeout[] = [];
  return {
    caPem: ca.certPem,
    configDir,
    async startDevices(mqttPort) {
      const file = path.join(options.configDir, "demo-devices.json");
      if (!existsSync(file)) return;
      const devices: DemoDevice[] = JSON.parse(readFileSync(file, "utf8")).devices;
      // One connection per device id; a device may publish on several topics.
      const byId = new Map<string, mqtt.MqttClient>();
      for (const d of devices) {
        let client = byId.get(d.id);
        if (!client) {
          client = mqtt.connect({ host: "127.0.0.1", port: mqttPort, clientId: d.id, username: d.id, password: d.password, protocolVersion: 4, reconnectPeriod: 2000 });
          client.on("error", () => undefined);
          byId.set(d.id, client);
          clients.push(client);
        }
        const c = client;
        timers.push(setInterval(() => c.connected && c.publish(d.topic, JSON.stringify(render(d.payload)), { qos: 1 }), d.everyMs));
      }
      // An intruder with no credentials, to show a refused connection in the log.
      const intruder = mqtt.connect({ host: "127.0.0.1", port: mqttPort, clientId: "unknown-camera", username: "admin", password: "admin", protocolVersion: 4, reconnectPeriod: 0 });
      intruder.on("error", () => intruder.end(true));
      // A vendor outage: the last vendor goes down after 20 s for 20 s; its queue drains on return.
      const victim = vendors[vendors.length - 1];
      if (victim) {
        timers.push(setTimeout(() => {
          say(`demo: vendor ${victim.name} goes down for 20 s (messages queue on flash)`);
          void stopVendor(victim).then(() => {
            timers.push(setTimeout(() => {
              say(`demo: vendor ${victim.name} is back`);
              void startVendor(victim);
            }, 20_000));
          });
        }, 20_000));
      }
      say(`demo: ${byId.size} simulated devices publishing on ${devices.length} topics`);
    },
    async stop() {
      for (const t of timers) clearTimeout(t);
      await Promise.all(clients.map((c) => new Promise<void>((resolve) => c.end(true, {}, () => resolve()))));
      for (const v of vendors) await stopVendor(v);
    },
  };
}
