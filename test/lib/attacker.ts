/**
 * The attacker of the attack test, run as its own process so its flood competes with the gateway for
 * the CPU as a host on the LAN would: MQTT garbage, refused CONNECTs (unknown ids, a known id with a
 * wrong password), sockets held open without CONNECT, and wrong admin bearer tokens, all at full speed,
 * from several loopback source addresses (127.0.0.2 … 127.0.0.5) and many source ports.
 *
 *   tsx test/lib/attacker.ts <mqttPort> <httpsPort> <seconds>
 *
 * Prints one JSON line of counts when done. Sends only to 127.0.0.1 and stops by itself.
 */
import { connect as tcpConnect, type Socket } from "node:net";
import { Agent, request } from "node:https";
import { randomBytes } from "node:crypto";
import mqttPacket from "mqtt-packet";

const [mqttPort, httpsPort, seconds] = process.argv.slice(2).map(Number);
if (!mqttPort || !httpsPort || !seconds) {
  console.error("usage: tsx test/lib/attacker.ts <mqttPort> <httpsPort> <seconds>");
  process.exit(2);
}
const SOURCES = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];
const end = Date.now() + seconds * 1000;
const counts = { garbage: 0, refusedConnects: 0, idleSockets: 0, badTokens: 0, httpErrors: 0, mqttErrors: 0 };

function source(i: number): string {
  return SOURCES[i % SOURCES.length]!;
}

function connectPacket(clientId: string, password: string): Buffer {
  return mqttPacket.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: true, keepalive: 30, clientId, username: clientId, password: Buffer.from(password) });
}

/** One short-lived MQTT socket from `from` that sends `bytes`, then waits for the gateway to close it (or gives up). */
function shot(from: string, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    let s: Socket;
    const done = (): void => {
      clearTimeout(t);
      s.destroy();
      resolve();
    };
    const t = setTimeout(done, 2000);
    s = tcpConnect({ host: "127.0.0.1", port: mqttPort!, localAddress: from }, () => s.write(bytes));
    s.on("data", () => undefined);
    s.on("error", () => {
      counts.mqttErrors++;
      done();
    });
    s.on("close", done);
  });
}

async function garbageLoop(i: number): Promise<void> {
  while (Date.now() < end) {
    // Random bytes, sometimes behind a plausible fixed header so the decoder goes further in.
    const body = randomBytes(1 + Math.floor(Math.random() * 200));
    const bytes = Math.random() < 0.5 ? body : Buffer.concat([Buffer.from([0x10, Math.min(127, body.length)]), body]);
    await shot(source(i), bytes);
    counts.garbage++;
  }
}

async function refusedLoop(i: number): Promise<void> {
  let n = 0;
  while (Date.now() < end) {
    const id = n++ % 2 === 0 ? `intruder-${i}-${n % 50}` : "plug-kitchen";
    await shot(source(i), connectPacket(id, "not-the-password"));
    counts.refusedConnects++;
  }
}

/** Holds sockets open without ever sending CONNECT, re-opening each as soon as the gateway drops it. */
async function idleLoop(i: number): Promise<void> {
  while (Date.now() < end) {
    await new Promise<void>((resolve) => {
      const s = tcpConnect({ host: "127.0.0.1", port: mqttPort!, localAddress: source(i) });
      counts.idleSockets++;
      const t = setTimeout(() => s.destroy(), Math.max(0, end - Date.now()));
      s.on("error", () => undefined);
      s.on("close", () => {
        clearTimeout(t);
        setTimeout(resolve, 10);
      });
    });
  }
}

async function tokenLoop(i: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, rejectUnauthorized: false, localAddress: source(i), maxSockets: 1 });
  while (Date.now() < end) {
    await new Promise<void>((resolve) => {
      const req = request(
        { host: "127.0.0.1", port: httpsPort, path: "/api/v1/audit", agent, headers: { authorization: `Bearer pct_${randomBytes(32).toString("base64url")}` } },
        (res) => {
          res.resume();
          res.on("end", resolve);
        },
      );
      req.setTimeout(5000, () => req.destroy());
      req.on("error", () => {
        counts.httpErrors++;
        setTimeout(resolve, 5);
      });
      req.end();
    });
    counts.badTokens++;
  }
  agent.destroy();
}

const loops: Promise<void>[] = [];
for (let i = 0; i < 6; i++) loops.push(garbageLoop(i));
for (let i = 0; i < 6; i++) loops.push(refusedLoop(i));
for (let i = 0; i < 8; i++) loops.push(idleLoop(i));
for (let i = 0; i < 4; i++) loops.push(tokenLoop(i));
await Promise.all(loops);
console.log(JSON.stringify(counts));
