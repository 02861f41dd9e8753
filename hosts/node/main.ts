/**
 * `npm start`: boots the Node board (the simulator) with a config folder and a data folder, and by
 * default the demo home: simulated devices and two local vendor brokers over TLS.
 *
 *   npm start -- [--config <dir>] [--data <dir>] [--profile <name>] [--mqtt-port <n>] [--https-port <n>] [--https-host <addr>] [--no-demo] [--vendor-ca <pem>]
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import path from "node:path";
import { parseArgs } from "node:util";
import { bootNodeBoard } from "./board.js";
import { PROFILES, PROFILE_NAMES, isProfileName } from "../../src/profiles.js";

const USAGE = `usage: npm start -- [--config <dir>] [--data <dir>] [--profile <name>] [--mqtt-port <n>] [--https-port <n>] [--https-host <addr>] [--no-demo] [--vendor-ca <pem>]
  --config <dir>      folder with gateway.json and contracts/ (default: examples/home)
  --data <dir>        flash image, keys, owner token, verification key (default: ./.portcullis-data)
  --profile <name>    board profile whose limits the gateway enforces: ${PROFILE_NAMES.join(", ")}
                      (default: gateway.json "profile", else node: ${PROFILES.node.limits.devices} devices, ${PROFILES.node.limits.integrations} integrations)
  --mqtt-port <n>     device-side MQTT port (default 1883)
  --https-port <n>    admin HTTPS port (default 8443)
  --https-host <addr> admin HTTPS bind address (default gateway.json admin.host, else 127.0.0.1;
                      give the LAN address, or 0.0.0.0, to reach it from other machines)
  --no-demo           do not start the simulated devices and vendor brokers
  --vendor-ca <pem>   extra trust anchors (PEM file) for vendor TLS, besides the system roots`;

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function port(value: string | undefined, name: string, dflt: number): number {
  if (value === undefined) return dflt;
  if (!/^\d+$/.test(value) || Number(value) > 65535) fail(`${name} must be a port number 0-65535, got "${value}"`);
  return Number(value);
}

let args;
try {
  args = parseArgs({
    options: {
      config: { type: "string" },
      data: { type: "string" },
      profile: { type: "string" },
      "mqtt-port": { type: "string" },
      "https-port": { type: "string" },
      "https-host": { type: "string" },
      "no-demo": { type: "boolean" },
      "vendor-ca": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  }).values;
} catch (e) {
  fail(e instanceof Error ? e.message : String(e));
}
if (args.help) {
  process.stdout.write(USAGE + "\n");
  process.exit(0);
}

const profile = args.profile;
if (profile !== undefined && !isProfileName(profile)) {
  fail(`--profile: unknown board profile "${profile}"; one of:\n${PROFILE_NAMES.map((n) => `  ${n.padEnd(12)} ${PROFILES[n].description}`).join("\n")}`);
}
const httpsHost = args["https-host"];
if (httpsHost !== undefined && isIP(httpsHost) === 0) fail(`--https-host must be an IPv4 or IPv6 address, got "${httpsHost}"`);
let vendorCaPem: string | undefined;
if (args["vendor-ca"] !== undefined) {
  try {
    vendorCaPem = readFileSync(args["vendor-ca"], "utf8");
  } catch (e) {
    fail(`--vendor-ca: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!vendorCaPem.includes("-----BEGIN CERTIFICATE-----")) fail(`--vendor-ca: ${args["vendor-ca"]} holds no PEM certificate`);
}

const board = await bootNodeBoard({
  configDir: path.resolve(args.config ?? "examples/home"),
  dataDir: path.resolve(args.data ?? ".portcullis-data"),
  ...(profile !== undefined ? { profile } : {}),
  mqttPort: port(args["mqtt-port"], "--mqtt-port", 1883),
  httpsPort: port(args["https-port"], "--https-port", 8443),
  ...(httpsHost !== undefined ? { httpsHost } : {}),
  demo: !args["no-demo"],
  ...(vendorCaPem !== undefined ? { vendorCaPem } : {}),
  consoleInput: process.stdin,
  consoleOutput: process.stdout,
}).catch((e: unknown) => {
  process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  process.stdout.write("\nstopping: sealing the audit log…\n");
  board.stop().then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`error while stopping: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
