/**
 * The gateway's way out: one UplinkManager per integration destination, each with its HPKE sealer and
 * a durable queue in its own slot of the queue area on flash (a FlashRing, the audit log's machinery).
 * Slots are assigned to destinations once and remembered in the key store, so a reboot finds each
 * queue where it left it.
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
/** Ring tags: the audit log uses 0xA1; queue slot i uses 0x10 + i. */
const QUEUE_TAG_BASE = 0x10;
const SLOTS_KEY = "queue-slots";

export interface OutboundHandle {
  /** Queues an allowed, minimized message for its destination. */
  send(integration: string, destination: string, vendorTopic: string, payload: Uint8Array): void;
  start(): void;
  /** Stops sending for an integration and keeps its queue (incident containment). */
  freeze(integration: string, reason: string): void;
  thaw(integration: string, reason: string): void;
  /** Stops sending and drops the queue (consent withdrawn). */
  purge(integration: string, reason: string): Promise<void>;
  summary(): Record<string, UplinkStats>;
  close(): void;
}

interface Route {
  readonly manager: UplinkManager;
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

export function openOutbound(board: Board, config: GatewayConfig, policy: PolicyHandle, record: (e: AuditEvent) => void, failClosed: () => boolean): OutboundHandle {
  const routes = new Map<string, Route>();
  const slots = slotTable(board);
  const auditBytes = auditPartitionBytes(config);
  const queueArea = board.flash.size - auditBytes;
  const usableSlots = Math.min(QUEUE_SLOTS, Math.floor(Math.max(0, queueArea) / QUEUE_SLOT_BYTES));

  const slotFor = (key: string): number | undefined => {
    const existing = slots[key];
    if (existing !== undefined && existing < usableSlots) return existing;
    const used = new Set(Object.values(slots));
    for (let i = 0; i < usableSlots; i++) {
      if (!used.has(i)) {
        slots[key] = i;
        board.keys.set(SLOTS_KEY, utf8(JSON.stringify(slots)));
        return i;
      }
    }
    return undefined;
  };

  const open = (contract: Contract, dest: Destination): void => {
    const key = `${contract.id}/${dest.id}`;
    const slot = slotFor(key);
    if (slot === undefined) {
      record({ kind: "uplink", decision: "deny", integration: contract.id, reason: "no-queue-slot", detail: { destination: dest.id, slots: usableSlots } });
      return;
    }
    try {
      const ring = FlashRing.mount({
        flash: board.flash,
        offset: auditBytes + slot * QUEUE_SLOT_BYTES,
        size: QUEUE_SLOT_BYTES,
        tag: QUEUE_TAG_BASE + slot,
        timers: board.timers,
      });
      const queue = new FlashQueue(ring, contract.terms.queue, board.clock, {
        crypto: board.crypto, keys: board.keys, random: board.random, slot,
        onDrop: (d) => record({ kind: "queue", decision: "deny", integration: contract.id, reason: d.cause, detail: { destination: dest.id, count: d.count, bytes: d.bytes, fromSeq: d.fromSeq, toSeq: d.toSeq } }),
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
      });
      routes.set(key, { manager });
      if (dest.encryption === "none") {
        record({ kind: "uplink", decision: "info", integration: contract.id, reason: "plaintext-by-contract", detail: { destination: dest.id } });
      }
    } catch (e) {
      record({ kind: "uplink", decision: "deny", integration: contract.id, reason: "setup-failed", detail: { destination: dest.id, error: e instanceof Error ? e.message : String(e) } });
    }
  };

  for (const s of policy.summary()) {
    const contract = policy.engine.contract(s.id);
    if (!contract) continue;
    for (const dest of contract.destinations) open(contract, dest);
  }

  const forEach = (integration: string, f: (m: UplinkManager) => void): void => {
    for (const [key, r] of routes) if (key.startsWith(integration + "/")) f(r.manager);
  };

  return {
    send(integration, destination, vendorTopic, payload) {
      const route = routes.get(`${integration}/${destination}`);
      if (!route || failClosed()) {
        record({ kind: "queue", decision: "deny", integration, topic: vendorTopic, reason: route ? "audit-unavailable" : "no-route", detail: { destination, bytes: payload.length } });
        return;
      }
      void route.manager.enqueue(vendorTopic, payload);
    },
    start() {
      for (const r of routes.values()) r.manager.start();
    },
    freeze: (integration, reason) => forEach(integration, (m) => m.freeze(reason)),
    thaw: (integration, reason) => forEach(integration, (m) => m.thaw(reason)),
    async purge(integration, reason) {
      const all: Promise<void>[] = [];
      forEach(integration, (m) => all.push(m.purge(reason)));
      await Promise.all(all);
    },
    summary() {
      const out: Record<string, UplinkStats> = {};
      for (const [key, r] of routes) out[key] = r.manager.stats();
      return out;
    },
    close() {
      for (const r of routes.values()) r.manager.stop();
    },
  };
}
