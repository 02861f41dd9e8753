/** Property tests: nothing outside the contract leaves; unclaimed messages are denied; pseudonym linkability. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { bytes, contract, parse, rig, text, type Json } from "./policy-helpers.js";
import { DataClasses } from "../../src/policy/contract.js";
import { parsePointer } from "../../src/policy/pointer.js";

const KEYS = ["a", "b", "c", "serial", "x/y", "~t", "__proto__"];
const esc = (k: string) => k.replace(/~/g, "~0").replace(/\//g, "~1");
const pointer = fc.array(fc.constantFrom(...KEYS), { minLength: 1, maxLength: 3 }).map((ts) => "/" + ts.map(esc).join("/"));

const leaf = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string({ maxLength: 6 }), fc.boolean(), fc.constant(null));
const json = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: "small", maxDepth: 3 }, leaf, tie("obj"), fc.array(tie("node"), { maxLength: 3 })),
  obj: fc.dictionary(fc.constantFrom(...KEYS), tie("node"), { maxKeys: 5 }),
})).obj;

/** Random flow fields: non-overlapping pointers with classes, a random subset pseudonymized. */
const fieldsArb = fc
  .uniqueArray(pointer, { minLength: 1, maxLength: 6 })
  .map((ps) => ps.reduce<string[]>((kept, p) => (kept.some((q) => p.startsWith(q + "/") || q.startsWith(p + "/")) ? kept : [...kept, p]), []))
  .chain((ps) => fc.tuple(fc.constant(ps), fc.array(fc.constantFrom(...DataClasses), { minLength: ps.length, maxLength: ps.length }), fc.array(fc.boolean(), { minLength: ps.length, maxLength: ps.length })));

function randomContract(ps: string[], classes: string[], pseudo: boolean[]): Json {
  return contract("prop", (c) => {
    c.flows[0].fields = ps.map((path, i) => ({ path, class: classes[i] }));
    const p = ps.filter((_, i) => pseudo[i]);
    if (p.length) c.flows[0].pseudonymize = p;
    else delete c.flows[0].pseudonymize;
    c.terms.consent = Object.fromEntries(classes.map((k) => [k, false]));
  });
}

/** Every (pointer tokens, value) leaf of a JSON value. */
function leaves(v: unknown, at: string[] = [], out: [string[], unknown][] = []): [string[], unknown][] {
  if (typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length) {
    for (const [k, x] of Object.entries(v)) leaves(x, [...at, k], out);
  } else out.push([at, v]);
  return out;
}
function inject(doc: Json, tokens: string[], v: unknown): void {
  let o = doc;
  tokens.forEach((t, i) => {
    if (i === tokens.length - 1) Object.defineProperty(o, t, { value: v, enumerable: true, writable: true, configurable: true });
    else {
      if (typeof o[t] !== "object" || o[t] === null || Array.isArray(o[t]) || !Object.prototype.hasOwnProperty.call(o, t)) {
        Object.defineProperty(o, t, { value: {}, enumerable: true, writable: true, configurable: true });
      }
      o = o[t];
    }
  });
}
function getAt(v: unknown, tokens: string[]): unknown {
  for (const t of tokens) {
    if (typeof v !== "object" || v === null || Array.isArray(v) || !Object.prototype.hasOwnProperty.call(v, t)) return undefined;
    v = (v as Record<string, unknown>)[t];
  }
  return v;
}

describe("policy properties", () => {
  it("no field outside the contract ever leaves; kept values are exact or pseudonyms", () => {
    fc.assert(
      fc.property(fieldsArb, json, fc.array(fc.tuple(fc.nat(), fc.oneof(leaf, json)), { maxLength: 4 }), ([ps, classes, pseudo], doc, plant) => {
        // Plant values at some contracted paths (or just under them) so most messages keep something.
        for (const [i, v] of plant) inject(doc, parsePointer(ps[i % ps.length] as string) as string[], v);
        const { engine } = rig();
        const c = randomContract(ps, classes, pseudo);
        assert.equal(engine.load(text(c), "p").status, "accepted");
        const [d] = engine.evaluate({ device: "plug-1", topic: "home/plug-1/telemetry", payload: bytes(doc) });
        assert.ok(d);
        if (d.verdict === "deny") {
          assert.equal(d.payload, undefined);
          return;
        }
        const out = parse(d.payload);
        const fields = ps.map((p, i) => ({ tokens: parsePointer(p) as string[], pseudo: pseudo[i] }));
        for (const [at, value] of leaves(out)) {
          const f = fields.find((x) => x.tokens.every((t, i) => at[i] === t));
          assert.ok(f, `leaf /${at.join("/")} is not under any contracted path`);
          if (f.pseudo) assert.match(String(value), /^[A-Za-z0-9_-]{22}$/);
          else assert.deepEqual(value, JSON.parse(JSON.stringify(getAt(doc, at))));
        }
        assert.equal(d.verdict === "allow", d.fieldsDropped === 0 && !pseudo.some((p, i) => p && getAt(doc, fields[i]!.tokens) !== undefined));
      }),
      { numRuns: 300 },
    );
  });

  it("a message matching no contract is always denied, exactly once, with no payload", () => {
    const name = fc.stringMatching(/^[a-z0-9-]{1,12}$/);
    fc.assert(
      fc.property(name, fc.array(name, { minLength: 1, maxLength: 4 }), json, (device, levels, doc) => {
        const { engine } = rig();
        engine.load(text(contract("one")), "1");
        engine.load(text(contract("two", (c) => (c.flows[0].topics = ["home/+/state"]))), "2");
        const topic = levels.join("/");
        fc.pre(!(device === "plug-1" && (topic === "home/plug-1/telemetry" || /^home\/[^/]+\/state$/.test(topic))));
        const ds = engine.evaluate({ device, topic, payload: bytes(doc) });
        assert.deepEqual(ds, [{ verdict: "deny", integration: null, rule: "default-deny", reason: "no-contract", fieldsDropped: 0, fieldsUndeclared: 0, classes: [] }]);
      }),
      { numRuns: 300 },
    );
  });

  it("pseudonyms are equal across calls for one integration and differ across integrations", () => {
    const { engine } = rig();
    engine.load(text(contract("one")), "1");
    engine.load(text(contract("two")), "2");
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.integer(), fc.boolean()), (serial) => {
        const send = () => engine.evaluate({ device: "plug-1", topic: "home/plug-1/telemetry", payload: bytes({ serial }) }).map((d) => parse(d.payload).serial);
        const [a1, b1] = send();
        const [a2, b2] = send();
        assert.equal(a1, a2);
        assert.equal(b1, b2);
        assert.notEqual(a1, b1);
      }),
      { numRuns: 200 },
    );
  });
});
