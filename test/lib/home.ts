/** The example home for Node-board tests: a copy with free vendor ports, device passwords, HTTPS and MQTT helpers. */
import { cpSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { request } from "node:https";
import path from "node:path";
import mqtt from "mqtt";

/** A port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Copies the example home into `dir` with every vendor destination moved to a free port. */
export async function exampleOnFreePorts(dir: string): Promise<string> {
  cpSync("examples/home", dir, { recursive: true });
  for (const name of readdirSync(path.join(dir, "contracts")).filter((n) => n.endsWith(".json"))) {
    const file = path.join(dir, "contracts", name);
    const c = JSON.parse(readFileSync(file, "utf8"));
    for (const d of c.destinations) d.port = await freePort();
    writeFileSync(file, JSON.stringify(c, null, 2));
  }
  return dir;
}

const demoDevices = JSON.parse(readFileSync("examples/home/demo-devices.json", "utf8")).devices as { id: string; password: string }[];
/** The DEMO ONLY password of an example device. */
export const demoPassword = (id: string): string => demoDevices.find((d) => d.id === id)!.password;

/** GET over HTTPS (self-signed gateway certificate), optionally with a bearer token. */
export function httpsGet(port: number, target: string, token?: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: target, rejectUnauthorized: false, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** An mqtt.js device connected to the gateway (no automatic reconnect). */
export function connectDevice(port: number, clientId: string, password: string): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect({ host: "127.0.0.1", port, clientId, username: clientId, password, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000 });
    c.once("connect", () => resolve(c));
    c.once("error", (e) => {
      c.end(true);
      reject(e);
    });
  });
}

/** Polls `f` until it returns a value. */
export async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, ms = 15000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
