/** The flow index: a message visits only flows for its own device and first topic level. */
import assert from "node:assert/strict";
import { compile, FlowIndex, type CompiledFlow } from "../../src/policy/compile.js";
import { validateContract, type Contract } from "../../src/policy/contract.js";
import { contract } from "./policy-helpers.js";

function flows(id: string, rank: number, devices: string[], topics: string[]): CompiledFlow[] {
  const c = contract(id, (x) => ((x.flows[0].devices = devices), (x.flows[0].topics = topics)));
  const v = validateContract(c);
  assert.ok(v.ok);
  const r = compile(v.contract as Contract, "00", undefined, rank);
  assert.ok("compiled" in r);
  return r.compiled.flows.slice();
}

describe("policy flow index", () => {
  it("integrations for other devices or other first levels are never visited", () => {
    const all = flows("hit", 0, ["plug-1"], ["home/plug-1/telemetry"]);
    for (let i = 1; i <= 50; i++) all.push(...flows(`other-${i}`, i, [`dev-${i}`], ["home/+/telemetry", "#"]));
    for (let i = 51; i <= 60; i++) all.push(...flows(`other-${i}`, i, ["plug-1"], [`metrics/${i}`]));
    const index = new FlowIndex(all);
    assert.deepEqual(index.lookup("plug-1", "home/plug-1/telemetry").map((f) => f.integration), ["hit"]);
    assert.equal(index.lastVisited, 1);
    assert.deepEqual(index.lookup("nobody", "home/x"), []);
    assert.equal(index.lastVisited, 0);
  });

  it("wildcard first levels share one bucket; each integration yields its first matching flow", () => {
    const index = new FlowIndex([
      ...flows("a", 0, ["d"], ["+/x"]),
      ...flows("b", 1, ["d"], ["#"]),
      ...flows("c", 2, ["d"], ["home/x"]),
    ]);
    assert.deepEqual(index.lookup("d", "home/x").map((f) => f.integration), ["a", "b", "c"]);
    assert.deepEqual(index.lookup("d", "other/x").map((f) => f.integration), ["a", "b"]);
    assert.deepEqual(index.lookup("d", "$SYS/x").map((f) => f.integration), []);
  });

  it("within one integration the first flow in file order is the rule, whatever bucket it sits in", () => {
    const c = contract("two", (x) => {
      x.flows[0].topics = ["#"];
      x.flows.unshift({ ...x.flows[0], id: "first", topics: ["+/plug-1/telemetry"] });
      x.flows[1].topics = ["home/plug-1/telemetry"];
    });
    const v = validateContract(c);
    assert.ok(v.ok);
    const r = compile(v.contract as Contract, "00", undefined, 0);
    assert.ok("compiled" in r);
    const index = new FlowIndex(r.compiled.flows);
    assert.deepEqual(index.lookup("plug-1", "home/plug-1/telemetry").map((f) => f.flow.id), ["first"]);
  });
});
