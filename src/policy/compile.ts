/** Compiles a valid contract into matching structures and indexes flows by device and first topic level. */
import type { Contract, ContractError, Destination, Flow } from "./contract.js";
import type { FieldRule } from "./minimize.js";
import { parsePointer } from "./pointer.js";
import { topicMatches } from "../mqtt/topic.js";

export interface CompiledFlow {
  readonly integration: string;
  /** Load order of the integration, then flow order: lower wins within one integration. */
  readonly rank: number;
  readonly flow: Flow;
  readonly devices: ReadonlySet<string>;
  readonly fields: readonly FieldRule[];
  readonly destination: Destination;
  readonly rateKey: string;
}

export interface Compiled {
  readonly contract: Contract;
  /** Hex SHA-256 of the contract text. */
  readonly digest: string;
  readonly flows: readonly CompiledFlow[];
}

/**
 * Compiles a validated contract. Group names resolve through `groups`; an unknown group is an error
 * (a contract must not silently match nothing, nor something later).
 */
export function compile(
  contract: Contract,
  digest: string,
  groups: Readonly<Record<string, readonly string[]>> | undefined,
  rank: number,
): { compiled: Compiled } | { errors: ContractError[] } {
  const errors: ContractError[] = [];
  const flows = contract.flows.map((flow, i): CompiledFlow => {
    const devices = new Set<string>(flow.devices ?? []);
    (flow.groups ?? []).forEach((g, k) => {
      const members = groups && Object.prototype.hasOwnProperty.call(groups, g) ? groups[g] : undefined;
      if (!members) errors.push({ path: `/flows/${i}/groups/${k}`, message: `unknown device group "${g}"` });
      else for (const d of members) devices.add(d);
    });
    const pseudo = new Set(flow.pseudonymize ?? []);
    return {
      integration: contract.id,
      rank: rank * 100000 + i,
      flow,
      devices,
      fields: flow.fields.map((f) => ({ path: f.path, tokens: parsePointer(f.path) ?? [], class: f.class, pseudonymize: pseudo.has(f.path) })),
      destination: contract.destinations.find((d) => d.id === flow.destination) as Destination,
      rateKey: `${contract.id}\u0000${flow.id}\u0000`,
    };
  });
  return errors.length ? { errors } : { compiled: { contract, digest, flows } };
}

interface IndexEntry {
  readonly filter: string;
  readonly flow: CompiledFlow;
}

/**
 * Flows indexed by device, then by the first level of each topic filter, with a bucket for filters
 * whose first level is a wildcard. A message only visits entries for its own device and its own
 * first level, so integrations that cannot match it cost nothing.
 */
export class FlowIndex {
  readonly #byDevice = new Map<string, Map<string, IndexEntry[]>>();
  /** Index entries the last lookup examined (tests prove non-matching integrations cost nothing). */
  lastVisited = 0;

  constructor(flows: Iterable<CompiledFlow>) {
    for (const flow of flows) {
      for (const device of flow.devices) {
        let levels = this.#byDevice.get(device);
        if (!levels) this.#byDevice.set(device, (levels = new Map()));
        for (const filter of flow.flow.topics) {
          const first = filter.split("/", 1)[0] as string;
          const key = first === "+" || first === "#" ? "\u0000" : first;
          let list = levels.get(key);
          if (!list) levels.set(key, (list = []));
          list.push({ filter, flow });
        }
      }
    }
    for (const levels of this.#byDevice.values()) for (const list of levels.values()) list.sort((a, b) => a.flow.rank - b.flow.rank);
  }

  /** For each integration, its first flow (contract order) matching device and topic; in load order. */
  lookup(device: string, topic: string): CompiledFlow[] {
    const levels = this.#byDevice.get(device);
    this.lastVisited = 0;
    if (!levels) return [];
    const slash = topic.indexOf("/");
    const first = slash < 0 ? topic : topic.slice(0, slash);
    const found = new Map<string, CompiledFlow>();
    for (const list of [levels.get(first), levels.get("\u0000")]) {
      if (!list) continue;
      for (const e of list) {
        this.lastVisited++;
        const prev = found.get(e.flow.integration);
        if (prev && prev.rank <= e.flow.rank) continue;
        if (topicMatches(e.filter, topic)) found.set(e.flow.integration, e.flow);
      }
    }
    return Array.from(found.values()).sort((a, b) => a.rank - b.rank);
  }
}
