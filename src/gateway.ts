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
import { type GatewayConfig, brokerLimits, checkDeviceSecret } from "./config.js";
import { Broker, type PublishAck } from "./mqtt/broker.js";
import { AGGREGATE_WINDOW_MS, Tally } from "./mqtt/tally.js";
import { GAUGE_NAMES, LimitHits, type GaugeName, type GaugeStatus } from "./profiles.js";
import { Shell } from "./console/shell.js";
import { AdminApi } from "./admin/api.js";
import { toBase64, utf8 } from "./util/bytes.js";
import { openAudit, type AuditHandle } from "./gateway/audit.js";
import { openPolicy, type ContractStore, type PolicyHandle } from "./gateway/policy.js";
import { openOutbound, type OutboundHandle } from "./gateway/outbound.js";
import { registerCommands } from "./gateway/commands.js";
import { localBrokerOptions, openRetainedArea } from "./broker-local/options.js";
import { openDeviceList } from "./gateway/device-list.js";
import { createActions, type OwnerActions } from "./gateway/actions.js";
import { OWNER_ROUTES } from "./admin/owner-routes.js";
import { DEVICE_ROUTES } from "./admin/device-routes.js";
import { DeviceRegistry } from "./gateway/devices.js";
import { openIncidents } from "./incident/wiring.js";
import { AlarmDetector } from "./incident/alarms.js";
import { DEFAULT_INCIDENT_RESPONSE } from "./incident/deadlines.js";
import { registerIncidentCommands } from "./incident/commands.js";
import { EXIT_ROUTES, INCIDENT_ROUTES, type IncidentRouteContext } from "./incident/routes.js";
import { exitIntegration, exitedIntegrations, skipExited } from "./incident/exit.js";
import type { IncidentManager } from "./incident/manager.js";
import { HomeBridge } from "./bridge/home-broker.js";
import { meter } from "./util/meter.js";

export interface GatewayHooks {
  /** First boot only: the audit log's initial sealing key, to be kept offline by the owner. */
  onVerificationKey(key: Uint8Array): void;
  /** First boot only: the owner's bearer token for the admin API (the device keeps only its hash). */
  onOwnerToken(token: string): void;
  /** Keeps approved contract texts across reboots, so change review can diff against them. */
  readonly contractStore?: ContractStore;
  /** Admin sessions held at once; default the board profile's adminSessions × 4 (a phone, a laptop, a script each). */
  readonly maxAdminSessions?: number;
  /** The HTTPS certificate fingerprint, shown by `status` (a function when the host may renew it). */
  readonly certificateFingerprint?: string | (() => string);
  /** Bridge mode: the home broker's password and CA as the host resolved them (`passwordFile`, `ca`). */
  readonly homeBroker?: { readonly password?: string; readonly caPem?: string };
  /** Called after each boot stage (audit, policy, outbound, broker, incidents, admin): the firmware measures its heap there. */
  readonly stage?: (name: string) => void;
}

export interface Gateway {
  readonly broker: Broker;
  readonly shell: Shell;
  readonly admin: AdminApi;
  readonly audit: AuditHandle;
  readonly policy: PolicyHandle;
  readonly outbound: OutboundHandle;
  /** The owner's actions (console and admin API call the same ones). */
  readonly actions: OwnerActions;
  /** Disabled device credentials (CONNACK 5), persisted in the KeyStore. */
  readonly devices: DeviceRegistry;
  /** Incidents, rebuilt from the log at boot. */
  readonly incidents: IncidentManager;
  /** Bridge mode's link to the home broker, when gateway.json has `homeBroker`. */
  readonly bridge: HomeBridge | undefined;
  /** Appends an audit record; failures make the gateway fail closed. */
  record(event: AuditEvent): void;
  status(): Record<string, unknown>;
  /** Seals the log, closes uplinks and sessions. */
  stop(): Promise<void>;
}

const TOKEN_KEY = "owner-token";
/** How often the audit log's fill is checked for the `log-near-full` alarm (under a legal hold). */
export const LOG_FILL_CHECK_MS = 5_000;
/** Sectors the audit log leaves free below ordinary records (src/audit/log.ts KEEP_NORMAL). */
const AUDIT_RESERVE_SECTORS = 2;
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
  // Fail closed before anything runs: a config that expects bridge mode on a board without it must not
  // run as if those devices did not exist.
  if (config.homeBroker && !board.homeBroker) throw new Error("gateway.json has homeBroker, but this board has no home-broker client (bridge mode)");
  const started = board.clock.monotonic();
  const stage = hooks.stage ?? ((): void => undefined);
  const audit = await openAudit(board, config, hooks);
  stage("audit");
  const hits = new LimitHits(() => board.clock.now());
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
    // A queue that overflows (drop-oldest, or a refusal under drop-newest) reached its byte limit: the
    // queue records the drop itself; `status` counts it.
    if (event.kind === "queue" && event.decision === "deny" && event.reason === "overflow") hits.hit("queueBytes");
    audit.record(event);
    detector.event(event);
  };
  // Integrations ended by `exit` stay ended across reboots while their contract file remains.
  const afterExit = skipExited(board.keys, config.contracts);
  for (const x of afterExit.exited) say(x.seq !== null ? `${x.id}: exited (deletion record ${x.seq}); its contract is not loaded. Remove ${x.source} to end this.` : `${x.id}: its exit was cut short (no deletion record): loaded quarantined; run \`exit ${x.id}\` again.`);
  const policy = openPolicy(board, { ...config, contracts: afterExit.contracts }, record, hooks.contractStore);
  stage("policy");
  const outbound = openOutbound(board, config, policy, record, () => audit.failClosed);
  stage("outbound");
  const devices = openDeviceList(board.keys, config.devices);
  // The broker is built below; a disable closes the device's session through it.
  let brokerRef: Broker | undefined;
  const deviceRegistry = new DeviceRegistry({ keys: board.keys, known: () => devices.list().map((d) => d.id), append: (e) => audit.log.append(e), disconnect: (id) => void brokerRef?.disconnect(id) });
  const limits = config.limits;
  /** Limit hits that no other record covers (the pipeline), one record per limit and minute. */
  const limitTally = new Tally(board.timers, AGGREGATE_WINDOW_MS, GAUGE_NAMES.length, record);
  /**
   * Bytes of device messages accepted by the broker and not yet recorded and queued (issue 9, "a
   * bounded outbound pipeline"). At `pipelineBytes` every device socket stops being read until it
   * falls to three quarters of that.
   */
  let pipelineUsed = 0;
  let pipelinePeak = 0;
  /** Devices paused for the pipeline or a congested queue read again once both have room. */
  const resumeIfRoom = (): void => {
    if (brokerRef?.paused && pipelineUsed <= (limits.pipelineBytes * 3) / 4 && !outbound.congested()) brokerRef.resumeAll();
  };
  /** While devices are paused for a congested queue: checks every few ms whether it has drained. */
  let congestionTimer: ReturnType<typeof board.timers.every> | undefined;
  const watchCongestion = (): void => {
    if (congestionTimer !== undefined) return;
    congestionTimer = board.timers.every(5, () => {
      if (outbound.congested()) return;
      board.timers.cancel(congestionTimer!);
      congestionTimer = undefined;
      resumeIfRoom();
    });
  };

  /**
   * Records one decision and, for an allowed flow, forwards it only once a durable record covers it
   * (issue 13, "Nothing leaves before it is recorded"), and only if the log is not failing closed then.
   * Rejects when the message was not recorded or not forwarded for that reason (so no PUBACK).
   */
  const handleDecision = (device: string, topic: string, d: FlowDecision, bytesIn: number, held = 0, ack?: PublishAck): Promise<void> => {
    const t0 = meter.start();
    let recorded: Promise<unknown>;
    let forward = false;
    try {
      detector.flow(device, d.integration, d.verdict, d.reason, d.fieldsUndeclared);
      forward = !(d.verdict === "deny" || d.integration === null || !d.payload || d.vendorTopic === undefined || d.destination === undefined);
      // Fail closed: nothing leaves that the log could not record.
      const refused = forward && audit.failClosed;
      if (refused) forward = false;
      recorded = audit.flow(device, topic, refused ? { ...d, verdict: "deny", reason: "audit-unavailable" } : d, bytesIn);
    } catch (e) {
      recorded = Promise.reject(e);
    }
    meter.stop("audit", t0);
    // The wait is an async function of four parameters: a suspended one keeps its locals in closure
    // cells, so the per-message state held while the record becomes durable is only these.
    return afterRecord(recorded, forward ? d : undefined, held, ack);
  };
  /**
   * Waits for the record; then, for an allowed flow, queues it (PUBACK only once queued); releases `held`.
   * With `ack` (the broker's path) it settles that instead and never rejects; without, it rejects.
   */
  const afterRecord = async (recorded: Promise<unknown>, d: FlowDecision | undefined, held: number, ack: PublishAck | undefined): Promise<void> => {
    try {
      try {
        await recorded;
        if (d !== undefined) {
          if (audit.failClosed) throw new Error("audit log fails closed: message recorded but not forwarded");
          // PUBACK only once it is queued (or refused with a record), so the pipeline bound holds the devices.
          await queueAllowed(d);
        }
      } finally {
        // `held`: the message's bytes leave the pipeline with its only decision (see ingest).
        if (held > 0) release(held);
      }
    } catch (e) {
      if (ack === undefined) throw e;
      ack.refuse(e);
      return;
    }
    ack?.accept();
  };
  const queueAllowed = (d: FlowDecision): Promise<void> => {
    const t1 = meter.start();
    const queued = outbound.send(d.integration!, d.destination!, d.vendorTopic!, d.payload!);
    meter.stop("queue", t1);
    return queued;
  };

  /**
   * The pipeline of every device message, direct or bridged: resolves once every decision is durably
   * recorded (and allowed ones handed to the outbound queue); a broker that awaits it sends PUBACK
   * only then. A rejection is also handled here, so a caller that ignores the promise leaves no
   * unhandled rejection behind.
   */
  const ingest = (clientId: string, topic: string, payload: Uint8Array, ack?: PublishAck): Promise<void> => {
    const held = payload.length + topic.length;
    pipelineUsed += held;
    if (pipelineUsed > pipelinePeak) pipelinePeak = pipelineUsed;
    if (pipelineUsed >= limits.pipelineBytes && !broker.paused) {
      broker.pauseAll();
      hits.hit("pipelineBytes");
      limitTally.add("pipelineBytes", { kind: "queue", decision: "info", reason: "limit", detail: { limit: "pipelineBytes", max: limits.pipelineBytes, action: "devices paused" } });
    }
    const t0 = meter.start();
    const ds = policy.engine.evaluate({ device: clientId, topic, payload });
    meter.stop("policy", t0);
    // One decision is the common case: it releases its own bytes when it settles, with no closure,
    // Promise.all or extra promise per message.
    if (ds.length === 1) {
      const one = handleDecision(clientId, topic, ds[0]!, payload.length, held, ack);
      // With `ack`, afterRecord never rejects: no handler (and no derived promise) per message.
      if (ack === undefined) one.then(undefined, ignore);
      return one;
    }
    const done = Promise.all(ds.map((d) => handleDecision(clientId, topic, d, payload.length))).then(() => undefined);
    const settled = (): void => release(held);
    done.then(settled, settled);
    if (ack !== undefined) done.then(() => ack.accept(), (e: unknown) => ack.refuse(e));
    return done;
  };
  /** A message's bytes leave the pipeline (its decisions settled): devices paused for room may read again. */
  const release = (held: number): void => {
    pipelineUsed -= held;
    if (!broker.paused && outbound.congested()) {
      // A queue overflowed: devices wait (no reads, PUBACKs later) while the uplink drains it.
      broker.pauseAll();
      limitTally.add("queueBytes", { kind: "queue", decision: "info", reason: "limit", detail: { limit: "queueBytes", action: "devices paused until the queue drains to half" } });
      watchCongestion();
    } else resumeIfRoom();
  };

  const broker = new Broker({
    clock: board.clock,
    timers: board.timers,
    limits: brokerLimits(config),
    onLimit: (name) => hits.hit(name),
    authenticate(clientId, username, password) {
      const dev = devices.get(clientId);
      // The same HMAC work for unknown ids, so timing does not tell which client ids exist.
      const ok = checkDeviceSecret(board.crypto, dev?.secret ?? UNKNOWN_DEVICE_SECRET, password ?? new Uint8Array(0));
      return ok && dev !== undefined && password !== undefined && (username === undefined || username === dev.username) && !deviceRegistry.isDisabled(clientId);
    },
    // ACLs (cmd/<id>/#, devices[].subscribe, devices[].acl, acl.roles) and local-routing accounting.
    ...localBrokerOptions(config, audit.log),
    // Retained messages persisted in their own flash area, when the board's flash has one.
    ...openRetainedArea(board, config, record),
    onPublish: (clientId, topic, payload) => ingest(clientId, topic, payload),
    // The devices' own PUBLISHes: settled through the session's PublishAck, no promise chain per message.
    onPublishAck: (clientId, topic, payload, _qos, ack) => void ingest(clientId, topic, payload, ack),
    onEvent: record,
  });
  brokerRef = broker;
  stage("broker");
  let bridge: HomeBridge | undefined;
  if (config.homeBroker) {
    bridge = new HomeBridge({
      port: board.homeBroker!,
      clock: board.clock,
      timers: board.timers,
      config: config.homeBroker,
      ...(hooks.homeBroker?.password === undefined ? {} : { password: hooks.homeBroker.password }),
      ...(hooks.homeBroker?.caPem === undefined ? {} : { caPem: hooks.homeBroker.caPem }),
      ingest(device, topic, payload) {
        if (deviceRegistry.isDisabled(device)) {
          record({ kind: "flow", decision: "deny", device, topic, reason: "device-disabled", detail: { via: "home-broker" } });
          return Promise.resolve();
        }
        return ingest(device, topic, payload);
      },
      record,
    });
  }
  // Deadline and review alarms: checked each minute (a record only when a level is newly reached).
  const deadlineTimer = board.timers.every(60_000, () => {
    void incidents.tick().catch(() => undefined);
  });
  // The log's fill under hold: checked every LOG_FILL_CHECK_MS (stats are counters, no flash read).
  const fillTimer = board.timers.every(LOG_FILL_CHECK_MS, () => {
    // Measured against what ordinary records may fill: the log keeps AUDIT_RESERVE_SECTORS free for
    // its own priority records, so a small partition refuses records well before 90% of its bytes.
    const st = audit.log.stats();
    detector.logFill(st.bytesUsed, Math.max(board.flash.sectorSize, st.bytesTotal - AUDIT_RESERVE_SECTORS * board.flash.sectorSize), audit.held);
  });
  const incidents = openIncidents(board, config, { audit, policy, outbound, devices: deviceRegistry, connected: () => broker.clients().map((c) => c.clientId) });
  stage("incidents");

  const shell = new Shell(board.console);
  say = (line) => shell.say(line);
  const tokenHash = ownerTokenHash(board, hooks);
  const cert = hooks.certificateFingerprint ?? "none";
  const fingerprint = typeof cert === "string" ? () => cert : cert;

  /** Each limit `status` reports: used/limit and when it was last reached. */
  const gauges = (): Record<GaugeName, GaugeStatus> => {
    const u = broker.usage();
    const out = outbound.summary();
    let queued = 0;
    let queueMax = 0;
    for (const [key, st] of Object.entries(out)) {
      queued += st.queuedBytes;
      queueMax += policy.engine.contract(key.slice(0, key.indexOf("/")))?.terms.queue.maxBytes ?? 0;
    }
    return {
      sessions: hits.gauge("sessions", u.sessions, u.maxSessions),
      pending: hits.gauge("pending", u.pending, u.maxPending),
      integrations: hits.gauge("integrations", policy.engine.loaded, limits.integrations),
      pipelineBytes: hits.gauge("pipelineBytes", pipelineUsed, limits.pipelineBytes),
      queueBytes: hits.gauge("queueBytes", queued, queueMax),
    };
  };

  const status = (): Record<string, unknown> => {
    const s = audit.log.stats();
    return {
      name: config.name,
      uptimeSeconds: Math.floor((board.clock.monotonic() - started) / 1000),
      timeSet: board.clock.isSet(),
      devicesConnected: broker.clients().length,
      devicesConfigured: devices.list().length,
      integrations: [...policy.summary(), ...Object.entries(exitedIntegrations(board.keys)).filter(([, seq]) => seq !== null).map(([id, seq]) => ({ id, state: "exited", version: null, deletionSeq: seq }))],
      audit: { records: s.records, nextSeq: audit.log.nextSeq, flashUsedBytes: s.bytesUsed, flashTotalBytes: s.bytesTotal, failClosed: audit.failClosed, hold: audit.held },
      outbound: outbound.summary(),
      profile: config.profile,
      limits: { ...gauges(), pipelinePeakBytes: pipelinePeak, devicesPaused: broker.paused },
      certificateFingerprint: fingerprint(),
      ...(bridge ? { homeBroker: bridge.status() } : {}),
      incidents: incidents.list().filter((i) => i.state !== "reviewed").map((i) => ({
        id: i.id, state: i.state, title: i.title,
        deadlines: incidents.deadlines(i).list.filter((d) => d.leftMs !== undefined).map((d) => ({ party: d.id, leftMs: d.leftMs })),
      })),
    };
  };

  const actions = createActions({ policy, outbound, audit, broker, devices, crypto: board.crypto, random: board.random, clock: board.clock, record, isDisabled: (id) => deviceRegistry.isDisabled(id), ...(config.utcOffsetMinutes !== undefined ? { utcOffsetMinutes: config.utcOffsetMinutes } : {}) });
  stage("actions");
  // The route tables are module-level and frozen (in flash on the device); only their contexts are built here.
  const incR: IncidentRouteContext = { m: incidents, o: { exportJsonl: (from, to) => audit.exportJsonl(from, to), beforeRead: () => audit.log.flushSummaries(), exit: (id, actor) => exitIntegration(board, { audit, policy, outbound }, id, actor), follow: { timers: board.timers, clock: board.clock, nextSeq: () => audit.log.nextSeq } } };
  stage("routes");
  const admin = new AdminApi({
    crypto: board.crypto,
    clock: board.clock,
    throttle: { ...(config.admin?.authFailures ? { failures: config.admin.authFailures } : {}), ...(config.admin?.authWindowMs ? { windowMs: config.admin.authWindowMs } : {}) },
    audit: audit.log,
    tokenHash,
    auth: {
      keys: board.keys,
      random: board.random,
      timers: board.timers,
      issuer: `Portcullis ${config.name}`,
      ...(config.admin?.sessionIdleMs ? { sessionIdleMs: config.admin.sessionIdleMs } : {}),
      ...(config.admin?.sessionMaxMs ? { sessionMaxMs: config.admin.sessionMaxMs } : {}),
      maxSessions: hooks.maxAdminSessions ?? config.limits.adminSessions * 4,
      // The serial console is physical presence: the first owner is made with the code shown there.
      onSetupCode: (code) => shell.say(`first boot: no admin account yet. Setup code ${code} (single use, 1 h): POST /api/v1/setup {"code", "account", "password"} or open the admin page`),
      onAlarm: (text) => shell.say(`ALARM: ${text}`),
    },
    onEvent: record,
    exportJsonl: (from, to) => audit.exportLines(from, to),
    checkpoint: () => audit.log.flushSummaries().then(() => audit.log.checkpoint()),
    beforeRead: () => audit.log.flushSummaries(),
    status,
    tables: [
      { table: OWNER_ROUTES, ctx: actions }, { table: DEVICE_ROUTES, ctx: deviceRegistry }, { table: EXIT_ROUTES, ctx: incR }, { table: INCIDENT_ROUTES, ctx: incR },
    ],
  });

  const gateway: Gateway = {
    broker,
    shell,
    admin,
    audit,
    policy,
    outbound,
    actions,
    devices: deviceRegistry,
    incidents,
    bridge,
    record,
    status,
    async stop() {
      board.timers.cancel(deadlineTimer);
      board.timers.cancel(fillTimer);
      bridge?.close();
      if (congestionTimer !== undefined) board.timers.cancel(congestionTimer);
      admin.close();
      outbound.close();
      broker.close();
      limitTally.flushAll();
      await audit.close();
    },
  };
  stage("admin");
  registerCommands(gateway, board);
  registerIncidentCommands(gateway, board);
  stage("commands");
  audit.onAlarm((text) => shell.say(`ALARM: ${text}`));
  if (devices.problem) {
    shell.say(`ALARM: ${devices.problem}`);
    record({ kind: "alarm", decision: "info", reason: "device-list-unreadable" });
  }
  record({ kind: "boot", decision: "info", detail: { devices: config.devices.length, contracts: config.contracts.length, profile: config.profile } });
  // A contract rejected at load blocks its integration: an alarm, on the console and in the log.
  for (const i of policy.engine.integrations()) {
    if (i.blocked === undefined) continue;
    if (i.overLimit) hits.hit("integrations");
    record({ kind: "alarm", decision: "deny", integration: i.id, reason: "integration-blocked", detail: { why: i.blocked, source: i.source.slice(0, 120), overLimit: i.overLimit } });
    shell.say(`ALARM: integration ${i.id} blocked: ${i.blocked}`);
  }
  incidents.onAlarm((text) => shell.say(`ALARM: ${text}`));
  // A quarantine survives reboots in the policy engine; its queues stay frozen with it.
  for (const i of policy.engine.integrations()) if (i.state === "quarantined") outbound.freeze(i.id, "quarantine (at boot)");
  outbound.start();
  stage("outbound start");
  bridge?.start();
  return gateway;
}

/** Marks a promise's rejection handled where the caller may drop it (one function, not a closure per message). */
function ignore(): void {}
