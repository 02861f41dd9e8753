/** The retained-message store: replace, clear with an empty payload, bounds by count and bytes, matching. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { RetainedStore } from "../../src/mqtt/retained.js";
import { referenceMatches } from "../fixtures/mqtt/reference-topic.js";

const b = (s: string) => new TextEncoder().encode(s);

describe("mqtt retained: the store", () => {
  it("stores, replaces, clears with an empty payload (§3.3.1.3)", () => {
    const r = new RetainedStore(4, 100);
    assert.equal(r.set("a/b", b("1"), 1), "stored");
    assert.equal(r.set("a/b", b("22"), 0), "replaced");
    assert.deepEqual(r.get("a/b"), { topic: "a/b", payload: b("22"), qos: 0 });
    assert.equal(r.bytes, 5);
    assert.equal(r.set("a/b", new Uint8Array(0), 0), "cleared");
    assert.equal(r.set("a/b", new Uint8Array(0), 0), "absent");
    assert.equal(r.size, 0);
    assert.equal(r.bytes, 0);
  });

  it("refuses a new topic beyond the count or the bytes, and a replacement that would not fit", () => {
    const r = new RetainedStore(2, 20);
    assert.equal(r.set("t1", b("12345"), 0), "stored"); // 7 bytes
    assert.equal(r.set("t2", b("12345"), 0), "stored"); // 14
    assert.equal(r.set("t3", b("1"), 0), "full", "count");
    assert.equal(r.set("t2", b("1234567890123"), 0), "full", "bytes: 7 + 15 > 20");
    assert.equal(r.set("t2", b("12345678901"), 0), "replaced", "7 + 13 = 20 fits");
    assert.equal(r.set("t1", new Uint8Array(0), 0), "cleared");
    assert.equal(r.set("t3", b("1"), 0), "stored");
    assert.deepEqual(r.all().map((m) => m.topic), ["t2", "t3"]);
  });

  it("MQTT 5 Message Expiry: sends the time left, deletes the message once expired (§3.3.2.3.3)", () => {
    const r = new RetainedStore(4, 100);
    const t0 = 1_000_000;
    assert.equal(r.set("s/temp", b("21"), 1, { messageExpiryInterval: 10, contentType: "text/plain" }, t0), "stored");
    assert.equal(r.set("s/door", b("open"), 0, undefined, t0), "stored");
    // 2.5 s later: 7.5 s left, sent as 8 (whole seconds, rounded up); its other properties kept.
    const early = r.matching("s/#", t0 + 2500);
    assert.deepEqual(early.map((m) => [m.topic, m.properties?.messageExpiryInterval, m.properties?.contentType]), [["s/temp", 8, "text/plain"], ["s/door", undefined, undefined]]);
    assert.equal(r.get("s/temp", t0 + 9999)?.properties?.messageExpiryInterval, 1);
    // At the deadline it is gone, and its bytes with it; the message without expiry stays.
    assert.deepEqual(r.matching("s/#", t0 + 10_000).map((m) => m.topic), ["s/door"]);
    assert.equal(r.get("s/temp", t0 + 10_000), undefined);
    assert.equal(r.size, 1);
    assert.equal(r.bytes, 10);
    assert.deepEqual(r.all(t0 + 20_000).map((m) => m.topic), ["s/door"]);
  });

  it("MQTT 5 Message Expiry: a replacement without expiry keeps its topic; a freed slot takes a new topic", () => {
    const r = new RetainedStore(1, 100);
    assert.equal(r.set("a", b("1"), 0, { messageExpiryInterval: 1 }, 0), "stored");
    assert.equal(r.set("b", b("1"), 0, undefined, 500), "full", "a still holds the only slot");
    assert.equal(r.set("a", b("2"), 0, undefined, 600), "replaced");
    assert.equal(r.get("a", 10_000)?.payload[0], 0x32, "the replacement has no expiry");
    assert.equal(r.set("a", new Uint8Array(0), 0, undefined, 10_000), "cleared");
    assert.equal(r.set("a", b("3"), 0, { messageExpiryInterval: 1 }, 20_000), "stored");
    assert.equal(r.set("b", b("1"), 0, undefined, 21_000), "stored", "a expired at 21 s: its slot is free");
    assert.deepEqual(r.all(21_000).map((m) => m.topic), ["b"]);
  });

  it("matches filters like the textbook matcher, $ rule included (property)", () => {
    const topic = fc.array(fc.constantFrom("a", "b", "$s", ""), { minLength: 1, maxLength: 3 }).map((l) => l.join("/")).filter((t) => t.length > 0);
    const filter = fc.oneof(fc.constant("#"), fc.array(fc.constantFrom("a", "b", "+", "$s"), { minLength: 1, maxLength: 3 }).map((l) => l.join("/")), fc.array(fc.constantFrom("a", "+"), { minLength: 1, maxLength: 2 }).map((l) => [...l, "#"].join("/")));
    fc.assert(
      fc.property(fc.array(fc.tuple(topic, fc.nat(3)), { maxLength: 12 }), filter, (sets, f) => {
        const r = new RetainedStore(100, 10000);
        const model = new Map<string, number>();
        for (const [t, n] of sets) {
          r.set(t, new Uint8Array(n), 0);
          if (n === 0) model.delete(t);
          else {
            model.delete(t);
            model.set(t, n);
          }
        }
        const want = [...model.keys()].filter((t) => referenceMatches(f, t));
        assert.deepEqual(r.matching(f).map((m) => m.topic), want);
      }),
      { numRuns: 300 },
    );
  });
});
