/** NumberRows (the queue's index, the log's noise list) against a plain array of entries (fast-check). */
import assert from "node:assert/strict";
import fc from "fast-check";
import { NumberRows } from "../../src/util/number-rows.js";
import { entryAt, type IndexEntry } from "../../src/outbound/queue.js";

type Op =
  | { readonly op: "push"; readonly size: number; readonly at: number }
  | { readonly op: "front"; readonly n: number }
  | { readonly op: "at"; readonly i: number }
  | { readonly op: "above"; readonly k: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant("push" as const), size: fc.nat(70_000), at: fc.constantFrom(0, 1_767_225_600_123, 2 ** 52) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("front" as const), n: fc.nat(20) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("at" as const), i: fc.integer({ min: -1, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("above" as const), k: fc.nat(30) }) },
);

describe("NumberRows (the outbound queue's index, the audit log's noise list)", () => {
  it("holds exactly what an array of entries holds, through pushes, front and middle removals and growth", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const list = new NumberRows(4);
        const model: IndexEntry[] = [];
        let seq = 1;
        for (const o of ops) {
          if (o.op === "push") {
            const e = { seq, size: o.size, enqueuedAt: o.at + seq, ref: seq * 3 + 2 ** 33 };
            seq++;
            list.push(e.seq, e.size, e.enqueuedAt, e.ref);
            model.push(e);
          } else if (o.op === "front") {
            list.removeFront(o.n);
            model.splice(0, o.n);
          } else if (o.op === "at") {
            list.removeAt(o.i);
            if (o.i >= 0 && o.i < model.length) model.splice(o.i, 1);
          } else {
            const through = (model[0]?.seq ?? 0) + o.k;
            list.keepAbove(through);
            for (let i = model.length - 1; i >= 0; i--) if (model[i]!.seq <= through) model.splice(i, 1);
          }
          assert.equal(list.length, model.length);
        }
        const got: IndexEntry[] = [];
        for (let i = 0; i < list.length; i++) {
          got.push(entryAt(list, i)!);
        }
        assert.deepEqual(got, model);
        assert.equal(entryAt(list, list.length), undefined);
        assert.equal(entryAt(list, -1), undefined);
      }),
      { numRuns: 300 },
    );
  });
});

describe("NumberRows strides", () => {
  it("keeps only its stride's columns and refuses a stride outside 1..4", () => {
    const two = new NumberRows(2);
    for (let i = 0; i < 100; i++) two.push(i, i * 10, 7, 7);
    two.removeFront(60);
    assert.equal(two.length, 40);
    assert.deepEqual([two.get(0, 0), two.get(0, 1), two.get(39, 0), two.get(39, 1)], [60, 600, 99, 990]);
    // Column 2 of row 0 is row 1's column 0: nothing of the ignored columns was stored.
    assert.equal(two.get(0, 2), 61);
    for (const bad of [0, 5, 1.5, NaN]) assert.throws(() => new NumberRows(bad), /stride must be 1\.\.4/);
  });
});
