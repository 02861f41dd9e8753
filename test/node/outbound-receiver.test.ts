/**
 * The vendor reference receiver restores the gateway's order by envelope seq and drops duplicates
 * (SPEC.md "Contexts and sequence numbers"): property tests over out-of-order and duplicated input,
 * first on the ReorderBuffer alone, then through VendorReceiver with real envelopes (our sealer on
 * node:crypto, opened with @hpke/core), including the resend of a window in a new context.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { nodeCrypto } from "../../hosts/node/crypto.js";
import { FakeClock } from "../lib/fake-clock.js";
import { EnvelopeSealer } from "../../src/outbound/envelope.js";
import { utf8 as text } from "../../src/util/bytes.js";
import { ReorderBuffer, VendorReceiver } from "../../tools/open-envelope.js";

/** Distinct ascending seqs from 1 (some left out: the gateway's drops). */
const seqsArb = fc.array(fc.boolean(), { minLength: 1, maxLength: 80 }).map((keep) => {
  const out = keep.map((k, i) => (k || i === 0 ? i + 1 : 0)).filter((s) => s > 0);
  return out;
});

/** Each item moved back by fewer than `w` places (a window's reordering), then copies inserted anywhere after their original. */
function arrivals<T>(items: readonly T[], w: number, offsets: readonly number[], dups: readonly [number, number][]): T[] {
  const keyed = items.map((v, i) => ({ v, k: i + ((offsets[i] ?? 0) % w) + i / 1e6 }));
  keyed.sort((a, b) => a.k - b.k);
  const out = keyed.map((x) => x.v);
  for (const [which, where] of dups) {
    const v = out[which % out.length] as T;
    const at = out.indexOf(v) + 1 + (where % (out.length - out.indexOf(v)));
    out.splice(at, 0, v);
  }
  return out;
}

describe("ReorderBuffer", () => {
  it("releases every distinct seq once, ascending, whatever the arrival order within the window and the copies (property)", () => {
    fc.assert(
      fc.property(seqsArb, fc.integer({ min: 1, max: 16 }), fc.array(fc.nat(), { maxLength: 80 }), fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 30 }), (seqs, w, offsets, dups) => {
        const input = arrivals(seqs, w, offsets, dups);
        const b = new ReorderBuffer<string>({ maxHeld: w, first: 1 });
        const out = input.flatMap((s) => b.push(s, `m${s}`));
        out.push(...b.flush());
        assert.deepEqual(out.map((r) => r.seq), seqs, `input ${input.join(",")}`);
        assert.ok(out.every((r) => r.value === `m${r.seq}` && !r.late));
        assert.equal(b.duplicates, input.length - seqs.length);
        // The gaps reported are exactly the gateway's drops.
        const missing = out.reduce((n, r) => n + r.missing, 0);
        assert.equal(missing, (seqs[seqs.length - 1] as number) - seqs.length);
        assert.equal(b.held, 0);
      }),
      { numRuns: 300 },
    );
  });

  it("releases at once what is in order, holds at most maxHeld, and marks a message that comes after its gap was given up as late", () => {
    const b = new ReorderBuffer<number>({ maxHeld: 2, first: 1 });
    assert.deepEqual(b.push(1, 1).map((r) => r.seq), [1]);
    assert.deepEqual(b.push(3, 3), []);
    assert.deepEqual(b.push(4, 4), []);
    assert.equal(b.held, 2);
    const skipped = b.push(5, 5); // a third one held: 2 is given up
    assert.deepEqual(skipped.map((r) => [r.seq, r.missing]), [[3, 1], [4, 0], [5, 0]]);
    assert.deepEqual(b.push(2, 2), [{ seq: 2, value: 2, missing: 0, late: true }]);
    assert.deepEqual(b.push(2, 2), [], "and only once");
    assert.deepEqual(b.push(4, 4), []);
    assert.equal(b.duplicates, 2);
    assert.throws(() => new ReorderBuffer({ maxHeld: 0 }), /maxHeld/);
  });
});

describe("VendorReceiver order", () => {
  const crypto = nodeCrypto();
  const vendor = crypto.p256Generate();
  const topic = "acme/v1/temp";

  it("a window resent after a reconnect, reordered and duplicated: take() gives each message once, in seq order, with its payload (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 30 }), fc.integer({ min: 1, max: 8 }), fc.nat(), fc.array(fc.nat(), { maxLength: 30 }), fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 8 }), async (n, w, cut, offsets, dups) => {
        const sealer = new EnvelopeSealer({ crypto, clock: new FakeClock(), integration: "acme", contractVersion: "1", encryption: "hpke", vendorPublicKey: vendor.publicKey });
        // Session 1 sends 1..n, the connection drops; session 2 (a new context) resends from the
        // oldest unacknowledged one, at most a window back.
        const envelopes: { seq: number; bytes: Uint8Array }[] = [];
        for (let seq = 1; seq <= n; seq++) envelopes.push({ seq, bytes: sealer.seal(seq, topic, text(`m${seq}`)) });
        sealer.reset();
        for (let seq = Math.max(1, n - (cut % w)); seq <= n; seq++) envelopes.push({ seq, bytes: sealer.seal(seq, topic, text(`m${seq}`)) });
        // Seq 1 opens the stream (the receiver starts at the first seq it sees); the rest may be reordered.
        const [head, ...rest] = envelopes;
        const input = [head!, ...arrivals(rest, w, offsets, dups)];
        const r = new VendorReceiver({ privateKey: vendor.privateKey, integration: "acme", contractVersion: "1", maxHeld: w });
        const kinds = new Map<string, number>();
        const out = [];
        for (const e of input) {
          const got = await r.open(e.bytes, topic);
          kinds.set(got.kind, (kinds.get(got.kind) ?? 0) + 1);
          out.push(...r.take());
        }
        out.push(...r.flush());
        assert.deepEqual(out.map((m) => m.seq), Array.from({ length: n }, (_, i) => i + 1));
        assert.ok(out.every((m) => Buffer.from(m.value).toString() === `m${m.seq}` && !m.late));
        // No PUBACK reached the sealer, so every envelope carries its context's enc: all open.
        assert.equal(kinds.get("rejected"), undefined);
        assert.equal(kinds.get("message"), n);
        assert.equal(kinds.get("duplicate") ?? 0, input.length - n);
        assert.equal(r.missingTotal, 0);
      }),
      { numRuns: 40 },
    );
  });
});
