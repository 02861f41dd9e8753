/**
 * The demo home for `npm start`: two vendor clouds (aedes over TLS, certificates from a CA made at
 * start) that open what they receive with their HPKE keys, and simulated devices publishing
 * telemetry — one thermostat over-collects, so minimized and denied flows show within seconds. One
 * vendor goes down for a while to show the outbound queue riding out an outage.
 */
import { readFileSync, readdirSync, existsSync } from "node:fs";
import path from "node:path";
import { createServer as createTlsServer, type Server as TlsServer } from "node:tls";
import { Aedes } from "aedes";
import mqtt from "mqtt";
import { makeCa, issueServer } from "./pki.js";
import { VendorReceiver } from "../../tools/open-envelope.js";

export interface Demo {
  /** PEM of the CA the demo vendors' certificates chain to. */
  readonly caPem: string;
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
  readonly name: string;
  readonly port: number;
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

export async function startDemo(options: { dataDir: string; configDir: string; say: (line: string) => void }): Promise<Demo> {
  const { say, configDir } = options;
  const ca = await makeCa("Portcullis demo vendor CA");
  const leaf = await issueServer(ca, "localhost", ["localhost", "127.0.0.1"], 30);
  const contractsDir = path.join(configDir, "contracts");
  const vendors: Vendor[] = [];
  const receivers = new Map<string, VendorReceiver>();
  for (const name of existsSync(contractsDir) ? readdirSync(contractsDir).filter((n) => n.endsWith(".json")).sort() : []) {
    const c = JSON.parse(readFileSync(path.join(contractsDir, name), "utf8"));
    const dest = c.destinations?.[0] ?? c.destination;
    if (!dest || dest.host !== "localhost") continue;
    const keyFile = path.join(configDir, "vendors", `${c.id}.key`);
    if (existsSync(keyFile)) receivers.set(c.id, await VendorReceiver.fromKeyFile(keyFile));
    vendors.push({ integration: c.id, name: c.vendor?.name ?? c.vendor ?? c.id, port: dest.port, received: 0 });
  }

  const startVendor = async (v: Vendor): Promise<void> => {
    const broker = await Aedes.createBroker();
    broker.on("publish", (packet, client) => {
      if (!client) return;
      v.received++;
      const receiver = receivers.get(v.integration);
      let shown: string;
      try {
        shown = receiver ? receiver.openToText(packet.topic, packet.payload as Buffer) : (packet.payload as Buffer).toString("utf8");
      } catch (e) {
        shown = `could not open: ${e instanceof Error ? e.message : String(e)}`;
      }
      say(`[vendor ${v.name}] ${packet.topic} ${shown}`);
    });
    const server = createTlsServer({ key: leaf.keyPem, cert: leaf.certPem }, broker.handle as never);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(v.port, "127.0.0.1", () => resolve());
    });
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

  for (const v of vendors) await startVendor(v);
  say(`demo: ${vendors.length} vendor brokers over TLS on ${vendors.map((v) => v.port).join(", ")}`);

  const clients: mqtt.MqttClient[] = [];
  const timers: NodeJS.Timeout[] = [];
  return {
    caPem: ca.certPem,
    async startDevices(mqttPort) {
      const file = path.join(configDir, "demo-devices.json");
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
