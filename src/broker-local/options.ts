/**
 * The gateway's side of the home broker: turns gateway.json's devices and ACL roles into the broker's
 * subscribe/publish checks (src/mqtt/acl.ts), and counts local deliveries in the audit log's
 * per-minute summaries (device × topic rows, integration "(local)"), never one record per message.
 */
import type { GatewayConfig } from "../config.js";
import type { BrokerOptions } from "../mqtt/broker.js";
import { compileAcls } from "../mqtt/acl.js";

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
