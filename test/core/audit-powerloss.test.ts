/**
 * The short power-loss run for `npm test`: the same workload as `npm run test:powerloss`, fewer
 * operations, the power cut at every 9th erase or program, in each tear mode.
 */
import assert from "node:assert/strict";
import { runPowerloss } from "../powerloss/workload.js";

describe("audit log under power loss (sampled)", () => {
  it("keeps every acknowledged record and a verifiable chain after cuts at every 9th flash operation", async () => {
    const r = await runPowerloss({ ops: 90, step: 9, groupCommitMs: 0 });
    assert.ok(r.cuts >= 20, `only ${r.cuts} cuts`);
    assert.deepEqual(r.failures.slice(0, 5), []);
    assert.equal(r.lost, 0);
    assert.equal(r.corrupt, 0);
    assert.ok((r.mix["record:seal"] ?? 0) > 0 && r.mix.remount! > 0, "the workload seals and remounts");
  });
});
