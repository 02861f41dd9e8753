/** Topic names, filters and matching against the examples of MQTT 3.1.1 §4.7, and a split-based reference. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { isValidTopicFilter, isValidTopicName, topicMatches } from "../../src/mqtt/codec.js";
import { referenceMatches } from "../fixtures/mqtt/reference-topic.js";

/** [filter, topic, matches] — every example of §4.7.1.2, §4.7.1.3, §4.7.2 and §4.7.3. */
const MATCHES: readonly [string, string, boolean][] = [
  ["sport/tennis/player1/#", "sport/tennis/player1", true],
  ["sport/tennis/player1/#", "sport/tennis/player1/ranking", true],
  ["sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true],
  ["sport/#", "sport", true],
  ["sport/tennis/+", "sport/tennis/player1", true],
  ["sport/tennis/+", "sport/tennis/player2", true],
  ["sport/tennis/+", "sport/tennis/player1/ranking", false],
  ["sport/+", "sport", false],
  ["sport/+", "sport/", true],
  ["+/+", "/finance", true],
  ["/+", "/finance", true],
  ["+", "/finance", false],
  ["#", "$SYS/monitor/Clients", false],
  ["+/monitor/Clients", "$SYS/monitor/Clients", false],
  ["$SYS/#", "$SYS/monitor/Clients", true],
  ["$SYS/monitor/+", "$SYS/monitor/Clients", true],
  ["ACCOUNTS", "Accounts", false],
  ["Accounts payable", "Accounts payable", true],
  ["/finance", "finance", false],
  ["/", "/", true],
  ["#", "sport/tennis", true],
  ["+/tennis/#", "sport/tennis", true],
  ["sport/+/player1", "sport/tennis/player1", true],
  ["sport/+/player1", "sport/tennis/player2", false],
  ["a/b", "a/b/c", false],
  ["a/b/c", "a/b", false],
];

describe("mqtt topics (§4.7)", () => {
  for (const [filter, topic, expected] of MATCHES) {
    it(`${JSON.stringify(filter)} ${expected ? "matches" : "does not match"} ${JSON.stringify(topic)}`, () => {
      assert.equal(isValidTopicFilter(filter), true);
      assert.equal(isValidTopicName(topic), true);
      assert.equal(topicMatches(filter, topic), expected);
    });
  }

  it("validates filters as §4.7.1 says", () => {
    for (const f of ["#", "sport/tennis/#", "+", "+/tennis/#", "sport/+/player1", "/", "a//b", "+/+"]) assert.equal(isValidTopicFilter(f), true, f);
    for (const f of ["", "sport/tennis#", "sport/tennis/#/ranking", "sport+", "a/#b", "#/", "++", "a\u0000"]) assert.equal(isValidTopicFilter(f), false, f);
  });

  it("validates names: non-empty, no wildcards (§4.7.3)", () => {
    for (const t of ["/", "a", "$SYS/x", "Accounts payable", "\u00e9/\u{1f600}"]) assert.equal(isValidTopicName(t), true, t);
    for (const t of ["", "a/+", "#", "a#", "a\u0000"]) assert.equal(isValidTopicName(t), false, t);
  });

  it("agrees with a split-based reference on random filters and topics", () => {
    const level = fc.constantFrom("", "a", "b", "$x", "ab");
    const topic = fc.array(level, { minLength: 1, maxLength: 4 }).map((l) => l.join("/")).filter(isValidTopicName);
    const filter = fc
      .tuple(fc.array(fc.oneof(level, fc.constant("+")), { minLength: 1, maxLength: 4 }), fc.boolean())
      .map(([l, hash]) => (hash ? [...l, "#"] : l).join("/"))
      .filter(isValidTopicFilter);
    fc.assert(
      fc.property(filter, topic, (f, t) => assert.equal(topicMatches(f, t), reference(f, t))),
      { numRuns: 5000 },
    );
  });
});

const reference = referenceMatches;
