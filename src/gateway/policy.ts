/**
 * The gateway's side of the policy engine: builds it over the board, loads the configured contracts
 * (each on its own: a broken one blocks only its integration), and keeps the approved texts so change
 * review survives a reboot.
 */
import type { Board } from "../ports.js";
import type { AuditEvent } from "../audit/types.js";
import type { GatewayConfig } from "../config.js";
import { PolicyEngine, type LoadResult } from "../policy/engine.js";

/** Where approved contract texts are kept between boots (files on the Node board, flash on the firmware). */
export interface ContractStore {
  get(integration: string): string | undefined;
  set(integration: string, text: string): void;
}

export interface PolicyHandle {
  readonly engine: PolicyEngine;
  /** Per integration: state and version, for `status`. */
  summary(): { id: string; state: string; version: string | null }[];
  /** Approves a pending contract version and remembers its text as the new baseline. */
  approve(integration: string, who: string): boolean;
}

export function openPolicy(board: Board, config: GatewayConfig, record: (e: AuditEvent) => void, store?: ContractStore): PolicyHandle {
  const groups: Record<string, string[]> = {};
  for (const d of config.devices) for (const g of d.groups) (groups[g] ??= []).push(d.id);
  const engine = new PolicyEngine({ crypto: board.crypto, keys: board.keys, random: board.random, clock: board.clock, onEvent: record, groups });
  const pendingText = new Map<string, string>();

  for (const c of config.contracts) {
    const id = contractId(c.text);
    const baseline = id !== undefined ? store?.get(id) : undefined;
    const result: LoadResult = engine.load(c.text, c.source, baseline);
    if (result.status === "accepted") store?.set(result.integration, c.text);
    else if (result.status === "pending-review") pendingText.set(result.integration, c.text);
    // A rejected text is recorded by the engine itself and blocks only its own integration.
  }

  return {
    engine,
    summary: () => engine.integrations().map((i) => ({ id: i.id, state: i.state, version: i.version ?? null })),
    approve(integration, who) {
      if (!engine.approve(integration, who)) return false;
      const text = pendingText.get(integration);
      if (text !== undefined) store?.set(integration, text);
      pendingText.delete(integration);
      return true;
    },
  };
}

/** The `id` of a contract text, when it parses far enough to have one. */
function contractId(text: string): string | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === "object" && v !== null && typeof (v as { id?: unknown }).id === "string" ? (v as { id: string }).id : undefined;
  } catch {
    return undefined;
  }
}
