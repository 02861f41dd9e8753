/** The contract validator: every error class (test/fixtures/contracts/cases.ts), all errors at once, the examples. */
import assert from "node:assert/strict";
import { parseContract, validateContract } from "../../src/policy/contract.js";
import { INVALID_CASES } from "../fixtures/contracts/cases.js";
import { contract } from "./policy-helpers.js";

describe("policy contract validator", () => {
  it("accepts the base contract", () => {
    assert.deepEqual(validateContract(contract()), { ok: true, contract: contract() });
  });
  for (const c of INVALID_CASES) {
    it(`reports ${c.name}`, () => {
      const base = contract();
      const v = c.patch(base) ?? base;
      const r = validateContract(v);
      assert.equal(r.ok, false);
      assert.deepEqual(!r.ok && r.errors, c.errors);
    });
  }
  it("reports every error, not just the first", () => {
    const r = validateContract(contract("acme", (c) => ((c.id = "X"), (c.destinations[0].port = 0), (c.terms.retentionDays = -1))));
    assert.deepEqual(!r.ok && r.errors.map((e) => e.path), ["/id", "/destinations/0/port", "/terms/retentionDays"]);
  });
  it("reports unparsable text and oversized text at the root", () => {
    const r = parseContract("{ nope");
    assert.ok(!r.ok && r.errors.length === 1 && r.errors[0]?.path === "" && r.errors[0].message.startsWith("not valid JSON"));
    const big = parseContract(" ".repeat(40000));
    assert.deepEqual(!big.ok && big.errors, [{ path: "", message: "contract longer than the limit of 32768 bytes" }]);
  });
  it("never throws on hostile values", () => {
    for (const v of [null, 1, "x", [], { flows: [null, 1, []], destinations: {}, terms: [] }, { __proto__: { id: "x" } }, JSON.parse('{"__proto__":{"format":1}}')]) {
      assert.equal(validateContract(v).ok, false);
    }
  });
});
