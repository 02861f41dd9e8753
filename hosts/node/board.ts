/**
 * The Node board: builds the Board from Node implementations of the ports, reads the config folder,
 * keeps first-boot secrets in the data folder, and serves the device side (MQTT), the admin side
 * (HTTPS) and the serial console (stdin/stdout).
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Readable, Writable } from "node:stream";
import type { Board, Listener } from "../../src/ports.js";
import { NorFlash } from "../../src/flash/nor.js";
import { parseGatewayConfig, type GatewayConfig } from "../../src/config.js";
import type { ProfileName } from "../../src/profiles.js";
import { startGateway, type Gateway } from "../../src/gateway.js";
import { flashBytesNeeded } from "../../src/gateway/outbound.js";
import { RETAINED_AREA_BYTES } from "../../src/broker-local/retained-flash.js";
import { nodeClock, nodeTimers } from "./clock.js";
import { nodeConsole } from "./console.js";
import { nodeCrypto } from "./crypto.js";
import { nodeRandom } from "./random.js";
import { FileStore } from "./flash-file.js";
import { FileKeyStore } from "./keys.js";
import { nodeNetwork } from "./network.js";
import { nodeUplink } from "./uplink.js";
import { nodeHomeBroker } from "./home-broker.js";
import { ADMIN_HTTPS_DEFAULTS, loadOrCreateIdentity, renewIdentityIfDue, startAdminServer, type AdminServer, type CertPolicy, type Identity, type LoadedIdentity } from "./https.js";
import { startDemo, type Demo } from "./demo.js";
import { loadWebAssets, webHandler } from "./web.js";


export interface NodeBoardOptions {
  readonly configDir: string;
  readonly dataDir: string;
  readonly mqttPort: number;
  readonly httpsPort: number;
  readonly demo: boolean;
  /** With the demo: also start its simulated devices (default true; tests bring their own). */
  readonly demoDevices?: boolean;
  /** The emulated flash chip: the audit partition plus the queue slots (src/gateway/outbound.ts). */
  readonly flashBytes?: number;
  /** Extra trust anchors (PEM) for vendor TLS, besides the system roots. */
  readonly vendorCaPem?: string;
  readonly consoleInput?: Readable;
  readonly consoleOutput?: Writable;
  /** Bind address for MQTT (default all interfaces) and, unless `httpsHost` or gateway.json says otherwise, HTTPS. */
  readonly host?: string;
  /** Bind address of the admin HTTPS server; beats gateway.json `admin.host` (default 127.0.0.1, see https.ts). */
  readonly httpsHost?: string;
  /** The board profile (`--profile`); absent: gateway.json's `profile`, else `node`. */
  readonly profile?: ProfileName;
  /** The built dashboard (default build/web, see tools/build-web.ts); served at `/` when built. */
  readonly webDir?: string;
}

export interface RunningBoard {
  readonly gateway: Gateway;
  readonly mqttPort: number;
  readonly httpsPort: number;
  /** The HTTPS certificate's fingerprint now (it changes on renewal). */
  readonly fingerprint: string;
  /** The daily certificate check, run now (or as of `now`): true when it replaced the certificate. */
  renewCertificate(now?: number): Promise<boolean>;
  /** The emulated NOR chip (erase counts for wear budgets in tests and benches). */
  readonly flash: NorFlash;
  stop(): Promise<void>;
}

/** How often the board checks whether its HTTPS certificate is due for renewal. */
export const CERT_CHECK_EVERY_MS = 86_400_000;

/** Reads gateway.json and contracts/*.json from the config folder. @throws Error naming every problem. */
export function loadConfigDir(dir: string, profile?: ProfileName) {
  const file = path.join(dir, "gateway.json");
  if (!existsSync(file)) throw new Error(`no gateway.json in ${dir} (pass --config <dir>; see examples/home)`);
  const contractsDir = path.join(dir, "contracts");
  const contracts = existsSync(contractsDir)
    ? readdirSync(contractsDir)
        .filter((n) => n.endsWith(".json"))
        .sort()
        .map((n) => ({ source: path.join(contractsDir, n), text: readFileSync(path.join(contractsDir, n), "utf8") }))
    : [];
  const parsed = parseGatewayConfig(readFileSync(file, "utf8"), contracts, profile === undefined ? {} : { profile });
  if (!parsed.ok) throw new Error(`${file}:\n` + parsed.errors.map((e) => `  ${e.path || "/"}: ${e.message}`).join("\n"));
  return parsed.config;
}

/** Boots the board; resolves once MQTT and HTTPS listen. */
export async function bootNodeBoard(options: NodeBoardOptions): Promise<RunningBoard> {
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const out = options.consoleOutput ?? process.stdout;
  const say = (line: string): void => void out.write(line + "\n");
  loadConfigDir(options.configDir, options.profile); // fail early, before the demo starts anything, on a bad config

  const demo: Demo | undefined = options.demo ? await startDemo({ dataDir: options.dataDir, configDir: options.configDir, say }) : undefined;
  const config = loadConfigDir(demo?.configDir ?? options.configDir, options.profile);
  const vendorCa = options.vendorCaPem ?? demo?.caPem;

  const random = nodeRandom();
  const flashBytes = options.flashBytes ?? nodeFlashBytes(path.join(options.dataDir, "flash.img"), config);
  const timers = nodeTimers();
  const konsole = nodeConsole(options.consoleInput ?? process.stdin, out);
  const flash = new NorFlash({ size: flashBytes, store: new FileStore(path.join(options.dataDir, "flash.img"), flashBytes) });
  const board: Board = {
    clock: nodeClock(),
    timers,
    random,
    crypto: nodeCrypto(),
    flash,
    keys: new FileKeyStore(path.join(options.dataDir, "keys")),
    console: konsole,
    network: nodeNetwork(options.host !== undefined ? { host: options.host } : {}),
    uplink: nodeUplink(vendorCa !== undefined ? { ca: vendorCa } : {}),
    homeBroker: nodeHomeBroker(),
  };

  const certPolicy: CertPolicy = {
    ...(config.admin?.certValidityDays ? { validityDays: config.admin.certValidityDays } : {}),
    ...(config.admin?.certRenewDays ? { renewDays: config.admin.certRenewDays } : {}),
  };
  const loaded = await loadOrCreateIdentity(options.dataDir, certPolicy);
  let identity: Identity = loaded.identity;
  const approvedDir = path.join(options.dataDir, "approved-contracts");
  mkdirSync(approvedDir, { recursive: true, mode: 0o700 });
  const approvedFile = (id: string): string => path.join(approvedDir, `${id.replace(/[^A-Za-z0-9._-]/g, "_")}.json`);
  const gateway = await startGateway(board, config, {
    ...homeBrokerSecrets(options.configDir, config),
    certificateFingerprint: () => identity.fingerprint,
    contractStore: {
      get: (id) => (existsSync(approvedFile(id)) ? readFileSync(approvedFile(id), "utf8") : undefined),
      set: (id, text) => writeFileSync(approvedFile(id), text, { mode: 0o600 }),
    },
    onVerificationKey(key) {
      const file = path.join(options.dataDir, "audit-verification.key");
      writeFileSync(file, Buffer.from(key).toString("hex") + "\n", { mode: 0o600 });
      say(`first boot: audit verification key written to ${file} — keep it offline; the device does not keep it`);
    },
    onOwnerToken(token) {
      const file = path.join(options.dataDir, "owner.token");
      writeFileSync(file, token + "\n", { mode: 0o600 });
      chmodSync(file, 0o600);
      say(`first boot: owner token written to ${file} (mode 0600; it is not shown here)`);
    },
  });

  // A broken dashboard build costs the page (`/` answers 503), never the gateway.
  let web: ReturnType<typeof loadWebAssets>;
  try {
    web = loadWebAssets(options.webDir);
  } catch (e) {
    say(`portcullis: dashboard not served: ${e instanceof Error ? e.message : String(e)} (npm run build:web)`);
  }
  let listener: Listener | undefined;
  let https: AdminServer | undefined;
  try {
    listener = board.network.listen({ port: options.mqttPort, onConnection: (socket) => gateway.broker.accept(socket) });
    https = await startAdminServer(gateway.admin, identity, {
      port: options.httpsPort,
      host: options.httpsHost ?? config.admin?.host ?? options.host ?? ADMIN_HTTPS_DEFAULTS.host,
      maxConnections: config.admin?.maxConnections ?? config.limits.adminSessions,
      ...(config.admin?.headerTimeoutMs ? { headerTimeoutMs: config.admin.headerTimeoutMs } : {}),
      ...(config.admin?.idleTimeoutMs ? { idleTimeoutMs: config.admin.idleTimeoutMs } : {}),
      staticFiles: webHandler(web),
    });
  } catch (e) {
    listener?.close();
    await gateway.stop();
    timers.cancelAll();
    throw e;
  }
  const server = https;
  const httpsPort = server.port;
  const httpsAddress = (server.server.address() as { address: string }).address;
  /** A replaced certificate changes the owner's pin: said on the console and kept in the audit log. */
  const announce = (next: LoadedIdentity): void => {
    if (!next.replaced) return;
    say(`portcullis: HTTPS certificate replaced (${next.replaced.why}); new SHA-256 fingerprint ${next.identity.fingerprint}, valid until ${new Date(next.identity.notAfter).toISOString()} (was ${next.replaced.previous}) -- update your pin`);
    gateway.record({ kind: "admin", decision: "info", reason: "cert-renewed", detail: { why: next.replaced.why, previous: next.replaced.previous, fingerprint: next.identity.fingerprint, notAfter: new Date(next.identity.notAfter).toISOString() } });
  };
  const renewCertificate = async (now = Date.now()): Promise<boolean> => {
    const next = await renewIdentityIfDue(options.dataDir, identity, certPolicy, now);
    if (!next) return false;
    identity = next.identity;
    server.setIdentity(identity);
    announce(next);
    return true;
  };
  say(`portcullis: MQTT on port ${listener.port}, admin HTTPS on ${httpsAddress} port ${httpsPort}`);
  say(`portcullis: HTTPS certificate SHA-256 fingerprint ${identity.fingerprint}, valid until ${new Date(identity.notAfter).toISOString()}`);
  announce(loaded);
  timers.every(CERT_CHECK_EVERY_MS, () => {
    renewCertificate().catch((e: unknown) => say(`portcullis: HTTPS certificate renewal failed: ${e instanceof Error ? e.message : String(e)}`));
  });
  gateway.shell.start();
  if (demo && options.demoDevices !== false) await demo.startDevices(listener.port);

  return {
    gateway,
    mqttPort: listener.port,
    httpsPort,
    get fingerprint() {
      return identity.fingerprint;
    },
    renewCertificate,
    flash,
    async stop() {
      await demo?.stop();
      listener?.close();
      await server.close();
      await gateway.stop();
      konsole.close();
      timers.cancelAll();
    },
  };
}

/** Bridge mode's password (`password` or `passwordFile`) and CA file, read from the config folder. */
function homeBrokerSecrets(dir: string, config: GatewayConfig): { homeBroker?: { password?: string; caPem?: string } } {
  const h = config.homeBroker;
  if (!h) return {};
  const read = (f: string): string => readFileSync(path.resolve(dir, f), "utf8");
  const password = h.password ?? (h.passwordFile !== undefined ? read(h.passwordFile).replace(/\r?\n$/, "") : undefined);
  const caPem = h.ca !== undefined ? read(h.ca) : undefined;
  return { homeBroker: { ...(password === undefined ? {} : { password }), ...(caPem === undefined ? {} : { caPem }) } };
}

/**
 * The Node board's flash: the config's layout plus the retained-message area (src/broker-local);
 * an image made before that area existed keeps its size (retained messages then stay in RAM).
 */
function nodeFlashBytes(image: string, config: GatewayConfig): number {
  const base = flashBytesNeeded(config);
  if (existsSync(image) && statSync(image).size === base) return base;
  return base + RETAINED_AREA_BYTES;
}
