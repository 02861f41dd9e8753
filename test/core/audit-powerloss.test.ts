/**
 * The short power-loss run for `npm test`: the same workload and invariant as `npm run test:powerloss`,
 * fewer operations on a smaller partition (5 sectors: small enough that the log purges, large enough
 * that records within their retention do not refuse most of the workload), the power cut at every 9th erase or
 * program in each tear mode and at every 3rd key-store write, each recovery cut again at every 3rd of
 * its writes.
 */
import assert from "node:assert/strict";
import { runPowerloss } from "../powerloss/workload.js";

describe("audit log under power loss (sampled)", () => {
  it("keeps every acknowledged record (or its sealed purge), in order, and a verifiable chain after first and second cuts", async () => {
    const r = await runPowerloss({ ops: 90, step: 9, sectors: 5, groupCommitMs: 0, recoveryStep: 3, keyStep: 3 });
    assert.deepEqual(r.failures.slice(0, 5), []);
    assert.equal(r.lost, 0);
    assert.equal(r.corrupt, 0);
    assert.ok(r.cuts - r.keyCuts - r.recoveryCuts >= 40, `only ${r.cuts} cuts`);
    assert.ok(r.keyCuts >= 10 && r.recoveryCuts >= 100, `${r.keyCuts} key-store cuts, ${r.recoveryCuts} recovery cuts`);
    assert.ok((r.mix["record:seal"] ?? 0) > 0 && r.mix.remount! > 0, "the workload seals and remounts");
    assert.ok((r.mix["record:purge"] ?? 0) > 0 && r.mix.firstSeq! > 1, "the workload purges, so coverage by purge records is checked");
  });

  it("regression: cuts where an export's seal had to purge first (found by the full run)", async () => {
    const r = await runPowerloss({ ops: 320, only: [145, 192, 236], tears: ["none"] });
    assert.deepEqual(r.failures, []);
    assert.equal(r.cuts, 3);
  });
});
