/**
 * The gateway: wires the broker, the policy engine, the audit log, the outbound uplinks, the console
 * and the admin API over one Board. Everything here is portable; the hosts only build the Board.
 *
 *   device ──MQTT──▶ Broker ──onPublish──▶ PolicyEngine ──decisions──▶ AuditLog (every decision)
 *                                              │ allow / minimize
 *                                              ▼
 *                                         Outbound (HPKE envelope, queue) ──Uplink──▶ vendor
 */
import type { Board } from "./ports.js";
import type { AuditEvent } from "./audit/types.js";
import type { FlowDecision } from "./policy/types.js";
import { type GatewayConfig, checkDeviceSecret } from "./config.js";
import { Broker } from "./mqtt/broker.js";
import { Shell } from "./console/shell.js";
import { AdminApi } from "./admin/api.js";
import { toBase64, utf8 } from "./util/bytes.js";
import { openAudit, type AuditHandle } from "./gateway/audit.js";
import { openPolicy, type ContractStore, type PolicyHandle } from "./gateway/policy.js";
import { openOutbound, type OutboundHandle } from "./gateway/outbound.js";
import { registerCommands } from "./gateway/commands.js";
import { DeviceRegistry } from "./gateway/devices.js";
import { openIncidents } from "./incident/wiring.js";
import { AlarmDetector } from "./incident/alarms.js";
import { DEFAULT_INCIDENT_RESPONSE } from "./incident/deadlines.js";
import { registerIncidentCommands } from "./incident/commands.js";
import { incidentRoutes } from "./incident/routes.js";
import { exitIntegration } from "./incident/exit.js";
import type { IncidentManager } from "./incident/manager.js";

export interface GatewayHooks {
  /** First boot only: the audit log's initial sealing key, to be kept offline by the owner. */
  onVerificationKey(key: Uint8Array): void;
  /** First boot only: the owner's bearer token for the admin API (the device keeps only its hash). */
  onOwnerToken(token: string): void;
  /** Keeps approved contract texts across reboots, so change review can diff against them. */
  readonly contractStore?: ContractStore;
  /** The HTTPS certificate fingerprint, shown by `status` (a function when the host may renew it). */
  readonly certificateFingerprint?: string | (() => string);
}

export interface Gateway {
  readonly broker: Broker;
  readonly shell: Shell;
  readonly admin: AdminApi;
  readonly audit: AuditHandle;
  readonly policy: PolicyHandle;
  readonly outbound: OutboundHandle;
  /** Disabled device credentials (CONNACK 5), persisted in the KeyStore. */
  readonly devices: DeviceRegistry;
  /** Incidents, rebuilt from the log at boot. */
  readonly incidents: IncidentManager;
  /** Appends an audit record; failures make the gateway fail closed. */
  record(event: AuditEvent): void;
  status(): Record<string, unknown>;
  /** Seals the log, closes uplinks and sessions. */
  stop(): Promise<void>;
}

const TOKEN_KEY = "owner-token";
/** A well-formed secret no password matches (its digest is all zeros): used for unknown client ids. */
const UNKNOWN_DEVICE_SECRET = "hmac-sha256:AAAAAAAAAAAAAAAAAAAAAA==:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/** Loads the owner token's hash, creating the token at first boot. */
function ownerTokenHash(board: Board, hooks: GatewayHooks): Uint8Array {
  const existing = board.keys.get(TOKEN_KEY);
  if (existing) return existing;
  const raw = new Uint8Array(32);
  board.random.fill(raw);
  const token = "pct_" + toBase64(raw, true);
  const hash = board.crypto.sha256(utf8(token));
  board.keys.set(TOKEN_KEY, hash);
  hooks.onOwnerToken(token);
  return hash;
}

/** Boots the gateway on a board. @throws Error when the audit log cannot be opened (nothing may run unaudited). */
export async function startGateway(board: Board, config: GatewayConfig, hooks: GatewayHooks): Promise<Gateway> {
  const started = board.clock.monotonic();
  const audit = await openAudit(board, config, hooks);
  // The gateway's own alarms (src/incident/alarms.ts): raised as records and printed at once.
  let say: (line: string) => void = (line) => board.console.write(line + "\n");
  const detector = new AlarmDetector({
    clock: board.clock,
    thresholds: (config.incidentResponse ?? DEFAULT_INCIDENT_RESPONSE).alarms,
    raise: (e, text) => {
      audit.record(e);
      say(`ALARM: ${text} (\`incident open <title> --alarm <seq>\`; see \`audit 5 alarm\`)`);
    },
  });
  const record = (event: AuditEvent): void => {
    audit.record(event);
    detector.event(event);
  };
  const policy = openPolicy(board, config, record, hooks.contractStore);
  const outbound = openOutbound(board, config, policy, record, () => audit.failClosed);
  const devices = new Map(config.devices.map((d) => [d.id, d]));
  // The broker is built below; a disable closes the device's session through it.
  let brokerRef: Broker | undefined;
  const deviceRegistry = new DeviceRegistry({ keys: board.keys, known: config.devices.map((d) => d.id), append: (e) => audit.log.append(e), disconnect: (id) => void brokerRef?.disconnect(id) });

  /**
   * Records one decision and, for an allowed flow, forwards it only once a durable record covers it
   * (issue 13, "Nothing leaves before it is recorded"), and only if the log is not failing closed then.
   * Rejects when the message was not recorded or not forwarded for that reason (so no PUBACK).
   */
  const handleDecision = async (device: string, topic: string, d: FlowDecision, bytesIn: number): Promise<void> => {
    detector.flow(device, d.integration, d.verdict, d.reason, d.fieldsDropped);
    if (d.verdict === "deny" || d.integration === null || !d.payload || d.vendorTopic === undefined || d.destination === undefined) {
      await audit.flow(device, topic, d, bytesIn);
      return;
    }
    if (audit.failClosed) {
      // Fail closed: nothing leaves that the log could not record.
      await audit.flow(device, topic, { ...d, verdict: "deny", reason: "audit-unavailable" }, bytesIn);
      return;
    }
    await audit.flow(device, topic, d, bytesIn);
    if (audit.failClosed) throw new Error("audit log fails closed: message recorded but not forwarded");
    outbound.send(d.integration, d.destination, d.vendorTopic, d.payload);
  };

  const broker = new Broker({
    clock: board.clock,
    timers: board.timers,
    ...(config.broker ? { limits: config.broker } : {}),
    authenticate(clientId, username, password) {
      const dev = devices.get(clientId);
      // The same HMAC work for unknown ids, so timing does not tell which client ids exist.
      const ok = checkDeviceSecret(board.crypto, dev?.secret ?? UNKNOWN_DEVICE_SECRET, password ?? new Uint8Array(0));
      return ok && dev !== undefined && password !== undefined && (username === undefined || username === dev.username) && !deviceRegistry.isDisabled(clientId);
    },
    authorizeSubscribe(clientId, filter) {
      const dev = devices.get(clientId);
      if (!dev) return false;
      return filter === `cmd/${clientId}` || filter.startsWith(`cmd/${clientId}/`) || dev.subscribe.includes(filter);
    },
    /**
     * Resolves once every decision for the message is durably recorded (and allowed ones handed to the
     * outbound queue); a broker that awaits it sends PUBACK only then. A rejection is also handled
     * here, so a broker that ignores the promise leaves no unhandled rejection behind.
     */
    onPublish(clientId, topic, payload) {
      const ds = policy.engine.evaluate({ device: clientId, topic, payload });
      // One decision is the common case: no Promise.all (and its array) on the per-message path.
      const done = ds.length === 1 ? handleDecision(clientId, topic, ds[0]!, payload.length) : Promise.all(ds.map((d) => handleDecision(clientId, topic, d, payload.length))).then(() => undefined);
      done.catch(() => undefined);
      return done;
    },
    onEvent: record,
  });
  brokerRef = broker;
  // Deadline and review alarms: checked each minute (a record only when a level is newly reached).
  const deadlineTimer = board.timers.every(60_000, () => {
    const st = audit.log.stats();
    detector.logFill(st.bytesUsed, st.bytesTotal, audit.held);
    void incidents.tick().catch(() => undefined);
  });
  const incidents = openIncidents(board, config, { audit, policy, outbound, devices: deviceRegistry, connected: () => broker.clients().map((c) => c.clientId) });

  const shell = new Shell(board.console);
  say = (line) => shell.say(line);
  const tokenHash = ownerTokenHash(board, hooks);
  const cert = hooks.certificateFingerprint ?? "none";
  const fingerprint = typeof cert === "string" ? () => cert : cert;

  const status = (): Record<string, unknown> => {
    const s = audit.log.stats();
    return {
      name: config.name,
      uptimeSeconds: Math.floor((board.clock.monotonic() - started) / 1000),
      timeSet: board.clock.isSet(),
      devicesConnected: broker.clients().length,
      devicesConfigured: config.devices.length,
      integrations: policy.summary(),
      audit: { records: s.records, nextSeq: audit.log.nextSeq, flashUsedBytes: s.bytesUsed, flashTotalBytes: s.bytesTotal, failClosed: audit.failClosed, hold: audit.held },
      outbound: outbound.summary(),
      certificateFingerprint: fingerprint(),
      incidents: incidents.list().filter((i) => i.state !== "reviewed").map((i) => ({
        id: i.id, state: i.state, title: i.title,
        deadlines: incidents.deadlines(i).list.filter((d) => d.leftMs !== undefined).map((d) => ({ party: d.id, leftMs: d.leftMs })),
      })),
    };
  };

  const admin = new AdminApi({
    crypto: board.crypto,
    clock: board.clock,
    throttle: { ...(config.admin?.authFailures ? { failures: config.admin.authFailures } : {}), ...(config.admin?.authWindowMs ? { windowMs: config.admin.authWindowMs } : {}) },
    audit: audit.log,
    tokenHash,
    onEvent: record,
    exportJsonl: (from, to) => audit.exportJsonl(from, to),
    checkpoint: () => audit.log.flushSummaries().then(() => audit.log.checkpoint()),
    beforeRead: () => audit.log.flushSummaries(),
    status,
    routes: incidentRoutes(incidents, { exportJsonl: (from, to) => audit.exportJsonl(from, to), beforeRead: () => audit.log.flushSummaries(), exit: (id, actor) => exitIntegration(board, { audit, policy, outbound }, id, actor) }),
  });

  const gateway: Gateway = {
    broker,
    shell,
    admin,
    audit,
    policy,
    outbound,
    devices: deviceRegistry,
    incidents,
    record,
    status,
    async stop() {
      board.timers.cancel(deadlineTimer);
      outbound.close();
      broker.close();
      await audit.close();
    },
  };
  registerCommands(gateway, board);
  registerIncidentCommands(gateway, board);
  audit.onAlarm((text) => shell.say(`ALARM: ${text}`));
  incidents.onAlarm((text) => shell.say(`ALARM: ${text}`));
  record({ kind: "boot", decision: "info", detail: { devices: config.devices.length, contracts: config.contracts.length } });
  // A quarantine survives reboots in the policy engine; its queues stay frozen with it.
  for (const i of policy.engine.integrations()) if (i.state === "quarantined") outbound.freeze(i.id, "quarantine (at boot)");
  outbound.start();
  return gateway;
}
