/** HPKE (src/crypto/hpke.ts) against RFC 9180 Appendix A.3.1, plus its sequence-number and failure rules. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { fromHex as h, toHex } from "../../src/util/bytes.js";
import {
  computeNonce,
  decap,
  deriveKeyPair,
  encap,
  keySchedule,
  setupBaseR,
  setupBaseS,
} from "../../src/crypto/hpke.js";
import { PortcullisError } from "../../src/errors.js";
import { rfc9180A3 as v } from "../fixtures/hpke/rfc9180-a3.js";

const c = nobleCrypto(seededRandom("hpke-vectors"));

describe("HPKE RFC 9180 A.3.1: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base", () => {
  it("DeriveKeyPair(ikmE, ikmR) gives skEm/pkEm and skRm/pkRm", () => {
    const e = deriveKeyPair(c, h(v.ikmE));
    const r = deriveKeyPair(c, h(v.ikmR));
    assert.equal(toHex(e.privateKey), v.skEm);
    assert.equal(toHex(e.publicKey), v.pkEm);
    assert.equal(toHex(r.privateKey), v.skRm);
    assert.equal(toHex(r.publicKey), v.pkRm);
  });

  it("Encap/Decap give enc and shared_secret; KeySchedule gives key, base_nonce, exporter_secret", () => {
    const e = deriveKeyPair(c, h(v.ikmE));
    const { enc, sharedSecret } = encap(c, h(v.pkRm), e);
    assert.equal(toHex(enc), v.enc);
    assert.equal(toHex(sharedSecret), v.shared_secret);
    assert.equal(toHex(decap(c, enc, h(v.skRm))), v.shared_secret);
    const ks = keySchedule(c, sharedSecret, h(v.info));
    assert.equal(toHex(ks.key), v.key);
    assert.equal(toHex(ks.baseNonce), v.base_nonce);
    assert.equal(toHex(ks.exporterSecret), v.exporter_secret);
    for (const x of v.encryptions) assert.equal(toHex(computeNonce(ks.baseNonce, x.seq)), x.nonce);
  });

  it("seals at seq 0, 1, 2, 4, 255, 256 to the published ciphertexts and opens them", () => {
    const s = setupBaseS(c, h(v.pkRm), h(v.info), deriveKeyPair(c, h(v.ikmE)));
    const r = setupBaseR(c, h(v.skRm), h(v.enc), h(v.info));
    for (const x of v.encryptions) {
      assert.equal(toHex(s.sealAt(x.seq, h(x.aad), h(x.pt))), x.ct, `seal seq ${x.seq}`);
      assert.equal(toHex(r.openAt(x.seq, h(x.aad), h(x.ct)) ?? h("")), x.pt, `open seq ${x.seq}`);
    }
    assert.equal(s.nextSeq, 257);
  });

  it("seal/open in order move the sequence together (seq 0, 1, 2 of the vectors)", () => {
    const s = setupBaseS(c, h(v.pkRm), h(v.info), deriveKeyPair(c, h(v.ikmE)));
    const r = setupBaseR(c, h(v.skRm), h(v.enc), h(v.info));
    for (const x of v.encryptions.slice(0, 3)) {
      assert.equal(toHex(s.seal(h(x.aad), h(x.pt))), x.ct);
      assert.equal(toHex(r.open(h(x.aad), h(x.ct)) ?? h("")), x.pt);
    }
    assert.equal(r.nextSeq, 3);
  });

  it("exports match the published values on both sides", () => {
    const s = setupBaseS(c, h(v.pkRm), h(v.info), deriveKeyPair(c, h(v.ikmE)));
    const r = setupBaseR(c, h(v.skRm), h(v.enc), h(v.info));
    for (const x of v.exports) {
      assert.equal(toHex(s.export(h(x.context), x.L)), x.value);
      assert.equal(toHex(r.export(h(x.context), x.L)), x.value);
    }
  });
});

describe("HPKE context rules", () => {
  const r = deriveKeyPair(c, h(v.ikmR));

  it("never reuses a sequence number: sealAt below nextSeq throws, gaps are allowed", () => {
    const s = setupBaseS(c, r.publicKey, h(v.info));
    s.seal(new Uint8Array(0), new Uint8Array(1));
    assert.throws(() => s.sealAt(0, new Uint8Array(0), new Uint8Array(1)), PortcullisError);
    s.sealAt(10, new Uint8Array(0), new Uint8Array(1));
    assert.equal(s.nextSeq, 11);
    assert.throws(() => s.sealAt(Number.MAX_SAFE_INTEGER + 1, new Uint8Array(0), new Uint8Array(1)), PortcullisError);
  });

  it("a failed open returns undefined and does not advance the recipient", () => {
    const s = setupBaseS(c, r.publicKey, h(v.info));
    const rc = setupBaseR(c, r.privateKey, s.enc, h(v.info));
    const ct = s.seal(h("aa"), h("0102"));
    const bad = ct.slice();
    bad[0]! ^= 1;
    assert.equal(rc.open(h("aa"), bad), undefined);
    assert.equal(rc.open(h("ab"), ct), undefined);
    assert.equal(rc.nextSeq, 0);
    assert.deepEqual(rc.open(h("aa"), ct), h("0102"));
    assert.equal(rc.openAt(-1, h("aa"), ct), undefined);
  });

  it("a different info or recipient key cannot open", () => {
    const s = setupBaseS(c, r.publicKey, h(v.info));
    const ct = s.seal(new Uint8Array(0), h("01"));
    assert.equal(setupBaseR(c, r.privateKey, s.enc, h("00")).open(new Uint8Array(0), ct), undefined);
    const other = deriveKeyPair(c, new Uint8Array(32).fill(7));
    assert.equal(setupBaseR(c, other.privateKey, s.enc, h(v.info)).open(new Uint8Array(0), ct), undefined);
  });

  it("rejects an enc that is not a valid point (Malformed) and a bad recipient key (Error)", () => {
    const bad = new Uint8Array(65);
    bad[0] = 4;
    assert.throws(() => setupBaseR(c, r.privateKey, bad, h(v.info)), (e: unknown) => e instanceof PortcullisError && e.code === "malformed");
    assert.throws(() => setupBaseR(c, r.privateKey, h(v.enc).subarray(0, 33), h(v.info)), PortcullisError);
    assert.throws(() => setupBaseS(c, bad, h(v.info)), Error);
    assert.throws(() => deriveKeyPair(c, new Uint8Array(31)), PortcullisError);
  });

  it("round-trips any plaintext and aad at any forward sequence (property)", () => {
    const s = setupBaseS(c, r.publicKey, h(v.info));
    const rc = setupBaseR(c, r.privateKey, s.enc, h(v.info));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 64 }), fc.nat(1000), (pt, aad, gap) => {
        const seq = s.nextSeq + gap;
        const ct = s.sealAt(seq, aad, pt);
        assert.equal(ct.length, pt.length + 16);
        assert.deepEqual(rc.openAt(seq, aad, ct), pt);
        assert.equal(rc.openAt(seq + 1, aad, ct), undefined);
      }),
      { numRuns: 50 },
    );
  });
});
