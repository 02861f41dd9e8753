/** Flow aggregation limits: the aggregator flushes early rather than grow past its group limit. */
import assert from "node:assert/strict";
import { FlowAggregator } from "../../src/audit/aggregate.js";
import type { AuditEvent } from "../../src/audit/types.js";
import { FakeClock } from "../lib/fake-clock.js";

describe("FlowAggregator", () => {
  it("writes early instead of growing past maxGroups, and rejects malformed samples", () => {
    const clock = new FakeClock();
    const emitted: AuditEvent[] = [];
    let seq = 0;
    const agg = new FlowAggregator({
      clock, timers: clock, maxGroups: 3, rowsPerRecord: 100, onError: (e) => assert.fail(String(e)),
      emit: (ev) => {
        emitted.push(ev);
        return { seq: ++seq, done: Promise.resolve(seq) };
      },
    });
    for (let d = 0; d < 7; d++) void agg.add({ device: `d${d}`, integration: "c", decision: "allow", rule: null, reason: "ok", bytes: 1, fieldsDropped: 0 });
    assert.ok(agg.pending <= 3, `${agg.pending} groups held`);
    assert.ok(emitted.length >= 2);
    assert.throws(() => agg.add({ device: "d", integration: null, decision: "allow", rule: null, reason: "ok", bytes: -1, fieldsDropped: 0 }), /non-negative/);
    agg.close();
    const rows = emitted.flatMap((e) => e.summary ?? []);
    assert.equal(rows.length, 7);
    assert.equal(clock.pendingCount, 0);
  });
});
