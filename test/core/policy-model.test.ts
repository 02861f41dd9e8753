/** Model-based test (fast-check commands) of consent and change review against a small model. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { bytes, contract, parse, rig, text, type Rig } from "./policy-helpers.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import type { AuditEvent } from "../../src/audit/types.js";

type Cls = "energy" | "location";
type State = "opt-in" | "opt-out" | "withdrawn";
interface Variant {
  readonly fields: readonly ("e" | "l")[];
  readonly retention: number;
}
/** Four versions; relevance between them is what the model must predict. */
const VARIANTS: readonly Variant[] = [
  { fields: ["e"], retention: 30 },
  { fields: ["e", "l"], retention: 30 },
  { fields: ["e"], retention: 10 },
  { fields: ["l"], retention: 30 },
];
const CLASS = { e: "energy", l: "location" } as const;
const IDS = ["i1", "i2"] as const;

function contractText(id: string, v: number): string {
  const variant = VARIANTS[v] as Variant;
  return text(
    contract(id, (c) => {
      c.flows[0].fields = variant.fields.map((f) => ({ path: `/${f}`, class: CLASS[f] }));
      delete c.flows[0].pseudonymize;
      c.terms.retentionDays = variant.retention;
      c.terms.consent = { energy: true, location: true };
    }),
  );
}
const relevant = (from: number, to: number): boolean => {
  const a = VARIANTS[from] as Variant;
  const b = VARIANTS[to] as Variant;
  return b.fields.some((f) => a.fields.indexOf(f) < 0) || b.retention > a.retention;
};

interface Model {
  current: Record<string, number | undefined>;
  pending: Record<string, number | undefined>;
  consent: Record<string, State | undefined>;
}
interface Real {
  r: Rig;
  keys: MemoryKeys;
}
const lastEvent = (r: Real): AuditEvent | undefined => r.r.events.at(-1);

class Load implements fc.Command<Model, Real> {
  readonly id: string;
  readonly v: number;
  constructor(id: string, v: number) {
    this.id = id;
    this.v = v;
  }
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    const res = r.r.engine.load(contractText(this.id, this.v), this.id);
    const cur = m.current[this.id];
    if (cur === undefined) {
      m.current[this.id] = this.v;
      assert.equal(res.status, "accepted");
    } else if (cur === this.v) {
      m.pending[this.id] = undefined;
      assert.equal(res.status, "accepted");
    } else if (relevant(cur, this.v)) {
      m.pending[this.id] = this.v;
      assert.equal(res.status, "pending-review");
      assert.equal(lastEvent(r)?.reason, "pending-review");
    } else {
      m.current[this.id] = this.v;
      m.pending[this.id] = undefined;
      assert.equal(res.status, "accepted");
      assert.equal(lastEvent(r)?.reason, "updated");
    }
  }
  toString = (): string => `load(${this.id}, v${this.v})`;
}

class Review implements fc.Command<Model, Real> {
  readonly id: string;
  readonly approve: boolean;
  constructor(id: string, approve: boolean) {
    this.id = id;
    this.approve = approve;
  }
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    const had = m.pending[this.id] !== undefined;
    const n = r.r.events.length;
    const ok = this.approve ? r.r.engine.approve(this.id, "owner") : r.r.engine.reject(this.id, "owner");
    assert.equal(ok, had);
    if (had) {
      if (this.approve) m.current[this.id] = m.pending[this.id];
      m.pending[this.id] = undefined;
      assert.equal(lastEvent(r)?.reason, this.approve ? "approved" : "review-rejected");
    } else assert.equal(r.r.events.length, n, "no event when nothing was pending");
  }
  toString = (): string => `${this.approve ? "approve" : "reject"}(${this.id})`;
}

class Consent implements fc.Command<Model, Real> {
  readonly id: string;
  readonly cls: Cls;
  readonly state: State;
  constructor(id: string, cls: Cls, state: State) {
    this.id = id;
    this.cls = cls;
    this.state = state;
  }
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    r.r.engine.setConsent(this.id, this.cls, this.state, "owner");
    m.consent[`${this.id}/${this.cls}`] = this.state;
    assert.ok(r.r.events.some((e) => e.kind === "consent" && e.integration === this.id && e.reason === this.state));
  }
  toString = (): string => `consent(${this.id}, ${this.cls}, ${this.state})`;
}

class Restart implements fc.Command<Model, Real> {
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    r.r = rig({}, r.keys);
    for (const id of IDS) {
      const cur = m.current[id];
      if (cur === undefined) continue;
      r.r.engine.load(contractText(id, cur), id);
      const p = m.pending[id];
      if (p !== undefined) assert.equal(r.r.engine.load(contractText(id, p), id, contractText(id, cur)).status, "pending-review");
    }
  }
  toString = (): string => "restart";
}

class Send implements fc.Command<Model, Real> {
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    r.r.clock.tick(1000);
    const ds = r.r.engine.evaluate({ device: "plug-1", topic: "home/plug-1/telemetry", payload: bytes({ e: 1, l: 2, x: 3 }) });
    const loaded = IDS.filter((id) => m.current[id] !== undefined);
    if (loaded.length === 0) return assert.deepEqual(ds.map((d) => d.reason), ["no-contract"]);
    assert.deepEqual(ds.map((d) => d.integration).sort(), loaded.slice().sort());
    for (const d of ds) {
      const id = d.integration as string;
      const want = (VARIANTS[m.current[id] as number] as Variant).fields.filter((f) => m.consent[`${id}/${CLASS[f]}`] === "opt-in");
      if (want.length === 0) assert.equal(d.verdict, "deny", JSON.stringify(d));
      else assert.deepEqual(Object.keys(parse(d.payload)).sort(), want.slice().sort());
    }
  }
  toString = (): string => "send";
}

describe("policy model: consent and change review", () => {
  it("the engine agrees with the model over random command sequences", () => {
    const id = fc.constantFrom(...IDS);
    const commands = [
      fc.tuple(id, fc.integer({ min: 0, max: VARIANTS.length - 1 })).map(([i, v]) => new Load(i, v)),
      fc.tuple(id, fc.boolean()).map(([i, a]) => new Review(i, a)),
      fc.tuple(id, fc.constantFrom<Cls>("energy", "location"), fc.constantFrom<State>("opt-in", "opt-out", "withdrawn")).map(([i, c, s]) => new Consent(i, c, s)),
      fc.constant(new Restart()),
      fc.constant(new Send()),
    ];
    fc.assert(
      fc.property(fc.commands(commands, { maxCommands: 40 }), (cmds) => {
        const keys = new MemoryKeys();
        const model: Model = { current: {}, pending: {}, consent: {} };
        fc.modelRun(() => ({ model, real: { r: rig({}, keys), keys } }), cmds);
      }),
      { numRuns: 150 },
    );
  });
});
