/**
 * Builds the incident workflow over the gateway's parts: the audit log, the policy engine
 * (quarantine, contracts, consent, data map), the outbound queues (frozen with a quarantine) and the
 * device registry (disabled credentials). Portable; startGateway calls it.
 */
import type { Board } from "../ports.js";
import type { DetailValue } from "../audit/types.js";
import type { GatewayConfig } from "../config.js";
import type { AuditHandle } from "../gateway/audit.js";
import type { PolicyHandle } from "../gateway/policy.js";
import type { OutboundHandle } from "../gateway/outbound.js";
import type { DeviceRegistry } from "../gateway/devices.js";
import { breachHours, contractClasses } from "../policy/contract.js";
import { toBase64, toHex, utf8 } from "../util/bytes.js";
import { DEFAULT_INCIDENT_RESPONSE } from "./deadlines.js";
import { IncidentManager, actorDetail } from "./manager.js";

/** Most integrations the evidence record describes one by one (a record holds at most 32 details). */
const SNAPSHOT_INTEGRATIONS = 6;

export interface IncidentParts {
  readonly audit: AuditHandle;
  readonly policy: PolicyHandle;
  readonly outbound: OutboundHandle;
  readonly devices: DeviceRegistry;
  readonly connected: () => readonly string[];
}

export function openIncidents(board: Board, config: GatewayConfig, p: IncidentParts): IncidentManager {
  const engine = p.policy.engine;
  const digest = (v: unknown): string => toBase64(board.crypto.sha256(utf8(JSON.stringify(v))), true).slice(0, 22);
  return new IncidentManager({
    log: p.audit.log,
    clock: board.clock,
    config: config.incidentResponse ?? DEFAULT_INCIDENT_RESPONSE,
    integrations: () => engine.integrations().map((i) => i.id),
    devices: () => config.devices.map((d) => d.id),
    vendorHours(integration) {
      const c = engine.contract(integration);
      return c ? { vendor: c.vendor, hours: breachHours(c.terms) } : undefined;
    },
    classesOf(integration) {
      const c = engine.contract(integration);
      return c ? contractClasses(c) : [];
    },
    sha256Hex: (text) => toHex(board.crypto.sha256(utf8(text))),
    flush: () => p.audit.log.flushSummaries(),
    quarantine(integration, why, actor) {
      engine.quarantine(integration, why, actor.who);
      p.outbound.freeze(integration, "quarantine");
    },
    disableDevice: (device, why, actor) => p.devices.disable(device, actorDetail(actor), why),
    hold: (reason) => p.audit.log.hold(reason),
    async seal() {
      const seq = p.audit.log.seal();
      const cp = p.audit.log.checkpoint();
      return { seq, chain: cp.seq === seq ? cp.chain : cp.chain };
    },
    snapshot(inc) {
      const d: Record<string, DetailValue> = {};
      const all = engine.integrations();
      const map = engine.dataMap();
      for (const i of all.slice(0, SNAPSHOT_INTEGRATIONS)) {
        const c = engine.contract(i.id);
        const consent = Object.entries(engine.consent(i.id)).map(([k, v]) => `${k}=${v.state}`).join(",");
        let allowed = 0;
        let denied = 0;
        for (const dev of map.devices) for (const mi of dev.integrations) if (mi.integration === i.id) { allowed += mi.counts.allowed + mi.counts.minimized; denied += mi.counts.denied; }
        d[`i.${i.id}`] = `${i.state} v${i.version ?? "-"} sha256:${c ? digest(c) : "-"} flows ${allowed} allowed ${denied} denied; consent ${consent || "none"}`.slice(0, 256);
      }
      if (all.length > SNAPSHOT_INTEGRATIONS) d.moreIntegrations = all.length - SNAPSHOT_INTEGRATIONS;
      d.disabledDevices = p.devices.disabled().join(",").slice(0, 256);
      d.connectedDevices = p.connected().join(",").slice(0, 256);
      d.scope = `${inc.integrations.join(",")}|${inc.devices.join(",")}`.slice(0, 256);
      return d;
    },
  });
}
