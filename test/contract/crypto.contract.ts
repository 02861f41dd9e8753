/**
 * The Crypto port contract (src/ports.ts) as an abstract suite, with known answers from the standards:
 * FIPS 180-2 SHA-256 examples, RFC 4231 HMAC-SHA256, RFC 2202 HMAC-SHA1, RFC 7914 PBKDF2-HMAC-SHA256, RFC 5869 HKDF cases 1–3, McGrew–Viega GCM test
 * cases (the GCM specification's appendix B) for AES-128 and AES-256, Wycheproof P-256 ECDH.
 */
import assert from "node:assert/strict";
import type { Crypto } from "../../src/ports.js";
import { fromHex as h, toHex, utf8 as text } from "../../src/util/bytes.js";
import { wycheproofEcdhP256 } from "../fixtures/hpke/wycheproof-ecdh-p256.js";

const rep = (byte: number, n: number): Uint8Array => new Uint8Array(n).fill(byte);
const seq = (from: number, n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => from + i);

/** GCM test cases 1–4 (AES-128) and 13–16 (AES-256) from McGrew & Viega, "The Galois/Counter Mode of Operation". */
const GCM_P = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
const GCM_AAD = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
const K3 = "feffe9928665731c6d6a8f9467308308";
const gcmCases = [
  { tc: 1, k: "00".repeat(16), iv: "00".repeat(12), p: "", a: "", c: "", t: "58e2fccefa7e3061367f1d57a4e7455a" },
  { tc: 2, k: "00".repeat(16), iv: "00".repeat(12), p: "00".repeat(16), a: "", c: "0388dace60b6a392f328c2b971b2fe78", t: "ab6e47d42cec13bdf53a67b21257bddf" },
  { tc: 3, k: K3, iv: "cafebabefacedbaddecaf888", p: GCM_P, a: "", c: "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985", t: "4d5c2af327cd64a62cf35abd2ba6fab4" },
  { tc: 4, k: K3, iv: "cafebabefacedbaddecaf888", p: GCM_P.slice(0, 120), a: GCM_AAD, c: "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091", t: "5bc94fbc3221a5db94fae95ae7121a47" },
  { tc: 13, k: "00".repeat(32), iv: "00".repeat(12), p: "", a: "", c: "", t: "530f8afbc74536b9a963b4f1c4cb738b" },
  { tc: 14, k: "00".repeat(32), iv: "00".repeat(12), p: "00".repeat(16), a: "", c: "cea7403d4d606b6e074ec5d3baf39d18", t: "d0d1c8a799996bf0265b98b5d48ab919" },
  { tc: 15, k: K3 + K3, iv: "cafebabefacedbaddecaf888", p: GCM_P, a: "", c: "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad", t: "b094dac5d93471bdec1a502270e3cc6c" },
  { tc: 16, k: K3 + K3, iv: "cafebabefacedbaddecaf888", p: GCM_P.slice(0, 120), a: GCM_AAD, c: "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662", t: "76fc6ece0f4e1768cddf8853bb2d551b" },
];

/** Wycheproof scalars come with a leading 00 or shorter than 32 bytes; the port takes exactly 32. */
function scalar32(hex: string): Uint8Array {
  const b = h(hex.length > 64 ? hex.slice(hex.length - 64) : hex.padStart(64, "0"));
  return b;
}

export function cryptoContract(name: string, make: () => Crypto): void {
  describe(`Crypto contract: ${name}`, () => {
    const c = make();

    it("SHA-256 matches the FIPS 180-2 examples", () => {
      assert.equal(toHex(c.sha256(new Uint8Array(0))), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
      assert.equal(toHex(c.sha256(text("abc"))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
      assert.equal(toHex(c.sha256(text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
      assert.equal(toHex(c.sha256(rep(0x61, 1_000_000))), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    });

    it("HMAC-SHA256 matches RFC 4231 test cases 1, 2, 3, 4, 6, 7", () => {
      const cases: [Uint8Array, Uint8Array, string][] = [
        [rep(0x0b, 20), text("Hi There"), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"],
        [text("Jefe"), text("what do ya want for nothing?"), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"],
        [rep(0xaa, 20), rep(0xdd, 50), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"],
        [seq(1, 25), rep(0xcd, 50), "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"],
        [rep(0xaa, 131), text("Test Using Larger Than Block-Size Key - Hash Key First"), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"],
        [rep(0xaa, 131), text("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm."), "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"],
      ];
      for (const [key, data, mac] of cases) assert.equal(toHex(c.hmacSha256(key, data)), mac);
    });

    it("HMAC-SHA1 matches RFC 2202 test cases 1, 2, 6", () => {
      assert.equal(toHex(c.hmacSha1(rep(0x0b, 20), text("Hi There"))), "b617318655057264e28bc0b6fb378c8ef146be00");
      assert.equal(toHex(c.hmacSha1(text("Jefe"), text("what do ya want for nothing?"))), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
      assert.equal(toHex(c.hmacSha1(rep(0xaa, 80), text("Test Using Larger Than Block-Size Key - Hash Key First"))), "aa4ae5e15272d00e95705637ce8a3b55ed402112");
    });

    it("PBKDF2-HMAC-SHA256 matches RFC 7914 §11 and refuses bad counts", () => {
      assert.equal(toHex(c.pbkdf2Sha256(text("passwd"), text("salt"), 1, 64)), "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783");
      assert.equal(toHex(c.pbkdf2Sha256(text("Password"), text("NaCl"), 80000, 64)), "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d");
      // A password longer than the hash block (HMAC hashes such a key first; node:crypto's answer).
      assert.equal(toHex(c.pbkdf2Sha256(rep(0x61, 100), text("salt"), 3, 32)), "338c89a22703aed3e2d593f2febdd48122aedc8ee805d48b5aa2a6b2c2d3db60");
      assert.throws(() => c.pbkdf2Sha256(text("p"), text("s"), 0, 32), RangeError);
      assert.throws(() => c.pbkdf2Sha256(text("p"), text("s"), 1, 0), RangeError);
    });

    it("HKDF Extract/Expand match RFC 5869 test cases 1–3 (A.1–A.3)", () => {
      const cases = [
        { ikm: rep(0x0b, 22), salt: seq(0, 13), info: seq(0xf0, 10), l: 42, prk: "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5", okm: "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865" },
        { ikm: seq(0, 80), salt: seq(0x60, 80), info: seq(0xb0, 80), l: 82, prk: "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244", okm: "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87" },
        { ikm: rep(0x0b, 22), salt: new Uint8Array(0), info: new Uint8Array(0), l: 42, prk: "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04", okm: "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8" },
      ];
      for (const v of cases) {
        const prk = c.hkdfExtract(v.salt, v.ikm);
        assert.equal(toHex(prk), v.prk);
        assert.equal(toHex(c.hkdfExpand(prk, v.info, v.l)), v.okm);
      }
      assert.equal(c.hkdfExpand(h(cases[0]!.prk), new Uint8Array(0), 255 * 32).length, 8160);
      assert.throws(() => c.hkdfExpand(h(cases[0]!.prk), new Uint8Array(0), 255 * 32 + 1), RangeError);
    });

    it("AES-GCM seals and opens the McGrew–Viega test cases (AES-128 and AES-256)", () => {
      for (const v of gcmCases) {
        const sealed = c.aesGcmSeal(h(v.k), h(v.iv), h(v.p), h(v.a));
        assert.equal(toHex(sealed), v.c + v.t, `GCM test case ${v.tc}`);
        assert.equal(toHex(c.aesGcmOpen(h(v.k), h(v.iv), sealed, h(v.a)) ?? h("ff")), v.p, `GCM open ${v.tc}`);
      }
    });

    it("AES-GCM open returns undefined on any tampering, and rejects bad key/nonce lengths", () => {
      const v = gcmCases[3]!;
      const key = h(v.k);
      const iv = h(v.iv);
      const sealed = h(v.c + v.t);
      for (const pos of [0, 30, sealed.length - 16, sealed.length - 1]) {
        const bad = sealed.slice();
        bad[pos]! ^= 0x01;
        assert.equal(c.aesGcmOpen(key, iv, bad, h(v.a)), undefined, `flip at ${pos}`);
      }
      assert.equal(c.aesGcmOpen(key, iv, sealed, h(v.a + "00")), undefined, "wrong aad");
      assert.equal(c.aesGcmOpen(key, h("cafebabefacedbaddecaf889"), sealed, h(v.a)), undefined, "wrong nonce");
      assert.equal(c.aesGcmOpen(key, iv, sealed.subarray(0, 10), h(v.a)), undefined, "shorter than a tag");
      assert.throws(() => c.aesGcmSeal(new Uint8Array(24), iv, new Uint8Array(1), new Uint8Array(0)), RangeError);
      assert.throws(() => c.aesGcmSeal(key, new Uint8Array(8), new Uint8Array(1), new Uint8Array(0)), RangeError);
      assert.throws(() => c.aesGcmOpen(new Uint8Array(15), iv, sealed, new Uint8Array(0)), RangeError);
    });

    it("P-256 ECDH agrees with Wycheproof valid cases and rejects invalid points (by tcId)", () => {
      for (const v of wycheproofEcdhP256) {
        const sk = scalar32(v.private);
        const pk = h(v.public);
        if (v.result === "valid") {
          assert.equal(toHex(c.p256Ecdh(sk, pk)), v.shared, `tcId ${v.tcId}`);
        } else if (v.result === "invalid") {
          assert.throws(() => c.p256Ecdh(sk, pk), Error, `tcId ${v.tcId} must be rejected`);
        } else {
          // "acceptable" (compressed point): the port promises uncompressed input; a library that
          // decompresses must still give the right answer.
          let out: Uint8Array | undefined;
          try {
            out = c.p256Ecdh(sk, pk);
          } catch {
            out = undefined;
          }
          if (out) assert.equal(toHex(out), v.shared, `tcId ${v.tcId}`);
        }
      }
    });

    it("P-256 keys: generate gives a consistent pair, publicKey rejects 0 and n, ECDH is symmetric", () => {
      const a = c.p256Generate();
      const b = c.p256Generate();
      assert.equal(a.privateKey.length, 32);
      assert.equal(a.publicKey.length, 65);
      assert.equal(a.publicKey[0], 0x04);
      assert.deepEqual(c.p256PublicKey(a.privateKey), a.publicKey);
      assert.notDeepEqual(a.privateKey, b.privateKey);
      assert.deepEqual(c.p256Ecdh(a.privateKey, b.publicKey), c.p256Ecdh(b.privateKey, a.publicKey));
      assert.throws(() => c.p256PublicKey(new Uint8Array(32)), Error);
      assert.throws(() => c.p256PublicKey(h("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")), Error);
      // Generator G = 1·G (SEC 2 §2.4.2).
      assert.equal(toHex(c.p256PublicKey(scalar32("01"))), "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");
    });

    it("returns fresh arrays and never modifies its inputs", () => {
      const key = rep(7, 16);
      const iv = rep(9, 12);
      const pt = text("hello");
      const sealed = c.aesGcmSeal(key, iv, pt, new Uint8Array(0));
      assert.deepEqual([...key], [...rep(7, 16)]);
      assert.equal(toHex(pt), toHex(text("hello")));
      const d1 = c.sha256(pt);
      const expected = toHex(d1);
      d1.fill(0);
      assert.equal(toHex(c.sha256(pt)), expected, "a digest is not shared between calls");
      assert.ok(sealed instanceof Uint8Array);
      assert.equal(Object.getPrototypeOf(sealed), Uint8Array.prototype, "a plain Uint8Array, not a Buffer");
    });
  });
}
