/**
 * src/gateway/today.ts on its own: what left today is counted from flow commits (messages) and
 * summary rows (bytes, minimized), from the local midnight of the configured offset; the log is
 * searched by time once and then read only from the last seq, also on a quiet day and after midnight.
 * Runs on Node and inside XS.
 */
import assert from "node:assert/strict";
import type { AuditQuery, AuditRecord } from "../../src/audit/types.js";
import { TodayCounters } from "../../src/gateway/today.js";
import { FakeClock } from "../lib/fake-clock.js";

const H = 3_600_000;
const DAY0 = Date.UTC(2026, 0, 1);

describe("today's counters", () => {
  let log: AuditRecord[];
  let asked: AuditQuery[];
  const query = (q: AuditQuery): AuditRecord[] => {
    asked.push(q);
    return log.filter((r) => r.seq >= (q.since ?? 1) && (q.fromTime === undefined || r.time >= q.fromTime)).slice(0, q.limit ?? 1000);
  };
  const append = (time: number, r: Partial<AuditRecord>): void => {
    log.push({ seq: log.length + 1, time, timeSet: true, kind: "flow-summary", decision: "allow", ...r } as AuditRecord);
  };
  const commit = (time: number, detail: Record<string, number>) => append(time, { reason: "commit", detail });
  const rows = (time: number, minute: number, integration: string, count: number, bytes: number, decision: "allow" | "minimize" = "allow") =>
    append(time, { summary: [{ minute, device: "thermostat", integration, decision, rule: "state", count, bytes, fieldsDropped: 0 }] });
  beforeEach(() => {
    log = [];
    asked = [];
  });
  const make = (clock: FakeClock, utcOffsetMinutes?: number) =>
    new TodayCounters({ query, nextSeq: () => log.length + 1, clock, ...(utcOffsetMinutes !== undefined ? { utcOffsetMinutes } : {}) });

  it("counts messages from commits and bytes and the minimized share from rows, since the local midnight", () => {
    const clock = new FakeClock(DAY0 + 10 * H); // 11:00 at UTC+1
    commit(DAY0 - 2 * H, { "thermo-cloud": 5 }); // 23:00 the day before, local
    commit(DAY0 - 0.5 * H, { "thermo-cloud": 2, "(none)": 1 }); // 00:30 local: today
    rows(DAY0 + 1 * H, DAY0 - 2 * H, "thermo-cloud", 5, 500); // yesterday's rows, written today
    rows(DAY0 + 1 * H, DAY0 - 0.5 * H, "thermo-cloud", 2, 60, "minimize");
    commit(DAY0 + 2 * H, { "energy-insights": 1, "(local)": 4 });
    const t = make(clock, 60).read();
    assert.equal(t.since, DAY0 - H);
    assert.deepEqual(t.integrations, [
      { integration: "energy-insights", messages: 1, minimized: 0, bytes: 0 },
      { integration: "thermo-cloud", messages: 2, minimized: 2, bytes: 60 },
    ]);
    assert.equal(t.throughSeq, 5);
  });

  it("searches by time once, then reads only what was appended — on a quiet day and across midnight", () => {
    const clock = new FakeClock(DAY0 + 10 * H);
    commit(DAY0 - H, { a: 1 });
    const today = make(clock);
    assert.deepEqual(today.read().integrations, []);
    assert.deepEqual(asked.map((q) => [q.since, q.fromTime]), [[1, DAY0]]);
    today.read();
    assert.deepEqual(asked.at(-1), { since: 2, limit: 500 }, "a quiet day does not search the log again");
    commit(clock.now(), { a: 3 });
    assert.deepEqual(today.read().integrations.map((x) => [x.integration, x.messages]), [["a", 3]]);
    clock.tick(14 * H); // past midnight
    commit(clock.now(), { a: 1 });
    const next = today.read();
    assert.deepEqual([next.since, next.integrations.map((x) => x.messages)], [DAY0 + 24 * H, [1]]);
    assert.deepEqual(asked.at(-1), { since: 3, limit: 500 }, "the new day goes on from the last seq");
  });

  it("pages through a busy day", () => {
    const clock = new FakeClock(DAY0 + 20 * H);
    for (let i = 0; i < 1200; i++) commit(DAY0 + i * 1000, { a: 1 });
    assert.equal(make(clock).read().integrations[0]!.messages, 1200);
    assert.deepEqual(asked.map((q) => q.since), [1, 501, 1001]);
  });

  it("refuses an offset outside -720..840", () => {
    assert.throws(() => make(new FakeClock(), 900), RangeError);
    assert.throws(() => make(new FakeClock(), 1.5), RangeError);
  });
});
