/**
 * The gateway's side of the home broker: turns gateway.json's devices and ACL roles into the broker's
 * subscribe/publish checks (src/mqtt/acl.ts), and counts local deliveries in the audit log's
 * per-minute summaries (device × topic rows, integration "(local)"), never one record per message.
 */
import type { Board } from "../ports.js";
import type { AuditEvent } from "../audit/types.js";
import type { GatewayConfig } from "../config.js";
import type { BrokerOptions } from "../mqtt/broker.js";
import { compileAcls } from "../mqtt/acl.js";
import { FlashRing } from "../flash/ring.js";
import { flashBytesNeeded } from "../gateway/outbound.js";
import { RETAINED_AREA_BYTES, RETAINED_RING_TAG, RetainedFlash } from "./retained-flash.js";

export interface LocalCounter {
  countLocal(device: string, topic: string, bytes: number): void;
}

export type LocalBrokerOptions = Required<Pick<BrokerOptions, "authorizeSubscribe" | "authorizePublish" | "onLocal" | "localRouting">>;

/** The broker options that enforce the config's ACLs and account for local routing. */
export function localBrokerOptions(config: GatewayConfig, counter: LocalCounter): LocalBrokerOptions {
  const { localRouting, byId } = compileAcls(config.devices, config.acl);
  return {
    localRouting,
    authorizeSubscribe: (clientId, filter) => byId.get(clientId)?.canSubscribe(filter) === true,
    authorizePublish: (clientId, topic) => byId.get(clientId)?.canPublish(topic) === true,
    onLocal: (clientId, topic, bytes) => counter.countLocal(clientId, topic, bytes),
  };
}

/**
 * The retained area on flash, right after the queue slots, when the board's flash has room for it
 * (`RETAINED_AREA_BYTES`); undefined otherwise (then retained messages live in RAM only, until reboot).
 * Messages read back at boot seed the broker; each change is appended. A failure to persist is recorded
 * once (`corruption` … `retained-store`) and the broker keeps working from RAM.
 */
export function openRetainedArea(board: Board, config: GatewayConfig, record: (e: AuditEvent) => void): Pick<BrokerOptions, "retained" | "onRetained"> | undefined {
  const offset = flashBytesNeeded(config);
  if (board.flash.size < offset + RETAINED_AREA_BYTES) return undefined;
  const area = new RetainedFlash(
    FlashRing.mount({ flash: board.flash, offset, size: RETAINED_AREA_BYTES, tag: RETAINED_RING_TAG, timers: board.timers }),
    { crypto: board.crypto, keys: board.keys, random: board.random },
  );
  if (area.lost > 0) record({ kind: "corruption", decision: "info", reason: "retained-records-lost", detail: { count: area.lost } });
  let failed = false;
  const fail = (e: unknown): void => {
    if (failed) return;
    failed = true;
    record({ kind: "corruption", decision: "deny", reason: "retained-store", detail: { message: e instanceof Error ? e.message : String(e) } });
  };
  return {
    retained: area.messages(),
    onRetained(outcome, m) {
      if (failed || outcome === "full" || outcome === "absent") return;
      try {
        area.change(outcome, m).catch(fail);
      } catch (e) {
        fail(e);
      }
    },
  };
}
