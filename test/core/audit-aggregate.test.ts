/** Flow aggregation limits: the aggregator flushes early rather than grow past its group limit. */
import assert from "node:assert/strict";
import fc from "fast-check";
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

describe("FlowAggregator commit windows", () => {
  const allow = (device: string) => ({ device, integration: "c", decision: "allow" as const, rule: null, reason: "ok", bytes: 1, fieldsDropped: 0 });

  it("the allowed flows of one window share one promise, settled by their commit record, and the next window gets another", async () => {
    const clock = new FakeClock();
    const commits: { ev: AuditEvent; resolve: (seq: number) => void }[] = [];
    let seq = 0;
    const agg = new FlowAggregator({
      clock, timers: clock, rowsPerRecord: 100, flowCommitMs: 2000, onError: (e) => assert.fail(String(e)),
      emit: (ev) => {
        let resolve!: (n: number) => void;
        const done = new Promise<number>((r) => (resolve = r));
        if (ev.reason === "commit") commits.push({ ev, resolve });
        else resolve(++seq);
        return { seq: ++seq, done };
      },
    });
    const first = agg.add(allow("a"));
    await Promise.resolve();
    // The first flow after a quiet window commits at once; the next ones wait for the window.
    assert.equal(commits.length, 1);
    const second = [agg.add(allow("b")), agg.add(allow("c")), agg.add(allow("a"))];
    assert.ok(second.every((p) => p === second[0]) && second[0] !== first, "one promise per window");
    assert.equal(agg.uncommitted, 3);
    let settled = 0;
    for (const p of second) void p.then(() => settled++);
    commits[0]!.resolve(1);
    await first;
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, 0, "the second window waits for its own record");
    clock.tick(2000);
    await Promise.resolve();
    assert.equal(commits.length, 2);
    assert.deepEqual(commits[1]!.ev.detail, { c: 3 });
    assert.equal(agg.uncommitted, 0);
    commits[1]!.resolve(2);
    await Promise.all(second);
    assert.equal(settled, 3);
    agg.close();
  });

  it("a refused commit rejects every flow of its window (and a dropped promise is no unhandled rejection)", async () => {
    const clock = new FakeClock();
    const agg = new FlowAggregator({
      clock, timers: clock, rowsPerRecord: 100, flowCommitMs: 2000, onError: () => undefined,
      emit: (ev) => ({ seq: 1, done: ev.reason === "commit" ? Promise.reject(new Error("log full")) : Promise.resolve(1) }),
    });
    void agg.add(allow("dropped"));
    const kept = [agg.add(allow("a")), agg.add(allow("b"))];
    clock.tick(2000);
    const results = await Promise.allSettled(kept);
    assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected"]);
    assert.match(String((results[0] as PromiseRejectedResult).reason), /log full/);
    agg.close();
  });
});

describe("FlowAggregator rows and repeated denials (property)", () => {
  it("writes exactly the per-minute rows and repeat counts a plain model computes", async () => {
    const sample = fc.record({
      device: fc.constantFrom("d1", "d2", "tele-3"),
      integration: fc.constantFrom<string | null>(null, "acme", "b-co"),
      decision: fc.constantFrom<"allow" | "minimize" | "deny">("allow", "minimize", "deny"),
      rule: fc.constantFrom<string | null>(null, "f1", "f2"),
      reason: fc.constantFrom("ok", "no-consent", "rate-limit"),
      topic: fc.option(fc.constantFrom("home/a", "home/b/c"), { nil: undefined }),
      bytes: fc.nat(500),
      fieldsDropped: fc.nat(4),
      local: fc.boolean(),
      advanceMs: fc.constantFrom(0, 0, 1_000, 30_000, 61_000),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(sample, { maxLength: 60 }), async (samples) => {
        const clock = new FakeClock();
        const emitted: AuditEvent[] = [];
        let seq = 0;
        const agg = new FlowAggregator({
          clock, timers: clock, rowsPerRecord: 1000, onError: (e) => assert.fail(String(e)),
          emit: (ev) => {
            emitted.push(ev);
            return { seq: ++seq, done: Promise.resolve(seq) };
          },
        });
        // The model: rows by minute/device/integration/decision/rule; denials by minute/.../topic.
        const rows = new Map<string, { minute: number; device: string; integration: string | null; decision: string; rule: string | null; count: number; bytes: number; fieldsDropped: number }>();
        const denials = new Map<string, { first: number; repeats: number; minute: number; device: string; integration: string | null; rule: string | null; reason: string }>();
        const firstSeqs: number[] = [];
        for (const s of samples) {
          clock.tick(s.advanceMs);
          const minute = Math.floor(clock.now() / 60000) * 60000;
          if (s.local) {
            agg.countLocal(s.device, s.topic ?? "home/x", s.bytes);
            const k = JSON.stringify([minute, s.device, "(local)", "allow", s.topic ?? "home/x"]);
            const r = rows.get(k) ?? { minute, device: s.device, integration: "(local)", decision: "allow", rule: s.topic ?? "home/x", count: 0, bytes: 0, fieldsDropped: 0 };
            r.count++;
            r.bytes += s.bytes;
            rows.set(k, r);
            continue;
          }
          const seqBefore = seq;
          const done = agg.add({ device: s.device, integration: s.integration, decision: s.decision, rule: s.rule, reason: s.reason, ...(s.topic !== undefined ? { topic: s.topic } : {}), bytes: s.bytes, fieldsDropped: s.fieldsDropped });
          if (s.decision === "deny") {
            const k = JSON.stringify([minute, s.device, s.integration, s.rule, s.reason, s.topic ?? null]);
            const d = denials.get(k);
            if (d) d.repeats++;
            else denials.set(k, { first: seqBefore + 1, repeats: 0, minute, device: s.device, integration: s.integration, rule: s.rule, reason: s.reason });
            firstSeqs.push((d ?? denials.get(k)!).first);
            assert.equal(await done, (d ?? denials.get(k)!).first, "a repeat resolves with its first record's seq");
          } else {
            const k = JSON.stringify([minute, s.device, s.integration, s.decision, s.rule]);
            const r = rows.get(k) ?? { minute, device: s.device, integration: s.integration, decision: s.decision, rule: s.rule, count: 0, bytes: 0, fieldsDropped: 0 };
            r.count++;
            r.bytes += s.bytes;
            r.fieldsDropped += s.fieldsDropped;
            rows.set(k, r);
          }
        }
        agg.close();
        await new Promise((r) => setImmediate(r));
        const key = (r: { minute: number; device: string; integration: string | null; decision: string; rule: string | null }): string => JSON.stringify([r.minute, r.device, r.integration, r.decision, r.rule]);
        const got = emitted.flatMap((e) => e.summary ?? []).map((r) => ({ ...r }));
        assert.deepEqual(got.map(key).sort(), [...rows.values()].map(key).sort());
        for (const r of got) assert.deepEqual(r, rows.get(key(r)));
        const repeats = emitted.filter((e) => e.kind === "flow-summary" && e.decision === "deny");
        const expected = [...denials.values()].filter((d) => d.repeats > 0);
        assert.equal(repeats.length, expected.length);
        for (const e of repeats) {
          const d = expected.find((x) => x.first === e.detail?.["repeatOf"])!;
          assert.ok(d, `a repeat record for seq ${String(e.detail?.["repeatOf"])}`);
          assert.deepEqual(
            { device: e.device, integration: e.integration ?? null, rule: e.rule ?? null, reason: e.reason, repeats: e.detail?.["repeats"], minute: e.detail?.["minute"] },
            { device: d.device, integration: d.integration, rule: d.rule, reason: d.reason, repeats: d.repeats, minute: d.minute },
          );
        }
      }),
      { numRuns: 150 },
    );
  });
});
