/** The data map: device → data classes → integrations → destinations, with what actually flowed. */
import type { Verdict } from "./types.js";
import type { CompiledFlow } from "./compile.js";

/** Counters for one device × integration (integration null: messages no contract claimed). */
export interface FlowCounts {
  allowed: number;
  minimized: number;
  denied: number;
  /** Bytes received from the device for this integration. */
  bytesIn: number;
  /** Bytes the engine let leave. */
  bytesOut: number;
}

export interface MapIntegration {
  readonly integration: string | null;
  /** "host:port" of the destinations this device's flows go to. */
  readonly destinations: readonly string[];
  readonly counts: Readonly<FlowCounts>;
  /** A contract covers this device but no message of it was ever evaluated for this integration. */
  readonly declaredNeverSeen: boolean;
  /** At least one message was denied. */
  readonly attemptedDenied: boolean;
}

export interface MapClass {
  readonly class: string;
  /** Integrations declaring this class for the device; `seen` once a field of it actually left. */
  readonly integrations: readonly { readonly integration: string; readonly destinations: readonly string[]; readonly seen: boolean }[];
}

export interface MapDevice {
  readonly device: string;
  readonly classes: readonly MapClass[];
  readonly integrations: readonly MapIntegration[];
}

export interface DataMap {
  readonly devices: readonly MapDevice[];
}

/** The device name counters fall under once `mapDevices` distinct devices are tracked. */
export const OTHER_DEVICES = "*other*";

/** Counters behind the data map, bounded by `maxDevices` (further devices share one bucket). */
export class FlowCounters {
  readonly #counts = new Map<string, Map<string | null, FlowCounts>>();
  readonly #seen = new Map<string, Set<string>>();
  readonly #max: number;

  constructor(maxDevices: number) {
    this.#max = maxDevices;
  }

  record(device: string, integration: string | null, verdict: Verdict, bytesIn: number, bytesOut: number, classes: readonly string[]): void {
    let d = device;
    if (!this.#counts.has(d) && this.#counts.size >= this.#max) d = OTHER_DEVICES;
    let byInt = this.#counts.get(d);
    if (!byInt) this.#counts.set(d, (byInt = new Map()));
    let c = byInt.get(integration);
    if (!c) byInt.set(integration, (c = { allowed: 0, minimized: 0, denied: 0, bytesIn: 0, bytesOut: 0 }));
    if (verdict === "allow") c.allowed++;
    else if (verdict === "minimize") c.minimized++;
    else c.denied++;
    c.bytesIn += bytesIn;
    c.bytesOut += bytesOut;
    if (integration !== null && classes.length) {
      const k = `${d}\u0000${integration}`;
      let s = this.#seen.get(k);
      if (!s) this.#seen.set(k, (s = new Set()));
      for (const cls of classes) s.add(cls);
    }
  }

  /** Forgets an integration's counters (on removal). */
  forget(integration: string): void {
    for (const m of this.#counts.values()) m.delete(integration);
    for (const k of Array.from(this.#seen.keys())) if (k.endsWith(`\u0000${integration}`)) this.#seen.delete(k);
  }

  /** Builds the map from the enforced flows and the counters. Devices, classes and integrations sorted. */
  build(flows: Iterable<CompiledFlow>): DataMap {
    const declared = new Map<string, Map<string, Map<string, Set<string>>>>(); // device → class → integration → dests
    const declaredInts = new Map<string, Map<string, Set<string>>>(); // device → integration → dests
    for (const f of flows) {
      const dest = `${f.destination.host}:${f.destination.port}`;
      for (const device of f.devices) {
        let byClass = declared.get(device);
        if (!byClass) declared.set(device, (byClass = new Map()));
        for (const field of f.fields) {
          let byInt = byClass.get(field.class);
          if (!byInt) byClass.set(field.class, (byInt = new Map()));
          let dests = byInt.get(f.integration);
          if (!dests) byInt.set(f.integration, (dests = new Set()));
          dests.add(dest);
        }
        let ints = declaredInts.get(device);
        if (!ints) declaredInts.set(device, (ints = new Map()));
        let dests = ints.get(f.integration);
        if (!dests) ints.set(f.integration, (dests = new Set()));
        dests.add(dest);
      }
    }
    const names = new Set<string>([...declared.keys(), ...this.#counts.keys()]);
    const devices: MapDevice[] = [];
    for (const device of Array.from(names).sort()) {
      const byClass = declared.get(device) ?? new Map<string, Map<string, Set<string>>>();
      const classes: MapClass[] = Array.from(byClass.keys()).sort().map((cls) => ({
        class: cls,
        integrations: Array.from((byClass.get(cls) as Map<string, Set<string>>).entries())
          .sort((a, b) => (a[0] < b[0] ? -1 : 1))
          .map(([integration, dests]) => ({
            integration,
            destinations: Array.from(dests).sort(),
            seen: this.#seen.get(`${device}\u0000${integration}`)?.has(cls) ?? false,
          })),
      }));
      const ints = declaredInts.get(device) ?? new Map<string, Set<string>>();
      const counted = this.#counts.get(device) ?? new Map<string | null, FlowCounts>();
      const keys = new Set<string | null>([...ints.keys(), ...counted.keys()]);
      const integrations: MapIntegration[] = Array.from(keys)
        .sort((a, b) => (a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1))
        .map((integration) => {
          const counts = { ...(counted.get(integration) ?? { allowed: 0, minimized: 0, denied: 0, bytesIn: 0, bytesOut: 0 }) };
          const total = counts.allowed + counts.minimized + counts.denied;
          const dests = integration === null ? undefined : ints.get(integration);
          return {
            integration,
            destinations: dests ? Array.from(dests).sort() : [],
            counts,
            declaredNeverSeen: dests !== undefined && total === 0,
            attemptedDenied: counts.denied > 0,
          };
        });
      devices.push({ device, classes, integrations });
    }
    return { devices };
  }
}

/** The data map as console text (the `datamap` command). */
export function renderDataMap(map: DataMap): string {
  const lines: string[] = [];
  if (map.devices.length === 0) return "data map: no devices declared or seen";
  for (const d of map.devices) {
    lines.push(`${d.device}`);
    for (const c of d.classes) {
      const ints = c.integrations.map((i) => `${i.integration} → ${i.destinations.join(", ")}${i.seen ? "" : " (declared, never seen)"}`);
      lines.push(`  ${c.class}: ${ints.join("; ")}`);
    }
    for (const i of d.integrations) {
      const n = i.counts;
      const marks = [i.declaredNeverSeen ? "declared but never seen" : "", i.attemptedDenied ? "attempted but denied" : ""].filter((s) => s);
      lines.push(
        `  ${i.integration ?? "(no contract)"}: allowed ${n.allowed}, minimized ${n.minimized}, denied ${n.denied}; ` +
          `bytes in ${n.bytesIn}, out ${n.bytesOut}${marks.length ? ` [${marks.join("; ")}]` : ""}`,
      );
    }
  }
  return lines.join("\n");
}
