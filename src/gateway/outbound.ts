/**
 * The gateway's way out: one UplinkManager per integration destination, each with its HPKE sealer and
 * a durable queue in its own slot of the queue area on flash (a FlashRing, the audit log's machinery).
 * Slots are assigned to destinations once and remembered in the key store, so a reboot finds each
 * queue where it left it. When the contract in force changes (approve, reject, remove), the routes of
 * that integration are rebuilt from it: a moved destination, a new vendor key or new pins apply from
 * the next message on, and what was queued is kept and sealed to the new key at send time.
 *
 * Flash layout (see SPEC.md): [ audit log: audit.partitionBytes ][ queue slot 0 ] … [ queue slot QUEUE_SLOTS-1 ]
 */
import type { Board } from "../ports.js";
import type { AuditEvent } from "../audit/types.js";
import type { Contract, Destination } from "../policy/contract.js";
import type { PolicyHandle } from "./policy.js";
import type { GatewayConfig } from "../config.js";
import { FlashRing } from "../flash/ring.js";
import { FlashQueue } from "../outbound/flash-queue.js";
import type { QueueDrop } from "../outbound/queue.js";
import { EnvelopeSealer } from "../outbound/envelope.js";
import { UplinkManager, type UplinkStats } from "../outbound/uplink-manager.js";
import { fromBase64, fromUtf8, utf8 } from "../util/bytes.js";

/** The audit partition (1 MiB by default, as the firmware's partition table declares). */
export const AUDIT_PARTITION_BYTES = 1024 * 1024;
/** Queue slots after the audit partition: at most this many integration destinations queue on flash. */
export const QUEUE_SLOTS = 4;
export const QUEUE_SLOT_BYTES = 64 * 1024;
/** The flash a board must provide for the default layout. */
export const FLASH_BYTES_NEEDED = AUDIT_PARTITION_BYTES + QUEUE_SLOTS * QUEUE_SLOT_BYTES;

/** The audit partition's size under a config (gateway.json `audit.partitionBytes`, default 1 MiB). */
export function auditPartitionBytes(config: GatewayConfig): number {
  return config.audit.partitionBytes ?? AUDIT_PARTITION_BYTES;
}

/** The flash a board must provide for a config's layout: the audit partition and the queue slots. */
export function flashBytesNeeded(config: GatewayConfig): number {
  return auditPartitionBytes(config) + QUEUE_SLOTS * QUEUE_SLOT_BYTES;
}
/**
 * The queue ring's group commit: the pushes and cursor steps of this window share one flash program
 * (on the Node board, whose flash has `durable()`, the window closes at the end of the job and the
 * fdatasyncs of a turn are shared); a push resolves, and its device gets its PUBACK, once it is durable.
 */
export const QUEUE_GROUP_COMMIT_MS = 2;
/** Ring tags: the audit log uses 0xA1; queue slot i uses 0x10 + i. */
const QUEUE_TAG_BASE = 0x10;
const SLOTS_KEY = "queue-slots";

export interface OutboundHandle {
  /**
   * Queues an allowed, minimized message for its destination. Resolves (never rejects) once it is
   * durably queued, or refused or dropped with a record: the broker's PUBACK waits for it, so the
   * pipeline's back-pressure holds the devices while the queue is busy.
   */
  send(integration: string, destination: string, vendorTopic: string, payload: Uint8Array): Promise<void>;
  start(): void;
  /** Stops sending for an integration and keeps its queue (incident containment). */
  freeze(integration: string, reason: string): void;
  thaw(integration: string, reason: string): void;
  /** Stops sending and drops the queue (consent withdrawn). */
  purge(integration: string, reason: string): Promise<void>;
  summary(): Record<string, UplinkStats>;
  /** Some destination's queue overflowed and is still draining (see UplinkManager.congested). */
  congested(): boolean;
  close(): void;
}

interface Route {
  readonly manager: UplinkManager;
  readonly ring: FlashRing;
  readonly queue: FlashQueue;
  /** What the manager was built from: a route is rebuilt when this changes. */
  readonly built: string;
  readonly queueTerms: string;
}

/** Everything of a contract a route depends on (version: the envelope's info; the destination: where, how, which key). */
function routeBasis(contract: Contract, dest: Destination): string {
  return JSON.stringify([contract.version, dest.host, dest.port, dest.pins ?? [], dest.encryption, dest.publicKey ?? "", dest.keyId ?? ""]);
}

/** Loads or extends the slot table (destination key → slot), persisted in the key store. */
function slotTable(board: Board): Record<string, number> {
  const raw = board.keys.get(SLOTS_KEY);
  if (!raw) return {};
  try {
    const v: unknown = JSON.parse(fromUtf8(raw));
    return typeof v === "object" && v !== null ? (v as Record<string, number>) : {};
  } catch {
    return {};
  }
}

/**
 * The outbound side as one instance (its methods live with the class, in flash on the device) rather
 * than a handle of closures built per boot. Each route's uplink window is the config's
 * `limits.uplinkWindow` (the board profile's, or lower).
 */
class Outbound implements OutboundHandle {
  readonly #board: Board;
  readonly #config: GatewayConfig;
  readonly #policy: PolicyHandle;
  readonly #record: (e: AuditEvent) => void;
  readonly #failClosed: () => boolean;
  readonly #routes = new Map<string, Route>();
  readonly #slots: Record<string, number>;
  readonly #auditBytes: number;
  readonly #usableSlots: number;
  #started = false;

  constructor(board: Board, config: GatewayConfig, policy: PolicyHandle, record: (e: AuditEvent) => void, failClosed: () => boolean) {
    this.#board = board;
    this.#config = config;
    this.#policy = policy;
    this.#record = record;
    this.#failClosed = failClosed;
    this.#slots = slotTable(board);
    this.#auditBytes = auditPartitionBytes(config);
    const queueArea = board.flash.size - this.#auditBytes;
    this.#usableSlots = Math.min(QUEUE_SLOTS, Math.floor(Math.max(0, queueArea) / QUEUE_SLOT_BYTES));
    for (const s of policy.summary()) {
      const contract = policy.engine.contract(s.id);
      if (!contract) continue;
      for (const dest of contract.destinations) this._open(contract, dest);
    }
    policy.onChange((integration) => this._rebuild(integration));
  }

  private _slotFor(key: string): number | undefined {
    const slots = this.#slots;
    const existing = slots[key];
    if (existing !== undefined && existing < this.#usableSlots) return existing;
    const used = new Set(Object.values(slots));
    for (let i = 0; i < this.#usableSlots; i++) {
      if (!used.has(i)) {
        slots[key] = i;
        this.#board.keys.set(SLOTS_KEY, utf8(JSON.stringify(slots)));
        return i;
      }
    }
    return undefined;
  }

  /** Opens a route, or rebuilds one over its existing queue (`previous`, already stopped). */
  private _open(contract: Contract, dest: Destination, previous?: Route): void {
    const board = this.#board;
    const record = this.#record;
    const routes = this.#routes;
    const key = `${contract.id}/${dest.id}`;
    const slot = this._slotFor(key); // a rebuilt route keeps its slot: the queue's at-rest key and AAD name it
    if (slot === undefined) {
      record({ kind: "uplink", decision: "deny", integration: contract.id, reason: "no-queue-slot", detail: { destination: dest.id, slots: this.#usableSlots } });
      return;
    }
    try {
      const ring = previous?.ring ?? FlashRing.mount({
        flash: board.flash,
        offset: this.#auditBytes + slot * QUEUE_SLOT_BYTES,
        size: QUEUE_SLOT_BYTES,
        tag: QUEUE_TAG_BASE + slot,
        timers: board.timers,
        groupCommitMs: QUEUE_GROUP_COMMIT_MS,
      });
      const queueTerms = JSON.stringify(contract.terms.queue);
      // The same queue when its terms did not change; new terms replay the ring under the new limits.
      if (previous && previous.queueTerms !== queueTerms) ring.flush();
      const queue = previous && previous.queueTerms === queueTerms ? previous.queue : new FlashQueue(ring, contract.terms.queue, board.clock, {
        crypto: board.crypto, keys: board.keys, random: board.random, slot,
        // Through the route's manager, so these drops are counted and aggregated like the others.
        onDrop: dropReporter(routes, key, record, contract.id, dest.id),
      });
      const sealer = new EnvelopeSealer({
        crypto: board.crypto,
        clock: board.clock,
        integration: contract.id,
        contractVersion: contract.version,
        encryption: dest.encryption,
        ...(dest.publicKey ? { vendorPublicKey: fromBase64(dest.publicKey) } : {}),
      });
      const manager = new UplinkManager({
        integration: contract.id,
        uplink: board.uplink,
        clock: board.clock,
        timers: board.timers,
        random: board.random,
        queue,
        sealer,
        connection: {
          host: dest.host,
          port: dest.port,
          clientId: `portcullis-${contract.id}`,
          keepalive: 30,
          ...(dest.pins && dest.pins.length ? { pins: dest.pins } : {}),
        },
        onEvent: record,
        window: this.#config.limits.uplinkWindow,
      });
      routes.set(key, { manager, ring, queue, built: routeBasis(contract, dest), queueTerms });
      if (this.#started) manager.start();
      if (dest.encryption === "none") {
        record({ kind: "uplink", decision: "info", integration: contract.id, reason: "plaintext-by-contract", detail: { destination: dest.id } });
      }
    } catch (e) {
      record({ kind: "uplink", decision: "deny", integration: contract.id, reason: "setup-failed", detail: { destination: dest.id, error: e instanceof Error ? e.message : String(e) } });
    }
  }

  private _forEach(integration: string, f: (m: UplinkManager) => void): void {
    for (const [key, r] of this.#routes) if (key.startsWith(integration + "/")) f(r.manager);
  }

  /** Brings an integration's routes in line with the contract now in force (or none, after removal). */
  private _rebuild(integration: string): void {
    const routes = this.#routes;
    const record = this.#record;
    const contract = this.#policy.engine.contract(integration);
    const status = this.#policy.engine.integrations().find((i) => i.id === integration);
    const wanted = new Map((contract?.destinations ?? []).map((d) => [`${integration}/${d.id}`, d]));
    for (const [key, r] of Array.from(routes)) {
      if (!key.startsWith(integration + "/")) continue;
      const dest = wanted.get(key);
      if (dest && contract && r.built === routeBasis(contract, dest) && r.queueTerms === JSON.stringify(contract.terms.queue)) continue;
      r.manager.stop();
      routes.delete(key);
      if (dest && contract) {
        record({ kind: "uplink", decision: "info", integration, reason: "rebuilt", detail: { destination: dest.id, version: contract.version, host: dest.host, port: dest.port } });
        this._open(contract, dest, r);
      } else {
        // Removed (or the destination left the contract): what it queued may no longer leave.
        void r.queue.purge().then(() => r.ring.flush(), () => undefined);
        record({ kind: "uplink", decision: "info", integration, reason: "route-closed", detail: { destination: key.slice(integration.length + 1), queued: r.queue.count } });
      }
    }
    if (contract) for (const [key, dest] of wanted) if (!routes.has(key)) this._open(contract, dest);
    if (status?.state === "quarantined") this._forEach(integration, (m) => m.freeze("quarantine (contract change)"));
  }

  send(integration: string, destination: string, vendorTopic: string, payload: Uint8Array): Promise<void> {
    const route = this.#routes.get(`${integration}/${destination}`);
    if (!route || this.#failClosed()) {
      this.#record({ kind: "queue", decision: "deny", integration, topic: vendorTopic, reason: route ? "audit-unavailable" : "no-route", detail: { destination, bytes: payload.length } });
      return Promise.resolve();
    }
    // enqueue reports its own refusals; a rejection would be a bug, recorded rather than thrown.
    return route.manager.enqueue(vendorTopic, payload).then(nothing, (e: unknown) => {
      this.#record({ kind: "queue", decision: "deny", integration, topic: vendorTopic, reason: "failed", detail: { destination, bytes: payload.length, detail: e instanceof Error ? e.message : String(e) } });
    });
  }

  start(): void {
    this.#started = true;
    for (const r of this.#routes.values()) r.manager.start();
  }

  freeze(integration: string, reason: string): void {
    this._forEach(integration, (m) => m.freeze(reason));
  }

  thaw(integration: string, reason: string): void {
    this._forEach(integration, (m) => m.thaw(reason));
  }

  async purge(integration: string, reason: string): Promise<void> {
    const all: Promise<void>[] = [];
    this._forEach(integration, (m) => all.push(m.purge(reason)));
    await Promise.all(all);
  }

  summary(): Record<string, UplinkStats> {
    const out: Record<string, UplinkStats> = {};
    for (const [key, r] of this.#routes) out[key] = r.manager.stats();
    return out;
  }

  congested(): boolean {
    for (const r of this.#routes.values()) if (r.manager.congested) return true;
    return false;
  }

  close(): void {
    for (const r of this.#routes.values()) r.manager.stop();
  }
}

/**
 * A queue's drops go through its route's manager, so they are counted and aggregated like the others
 * (before the manager exists, straight to the log). Built here so the closure holds only these five.
 */
function dropReporter(routes: Map<string, Route>, key: string, record: (e: AuditEvent) => void, integration: string, destination: string): (d: QueueDrop) => void {
  return (d) => {
    const m = routes.get(key)?.manager;
    if (m) m.reportDrop(d);
    else record({ kind: "queue", decision: "deny", integration, reason: d.cause, detail: { destination, count: d.count, bytes: d.bytes, fromSeq: d.fromSeq, toSeq: d.toSeq } });
  };
}

/** A settled send resolves with nothing (one shared function, not a closure per message). */
function nothing(): void {}

export function openOutbound(board: Board, config: GatewayConfig, policy: PolicyHandle, record: (e: AuditEvent) => void, failClosed: () => boolean): OutboundHandle {
  return new Outbound(board, config, policy, record, failClosed);
}
