/** The envelope (src/outbound/envelope.ts): layout byte by byte, context lifecycle, plaintext path, parsing. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { FakeClock } from "../lib/fake-clock.js";
import { concat, fromHex as h, toHex, utf8 as text } from "../../src/util/bytes.js";
import { deriveKeyPair, setupBaseR, setupBaseS } from "../../src/crypto/hpke.js";
import { envelopeExample as ex } from "../fixtures/hpke/envelope-example.js";
import {
  EnvelopeSealer,
  envelopeAad,
  envelopeInfo,
  keyId,
  parseEnvelope,
  type EnvelopeSealerOptions,
} from "../../src/outbound/envelope.js";
import { PortcullisError } from "../../src/errors.js";

const c = nobleCrypto(seededRandom("envelope"));
const vendor = deriveKeyPair(c, new Uint8Array(32).fill(0x42));
const base = (clock: FakeClock): EnvelopeSealerOptions => ({
  crypto: c,
  clock,
  integration: "acme-thermo",
  contractVersion: "3",
  encryption: "hpke",
  vendorPublicKey: vendor.publicKey,
});

/** A portable receiver on our own HPKE: opens one envelope given the context it belongs to. */
function openWith(env: Uint8Array, topic: string, enc: Uint8Array): Uint8Array | undefined {
  const p = parseEnvelope(env);
  const r = setupBaseR(c, vendor.privateKey, enc, envelopeInfo("acme-thermo", "3"));
  return r.openAt(p.seq, envelopeAad(p.header, topic), p.body);
}

describe("envelope layout", () => {
  it("info and aad are the bytes the spec gives", () => {
    assert.equal(toHex(envelopeInfo("ab", "1")), toHex(concat(text("portcullis/v1"), h("0002"), text("ab"), h("0001"), text("1"))));
    const header = h("0102");
    assert.equal(toHex(envelopeAad(header, "t/x")), "0102" + "0003" + toHex(text("t/x")));
  });

  it("the first envelope of a context: version, flags E, key id, context id, seq, enc, ciphertext", () => {
    const clock = new FakeClock();
    const s = new EnvelopeSealer(base(clock));
    const env = s.seal(7, "acme/t", text("21.5"));
    const p = parseEnvelope(env);
    assert.equal(env[0], 0x01);
    assert.equal(env[1], 0x01);
    assert.equal(toHex(env.subarray(2, 10)), toHex(c.sha256(vendor.publicKey).subarray(0, 8)));
    assert.deepEqual(s.keyId, keyId(c, vendor.publicKey));
    assert.equal(toHex(env.subarray(18, 26)), "0000000000000007");
    assert.equal(env.length, 26 + 65 + 4 + 16);
    assert.ok(p.enc);
    assert.equal(toHex(p.contextId), toHex(c.sha256(p.enc).subarray(0, 8)));
    assert.equal(p.enc[0], 0x04);
    assert.deepEqual(openWith(env, "acme/t", p.enc), text("21.5"));
    assert.equal(openWith(env, "acme/other", p.enc), undefined, "the topic is bound");
  });

  it("carries enc until acknowledged, then omits it; the context id stays", () => {
    const s = new EnvelopeSealer(base(new FakeClock()));
    const e1 = parseEnvelope(s.seal(1, "t", text("a")));
    const e2 = parseEnvelope(s.seal(2, "t", text("b")));
    assert.ok(e1.enc && e2.enc);
    assert.deepEqual(e1.enc, e2.enc);
    s.acknowledged();
    const raw3 = s.seal(3, "t", text("c"));
    const e3 = parseEnvelope(raw3);
    assert.equal(raw3[1], 0x00);
    assert.equal(e3.enc, undefined);
    assert.equal(raw3.length, 26 + 1 + 16);
    assert.deepEqual(e3.contextId, e1.contextId);
    assert.deepEqual(openWith(raw3, "t", e1.enc), text("c"));
    assert.equal(s.contextsStarted, 1, "one ECDH for the whole session");
  });

  it("reset() (reconnect) and a day's age start a new context; a seq going back does too", () => {
    const clock = new FakeClock();
    const s = new EnvelopeSealer(base(clock));
    const a = parseEnvelope(s.seal(1, "t", text("a")));
    s.acknowledged();
    s.reset();
    const b = parseEnvelope(s.seal(2, "t", text("b")));
    assert.ok(b.enc);
    assert.notDeepEqual(a.contextId, b.contextId);
    s.acknowledged();
    clock.tick(24 * 3600 * 1000 - 1);
    assert.equal(parseEnvelope(s.seal(3, "t", text("c"))).enc, undefined);
    clock.tick(1);
    const d = parseEnvelope(s.seal(4, "t", text("d")));
    assert.ok(d.enc, "new context after 24 h");
    s.acknowledged();
    const e = parseEnvelope(s.seal(4, "t", text("d again")));
    assert.ok(e.enc, "resealing a seq never reuses a nonce: new context");
    assert.equal(s.contextsStarted, 4);
  });

  it("plaintext only when told: flag P, zero key and context ids, payload as is", () => {
    const s = new EnvelopeSealer({ ...base(new FakeClock()), encryption: "none" });
    const env = s.seal(9, "t", text("hello"));
    assert.equal(toHex(env), "0102" + "00".repeat(16) + "0000000000000009" + toHex(text("hello")));
    const p = parseEnvelope(env);
    assert.ok(p.plaintext);
    assert.deepEqual(p.body, text("hello"));
  });

  it("rejects bad options and over-limit payloads", () => {
    const clock = new FakeClock();
    assert.throws(() => new EnvelopeSealer({ ...base(clock), vendorPublicKey: new Uint8Array(33) }), PortcullisError);
    const { vendorPublicKey: _omit, ...noKey } = base(clock);
    assert.throws(() => new EnvelopeSealer(noKey), PortcullisError);
    assert.throws(() => new EnvelopeSealer({ ...base(clock), encryption: "rot13" as "none" }), PortcullisError);
    const s = new EnvelopeSealer({ ...base(clock), maxPayload: 8 });
    s.seal(0, "t", new Uint8Array(8));
    assert.throws(() => s.seal(1, "t", new Uint8Array(9)), (e: unknown) => e instanceof PortcullisError && e.code === "limit");
    assert.throws(() => s.seal(-1, "t", new Uint8Array(1)), PortcullisError);
  });
});

describe("the worked example of SPEC.md, Outbound envelope", () => {
  it("rebuilds byte for byte from its keys, and parses to its fields", () => {
    const r = deriveKeyPair(c, h(ex.vendorIkm));
    const e = deriveKeyPair(c, h(ex.ephemeralIkm));
    assert.equal(toHex(r.privateKey), ex.skR);
    assert.equal(toHex(r.publicKey), ex.pkR);
    const info = envelopeInfo(ex.integration, ex.contractVersion);
    assert.equal(toHex(info), ex.info);
    const ctx = setupBaseS(c, r.publicKey, info, e);
    assert.equal(toHex(ctx.enc), ex.enc);
    const p7 = parseEnvelope(h(ex.envelope7));
    assert.equal(toHex(p7.keyId), ex.keyId);
    assert.equal(toHex(p7.contextId), ex.contextId);
    assert.equal(toHex(envelopeAad(p7.header, ex.topic)), ex.aad7);
    assert.equal(toHex(concat(p7.header, ctx.sealAt(7, envelopeAad(p7.header, ex.topic), text(ex.plaintext7)))), ex.envelope7);
    const p8 = parseEnvelope(h(ex.envelope8));
    assert.equal(toHex(concat(p8.header, ctx.sealAt(8, envelopeAad(p8.header, ex.topic), text(ex.plaintext8)))), ex.envelope8);
  });
});

describe("parseEnvelope", () => {
  const good = new EnvelopeSealer(base(new FakeClock())).seal(1, "t", text("x"));
  const malformed: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["short header", good.subarray(0, 25)],
    ["version 2", concat(h("02"), good.subarray(1))],
    ["unknown flag", concat(h("0105"), good.subarray(2))],
    ["P with E", concat(h("0103"), good.subarray(2))],
    ["truncated enc", good.subarray(0, 60)],
    ["no tag", good.subarray(0, 26 + 65 + 10)],
    ["seq over 2^53", concat(good.subarray(0, 18), h("0020000000000000"), good.subarray(26))],
  ];
  for (const [name, bytes] of malformed) {
    it(`rejects ${name} as malformed`, () => {
      assert.throws(() => parseEnvelope(bytes), (e: unknown) => e instanceof PortcullisError && e.code === "malformed");
    });
  }

  it("never throws anything but Malformed on arbitrary bytes (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        try {
          parseEnvelope(b);
        } catch (e) {
          assert.ok(e instanceof PortcullisError && e.code === "malformed");
        }
      }),
    );
  });

  it("seals and opens any payload, topic and forward seq (property)", () => {
    const s = new EnvelopeSealer(base(new FakeClock()));
    let seq = 0;
    let enc: Uint8Array | undefined;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), fc.string({ maxLength: 40 }), fc.nat(5), (pt, topic, gap) => {
        seq += gap + 1;
        const env = s.seal(seq, topic, pt);
        const p = parseEnvelope(env);
        enc = p.enc ?? enc;
        assert.equal(p.seq, seq);
        assert.deepEqual(openWith(env, topic, enc as Uint8Array), pt);
        s.acknowledged();
      }),
      { numRuns: 60 },
    );
  });
});
