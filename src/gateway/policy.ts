/**
 * The gateway's side of the policy engine: builds it over the board, loads the configured contracts
 * (each on its own: a broken one blocks only its integration, and an approved version kept on the
 * device stays in force), keeps the approved texts so change review survives a reboot, and tells the
 * outbound side when the contract in force changes (approve, reject, remove).
 */
import type { Board } from "../ports.js";
import type { AuditEvent } from "../audit/types.js";
import type { GatewayConfig } from "../config.js";
import { parseContract, type ContractError } from "../policy/contract.js";
import { PolicyEngine, type LoadResult } from "../policy/engine.js";
import { blockReason } from "../policy/registry.js";

/** Where approved contract texts are kept between boots (files on the Node board, flash on the firmware). */
export interface ContractStore {
  get(integration: string): string | undefined;
  set(integration: string, text: string): void;
}

export interface PolicyHandle {
  readonly engine: PolicyEngine;
  /** Per integration: state and version, for `status`. */
  summary(): { id: string; state: string; version: string | null; blocked?: string }[];
  /** Approves a pending contract version and remembers its text as the new baseline. */
  approve(integration: string, who: string): boolean;
  /** Rejects a pending contract version (the enforced one stays). */
  reject(integration: string, who: string): boolean;
  /** Removes an integration (its flows, consent, approval and pseudonym key). */
  remove(integration: string, who: string): boolean;
  /**
   * Called after approve, reject or remove succeeded, with the integration whose contract in force
   * may have changed (the outbound side rebuilds its routes from it). Listeners must not throw.
   */
  onChange(listener: (integration: string) => void): void;
}

/** `file:line: message` for a syntax error, `file: /json/pointer: message` for a validation error. */
export function contractErrorLine(source: string, e: ContractError): string {
  return e.line !== undefined ? `${source}:${e.line}: ${e.message}` : `${source}: ${e.path || "/"}: ${e.message}`;
}

export function openPolicy(board: Board, config: GatewayConfig, record: (e: AuditEvent) => void, store?: ContractStore): PolicyHandle {
  const groups: Record<string, string[]> = {};
  for (const d of config.devices) for (const g of d.groups) (groups[g] ??= []).push(d.id);
  const engine = new PolicyEngine({ crypto: board.crypto, keys: board.keys, random: board.random, clock: board.clock, onEvent: record, groups, limits: { integrations: config.limits.integrations } });
  const handle = new Policy(engine, store);
  const say = (line: string): void => board.console.write(line + "\n");

  for (const c of config.contracts) {
    // A text too broken to name its integration belongs to the one its file is named after, when the
    // device keeps an approved text for that one (examples/home/contracts/<id>.json).
    const hint = contractId(c.text) === undefined ? idFromSource(c.source) : undefined;
    const id = contractId(c.text) ?? (hint !== undefined && store?.get(hint) !== undefined ? hint : undefined);
    const baseline = id !== undefined ? store?.get(id) : undefined;
    if (id !== undefined && baseline !== undefined && !engine.integrations().some((i) => i.id === id) && !parseContract(c.text, engine.limits).ok) {
      // The file is broken and the device keeps the approved text: that version goes in force first,
      // so the broken text below is recorded against it instead of blocking the integration.
      engine.load(baseline, c.source);
    }
    const result: LoadResult = engine.load(c.text, c.source, baseline, id);
    if (result.status === "accepted") store?.set(result.integration, c.text);
    else if (result.status === "pending-review") handle.pendingText.set(result.integration, c.text);
    else {
      // Recorded by the engine (contract-invalid); blocks only its own integration.
      const first = result.errors[0];
      const inForce = id !== undefined ? engine.integrations().find((i) => i.id === id && i.broken.length > 0)?.version : undefined;
      if (first) say(contractErrorLine(c.source, first) + (result.errors.length > 1 ? ` (and ${result.errors.length - 1} more)` : ""));
      say(`  ${result.integration ?? hint ?? c.source}: ${inForce !== undefined ? `approved version ${inForce} stays in force until the file is fixed or the integration removed` : `blocked: ${blockReason(result.errors)}`}`);
    }
  }
  return handle;
}

/** The policy handle as one instance (methods with the class, in flash on the device), not closures per boot. */
class Policy implements PolicyHandle {
  readonly engine: PolicyEngine;
  /** Texts of versions waiting for review, kept so an approval can store the new baseline. */
  readonly pendingText = new Map<string, string>();
  readonly #store: ContractStore | undefined;
  readonly #listeners: ((integration: string) => void)[] = [];

  constructor(engine: PolicyEngine, store: ContractStore | undefined) {
    this.engine = engine;
    this.#store = store;
  }

  summary(): { id: string; state: string; version: string | null; blocked?: string }[] {
    return this.engine.integrations().map((i) => ({ id: i.id, state: i.state, version: i.version ?? null, ...(i.blocked !== undefined ? { blocked: i.blocked } : {}) }));
  }

  approve(integration: string, who: string): boolean {
    if (!this.engine.approve(integration, who)) return false;
    const text = this.pendingText.get(integration);
    if (text !== undefined) this.#store?.set(integration, text);
    this.pendingText.delete(integration);
    this._changed(integration);
    return true;
  }

  reject(integration: string, who: string): boolean {
    if (!this.engine.reject(integration, who)) return false;
    this.pendingText.delete(integration);
    this._changed(integration);
    return true;
  }

  remove(integration: string, who: string): boolean {
    if (!this.engine.remove(integration, who)) return false;
    this.pendingText.delete(integration);
    this._changed(integration);
    return true;
  }

  onChange(listener: (integration: string) => void): void {
    this.#listeners.push(listener);
  }

  private _changed(integration: string): void {
    for (const l of this.#listeners) {
      try {
        l(integration);
      } catch {
        // A listener must not throw; the decision already happened.
      }
    }
  }
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

/** `…/thermo-cloud.json` → `thermo-cloud`, when that is a valid integration id. */
function idFromSource(source: string): string | undefined {
  const base = source.slice(Math.max(source.lastIndexOf("/"), source.lastIndexOf("\\")) + 1).replace(/\.json$/, "");
  return /^[a-z0-9][a-z0-9-]{0,31}$/.test(base) ? base : undefined;
}
