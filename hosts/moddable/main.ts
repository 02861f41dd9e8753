/**
 * Firmware entry point. Boot order, each step failing closed:
 *   config → ports → self-test (published vectors) → HTTPS identity → provisioning (gateway.json and
 *   contracts, parsed by the core) → startGateway → MQTT listener, admin HTTPS, console shell → SNTP.
 * An unprovisioned or misconfigured board keeps only the console, saying why.
 */
import "portcullis/moddable/globals";
import Debug from "debug";
import { census, memory } from "portcullis/memory";
import { parseGatewayConfig } from "portcullis/config";
import { startGateway } from "portcullis/gateway";
import { serveAdmin } from "portcullis/moddable/admin-http";
import { loadWebAssets, webHandler } from "portcullis/moddable/web";
import { createBoard, type ModdableBoard } from "portcullis/moddable/board";
import { syncTime } from "portcullis/moddable/clock";
import { readConfig, type FirmwareConfig } from "portcullis/moddable/config";
import { TLSIdentity } from "portcullis/tls-server";
import { TlsNetwork } from "portcullis/moddable/https";
import { loadServerIdentity, renewServerIdentityIfDue, type IdentityContext, type ServerIdentity } from "portcullis/moddable/tls-identity";
import { keyStoreContracts, readProvisioning } from "portcullis/moddable/provisioning";
import { selfTest } from "portcullis/moddable/selftest";

/**
 * Heap figures: used / peak / reserved bytes of the chunk and slot heaps as XS counts them, then the
 * live set after a full collection (`live`, in slots and chunk bytes). In a fixed heap XS collects only
 * when the free list is empty, so `used` includes garbage and `peak` reaches the maximum at the first
 * organic collection; the live set is what the headroom is judged on (DESIGN.md "Memory budget").
 */
function memoryLine(): string {
  const before = memory();
  Debug.gc();
  const m = memory();
  return `memory: chunk ${before.chunkUsed}/${m.chunkPeak}/${m.chunkMaximum} slots ${before.slotUsed}/${m.slotPeak}/${m.slotMaximum} (slot ${m.slotSize} B) stack ${m.stackPeakSlots}/${m.stackSlots} slots; live ${m.slotUsed / m.slotSize}/${m.slotMaximum / m.slotSize} slots ${m.chunkUsed}/${m.chunkMaximum} chunk`;
}

/** The live set after a full collection, for the boot's per-stage memory lines. */
function liveLine(stage: string): string {
  Debug.gc();
  const m = memory();
  return `boot memory: ${stage} live ${m.slotUsed / m.slotSize} slots ${m.chunkUsed} chunk`;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => (b < 16 ? "0" : "") + b.toString(16)).join("");
}

/** Console only, for a board that cannot run the gateway: answers `status` with the reason. */
function consoleOnly(board: ModdableBoard, config: FirmwareConfig, reason: string): void {
  board.console.write(`gateway not started: ${reason}\n`);
  board.console.start((line) => {
    const command = line.trim();
    if (command === "memory") board.console.write(`${memoryLine()}\n`);
    else board.console.write(`status: ${config.name} gateway not started: ${reason}\n`);
  });
}

async function boot(): Promise<void> {
  const config = readConfig();
  const board = createBoard(config);
  const say = (line: string): void => board.console.write(`${line}\n`);
  say(`portcullis firmware on ${config.name} (profile ${config.profile.name})`);

  say(liveLine("board"));
  const result = selfTest(board, board.scratch);
  const timings = Object.entries(result.timings).map(([k, v]) => `${k}=${v}ms`).join(" ");
  say(`selftest: ${result.passed} passed, ${result.failures.length} failed (${timings})`);
  for (const failure of result.failures) say(`selftest FAILED ${failure}`);
  if (result.failures.length > 0) return consoleOnly(board, config, "a port gave a wrong answer in the self-test");

  const start = board.clock.monotonic();
  const native = { generate: (name: string, from: string, to: string) => TLSIdentity.generate(name, from, to), open: (certificate: Uint8Array, key: Uint8Array) => new TLSIdentity(certificate, key) };
  let server: ServerIdentity<TLSIdentity> = loadServerIdentity({ keys: board.keys, crypto: board.crypto, clock: board.clock, native, commonName: config.name });
  say(`https identity ready in ${board.clock.monotonic() - start} ms; certificate SHA-256 ${server.fingerprint}`);

  say(liveLine("https identity"));
  const provisioning = readProvisioning(board.keys);
  if (provisioning.configText === undefined) return consoleOnly(board, config, "not provisioned (tools/provision.ts)");
  const parsed = parseGatewayConfig(provisioning.configText, provisioning.contracts, { profile: config.profile.name });
  if (!parsed.ok) {
    for (const e of parsed.errors) say(`config ${e.path || "/"}: ${e.message}`);
    return consoleOnly(board, config, "the provisioned config was rejected");
  }
  say(`provisioning: ${parsed.config.devices.length} devices, ${provisioning.contracts.length} contracts`);
  say(liveLine("config parsed"));

  const gateway = await startGateway(board, parsed.config, {
    certificateFingerprint: () => server.fingerprint,
    stage: (name) => say(liveLine(`gateway ${name}`)),
    contractStore: keyStoreContracts(board.keys, board.crypto),
    onVerificationKey(key) {
      // The serial console is the only channel on the device: shown once, never stored.
      say(`first boot: audit verification key ${hex(key)} -- copy it and keep it offline; the board does not keep it`);
    },
    onOwnerToken(token) {
      // Only on a board provisioned without a token (tools/provision.ts always sets one).
      say(`first boot: owner token ${token} -- shown once on this console; the board keeps only its hash`);
    },
  });
  say(liveLine("gateway started"));
  gateway.shell.register({ name: "memory", summary: "XS heap: used/peak/reserved bytes", run: () => memoryLine() });
  // Where the live slots are (largest groups by constructor or function): the budget's diagnostic.
  gateway.shell.register({ name: "census", summary: "XS live slots by constructor, largest first", run: () => (Debug.gc(), `${census(90)}census end`) });

  const mqtt = board.network.listen({ port: config.mqttPort, onConnection: (socket) => gateway.broker.accept(socket) });
  const admin = parsed.config.admin ?? {};
  const tls = new TlsNetwork({
    network: board.network, identity: server.identity, clock: board.clock, timers: board.timers,
    // The profile's adminSessions bounds admin.maxConnections (src/config.ts); the default stays the
    // firmware's MAX_TLS_CONNECTIONS until the lin load run has measured one session on esp32.
    ...(admin.maxConnections ? { maxConnections: admin.maxConnections } : {}),
    ...(admin.idleTimeoutMs ? { idleTimeoutMs: admin.idleTimeoutMs } : {}),
  });
  serveAdmin(tls, config.httpsPort, gateway.admin, board.timers, admin.headerTimeoutMs ?? undefined, webHandler(loadWebAssets()));
  const certPolicy = { ...(admin.certValidityDays ? { validityDays: admin.certValidityDays } : {}), ...(admin.certRenewDays ? { renewDays: admin.certRenewDays } : {}) };
  const identityContext: IdentityContext<TLSIdentity> = { keys: board.keys, crypto: board.crypto, clock: board.clock, native, commonName: config.name, policy: certPolicy };
  /** A replaced certificate changes the owner's pin: said on the console and kept in the audit log. */
  const announce = (next: ServerIdentity<TLSIdentity>): void => {
    if (!next.replaced) return;
    say(`portcullis: HTTPS certificate replaced (${next.replaced.why}); new SHA-256 fingerprint ${next.fingerprint} (was ${next.replaced.previous}) -- update your pin`);
    gateway.record({ kind: "admin", decision: "info", reason: "cert-renewed", detail: { why: next.replaced.why, previous: next.replaced.previous, fingerprint: next.fingerprint, notAfter: new Date(next.notAfter).toISOString() } });
  };
  announce(server);
  const checkCertificate = (): void => {
    try {
      const next = renewServerIdentityIfDue(identityContext, server);
      if (!next) return;
      server = next;
      tls.setIdentity(next.identity);
      announce(next);
    } catch (e) {
      say(`portcullis: HTTPS certificate renewal failed: ${String(e)}`);
    }
  };
  // Expiry is judged only on a trusted clock: once SNTP has had a minute, then daily.
  board.timers.after(60_000, checkCertificate);
  board.timers.every(86_400_000, checkCertificate);
  say(`portcullis: MQTT on port ${mqtt.port}, admin HTTPS on port ${config.httpsPort}`);
  gateway.shell.start();
  say(liveLine("admin and console"));
  say("ready");
  // Last, so a slow or failing name lookup never delays the gateway; records say "time not set" until then.
  if (config.sntp !== "") syncTime(board.clock, config.sntp, say);
}

// lin builds define xs.abortHook: name the exception that aborts the machine, then let it abort.
(globalThis as unknown as { abort?: (message: string, exception: unknown) => boolean }).abort = (message, exception) => {
  const stack = (exception as { stack?: unknown } | undefined)?.stack;
  trace(`portcullis abort: ${message}: ${String(exception)}${stack ? `\n${String(stack)}` : ""}\n`);
  return true;
};

boot().catch((e: unknown) => {
  trace(`portcullis boot failed: ${String(e)}\n`);
});
