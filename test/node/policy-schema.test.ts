/** The published JSON Schema agrees with the hand-written validator on every fixture and the example home. */
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020 } from "ajv/dist/2020.js";
import fc from "fast-check";
import { parseContract, type ContractError } from "../../src/policy/contract.js";
import { INVALID_CASES } from "../fixtures/contracts/cases.js";
import { contract } from "../core/policy-helpers.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const fixtures = path.join(root, "test/fixtures/contracts");
const schema = JSON.parse(readFileSync(path.join(root, "schemas/contract-v1.schema.json"), "utf8"));
const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
const validate = ajv.compile(schema);
const jsonFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith(".json") && f !== "expected.json").sort();
const expected = JSON.parse(readFileSync(path.join(fixtures, "invalid/expected.json"), "utf8")) as Record<string, { schema: boolean; errors: ContractError[] }>;

describe("policy contract schema (ajv) agrees with the validator", () => {
  for (const dir of [path.join(fixtures, "valid"), path.join(root, "examples/home/contracts")]) {
    for (const f of jsonFiles(dir)) {
      it(`valid: ${path.relative(root, path.join(dir, f))}`, () => {
        const text = readFileSync(path.join(dir, f), "utf8");
        const r = parseContract(text);
        assert.deepEqual(r.ok ? [] : r.errors, []);
        assert.equal(validate(JSON.parse(text)), true, JSON.stringify(validate.errors));
      });
    }
  }
  for (const f of jsonFiles(path.join(fixtures, "invalid"))) {
    it(`invalid: ${f}`, () => {
      const want = expected[f];
      assert.ok(want, `${f} has an entry in invalid/expected.json`);
      const text = readFileSync(path.join(fixtures, "invalid", f), "utf8");
      const r = parseContract(text);
      assert.equal(r.ok, false);
      if (f === "not-json.json") {
        assert.ok(!r.ok && r.errors.length === 1 && r.errors[0]?.message.startsWith("not valid JSON"));
        return;
      }
      assert.deepEqual(!r.ok && r.errors, want.errors);
      const ok = validate(JSON.parse(text));
      assert.equal(ok, !want.schema, want.schema ? "the schema must reject it too" : "a cross-field rule: the schema cannot see it");
    });
  }
  it("every case in cases.ts has its fixture file, byte for byte", () => {
    for (const c of INVALID_CASES) {
      const base = contract();
      const v = c.patch(base) ?? base;
      assert.equal(readFileSync(path.join(fixtures, "invalid", `${c.name}.json`), "utf8"), JSON.stringify(v, null, 2) + "\n");
    }
  });
});

describe("policy contract schema: random mutations", () => {
  /** Every JSON Pointer path of a value, with its parent container. */
  function paths(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
    out.push(at);
    if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
    else if (typeof v === "object" && v !== null) for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
    return out;
  }
  const base = JSON.parse(readFileSync(path.join(fixtures, "valid/full.json"), "utf8"));
  const value = fc.oneof(
    fc.constantFrom("", "x", "https", "mqtts", "none", "hpke", "/a", "#", "home/+/x", "{device}", "locaton", "energy", "drop-oldest", "2026-13-01"),
    fc.integer({ min: -2, max: 70000 }),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
    fc.constant(null),
    fc.constant([]),
    fc.constant({}),
  );

  it("whatever the validator accepts, the schema accepts (the schema is never stricter)", () => {
    const all = paths(base).filter((p) => p.length > 0);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(all.length - 1), fc.option(value, { nil: undefined })), { minLength: 1, maxLength: 3 }), (edits) => {
        const doc = structuredClone(base);
        for (const [i, v] of edits) {
          const p = all[i] as (string | number)[];
          let parent = doc;
          for (const k of p.slice(0, -1)) parent = parent?.[k];
          if (typeof parent !== "object" || parent === null) continue;
          const last = p[p.length - 1] as string | number;
          if (v === undefined) {
            if (Array.isArray(parent)) parent.splice(Number(last), 1);
            else delete parent[last];
          } else parent[last] = structuredClone(v);
        }
        const src = parseContract(JSON.stringify(doc));
        if (src.ok) assert.equal(validate(doc), true, `schema rejects what the validator accepts: ${JSON.stringify(validate.errors)}`);
        else if (validate(doc)) {
          // Only cross-field rules may separate them.
          for (const e of src.errors) assert.match(e.message, /duplicate (destination|flow) id|unknown destination|overlaps|not one of this flow's fields|missing consent entry|not a calendar date/);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
