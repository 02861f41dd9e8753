/** The topic-tree subscription store against a naive list of (subscriber, filter, qos) and the textbook matcher. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { SubscriptionTree } from "../../src/mqtt/subtree.js";
import { referenceMatches } from "../fixtures/mqtt/reference-topic.js";

/** Every match of `topic` as sorted "sub filter-less qos" strings (the tree reports one per filter). */
function collect(t: SubscriptionTree<string>, topic: string): string[] {
  const out: string[] = [];
  t.match(topic, (s, q) => out.push(`${s}:${q}`));
  return out.sort();
}

describe("mqtt subtree: the topic tree", () => {
  it("matches the §4.7 examples, $-topics and the parent level of #", () => {
    const t = new SubscriptionTree<string>();
    for (const f of ["sport/tennis/player1/#", "sport/+", "#", "+/monitor/Clients", "$SYS/#", "/+", "+/+", "a/#"]) t.add(f, f, 0);
    assert.deepEqual(collect(t, "sport/tennis/player1"), ["#:0", "sport/tennis/player1/#:0"]);
    assert.deepEqual(collect(t, "sport"), ["#:0"]); // "sport/+" needs a level
    assert.deepEqual(collect(t, "sport/"), ["#:0", "+/+:0", "sport/+:0"]);
    assert.deepEqual(collect(t, "$SYS/monitor/Clients"), ["$SYS/#:0"]); // §4.7.2
    assert.deepEqual(collect(t, "/finance"), ["#:0", "+/+:0", "/+:0"]);
    assert.deepEqual(collect(t, "a"), ["#:0", "a/#:0"]);
  });

  it("replaces a subscriber's QoS on the same filter, removes and prunes", () => {
    const t = new SubscriptionTree<string>();
    assert.equal(t.add("a/+/c", "x", 0), true);
    assert.equal(t.add("a/+/c", "x", 2), false);
    assert.equal(t.size, 1);
    assert.deepEqual(collect(t, "a/b/c"), ["x:2"]);
    assert.equal(t.remove("a/+", "x"), false);
    assert.equal(t.remove("a/+/c", "y"), false);
    assert.equal(t.remove("a/+/c", "x"), true);
    assert.equal(t.empty, true);
    assert.deepEqual(collect(t, "a/b/c"), []);
  });

  it("agrees with a naive store over random adds, removes and matches (model)", () => {
    const level = fc.constantFrom("a", "b", "", "$x");
    const filter = fc.oneof(
      fc.constant("#"),
      fc.tuple(fc.array(fc.oneof(level, fc.constant("+")), { minLength: 1, maxLength: 3 }), fc.boolean()).map(([l, h]) => (h ? [...l, "#"] : l).join("/")),
    ).filter((f) => f.length > 0);
    const topic = fc.array(level, { minLength: 1, maxLength: 4 }).map((l) => l.join("/")).filter((t) => t.length > 0);
    const sub = fc.constantFrom("s1", "s2", "s3");
    const op = fc.oneof(
      fc.record({ op: fc.constant("add" as const), f: filter, s: sub, q: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ op: fc.constant("remove" as const), f: filter, s: sub }),
      fc.record({ op: fc.constant("match" as const), t: topic }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const tree = new SubscriptionTree<string>();
        const naive = new Map<string, number>(); // "sub\0filter" → qos
        for (const o of ops) {
          if (o.op === "add") {
            const k = `${o.s}\u0000${o.f}`;
            assert.equal(tree.add(o.f, o.s, o.q), !naive.has(k));
            naive.set(k, o.q);
          } else if (o.op === "remove") {
            const k = `${o.s}\u0000${o.f}`;
            assert.equal(tree.remove(o.f, o.s), naive.delete(k));
          } else {
            const want: string[] = [];
            for (const [k, q] of naive) {
              const [s, f] = k.split("\u0000") as [string, string];
              if (referenceMatches(f, o.t)) want.push(`${s}:${q}`);
            }
            assert.deepEqual(collect(tree, o.t), want.sort(), `match ${o.t}`);
          }
          assert.equal(tree.size, naive.size);
        }
      }),
      { numRuns: 300 },
    );
  });
});
