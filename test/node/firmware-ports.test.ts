/**
 * The platform-free parts of hosts/moddable checked on Node: SPKI pin extraction against node:crypto,
 * the KeyStore naming rules, and the boot self-test's vectors against the @noble Crypto port (the same
 * self-test passes inside XS in the `lin` build: tools/firmware-lin.ts).
 */
import assert from "node:assert/strict";
import { X509Certificate, createHash, webcrypto } from "node:crypto";
import "reflect-metadata"; // @peculiar/x509 (tsyringe) needs the Reflect polyfill first
import * as x509 from "@peculiar/x509";
import type { Board, KeyStore } from "../../src/ports.js";
import { ramFlash } from "../../src/flash/nor.js";
import { FakeClock } from "../lib/fake-clock.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { base64, matchesPin, spkiOf } from "../../hosts/moddable/spki.js";
import { MAX_KEY_VALUE, checkEntry, checkName } from "../../hosts/moddable/keystore-rules.js";
import { selfTest } from "../../hosts/moddable/selftest.js";
import { utf8Decode, utf8Encode } from "../../hosts/moddable/utf8.js";
import { utf8Contract } from "../contract/utf8.contract.js";
import fc from "fast-check";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

async function selfSigned(algorithm: EcKeyGenParams | RsaHashedKeyGenParams, signing: EcdsaParams | Algorithm): Promise<Uint8Array> {
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: "CN=vendor.example",
    notBefore: new Date("2025-01-01"),
    notAfter: new Date("2030-01-01"),
    keys,
    signingAlgorithm: signing,
  });
  return new Uint8Array(cert.rawData);
}

const sha256 = (data: Uint8Array): Uint8Array => new Uint8Array(createHash("sha256").update(data).digest());

describe("firmware: certificate pins (hosts/moddable/spki.ts)", () => {
  for (const [name, algorithm, signing] of [
    ["ECDSA P-256", { name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" }],
    ["RSA-2048", { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }, { name: "RSASSA-PKCS1-v1_5" }],
  ] as const) {
    it(`extracts the SubjectPublicKeyInfo of a ${name} certificate exactly as node:crypto does`, async () => {
      const der = await selfSigned(algorithm, signing);
      const expected = new X509Certificate(der).publicKey.export({ type: "spki", format: "der" });
      assert.deepEqual(Buffer.from(spkiOf(der)), expected);
      const pin = createHash("sha256").update(expected).digest("base64");
      assert.ok(matchesPin(der, ["AAAA", pin], sha256));
      assert.ok(!matchesPin(der, ["AAAA"], sha256));
    });
  }

  it("refuses truncated or non-certificate DER instead of matching garbage", async () => {
    const der = await selfSigned({ name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" });
    for (const cut of [0, 1, 10, 100, der.length - 1]) assert.throws(() => spkiOf(der.subarray(0, cut)), /DER|SEQUENCE/);
    assert.throws(() => spkiOf(Uint8Array.of(0x02, 0x01, 0x00)), /SEQUENCE/);
  });

  it("encodes base64 as RFC 4648 (test vectors §10)", () => {
    const enc = (s: string) => base64(new TextEncoder().encode(s));
    assert.deepEqual(["", "f", "fo", "foo", "foob", "fooba", "foobar"].map(enc), ["", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"]);
  });
});

describe("firmware: KeyStore rules (hosts/moddable/keystore-rules.ts)", () => {
  it("accepts NVS-sized names and values and rejects the rest with RangeError", () => {
    checkName("tls.key");
    checkName("a".repeat(15));
    checkEntry("wifi.pass", new Uint8Array(MAX_KEY_VALUE));
    for (const bad of ["", "a".repeat(16), "Upper", "sp ace", "slash/"]) assert.throws(() => checkName(bad), RangeError);
    assert.throws(() => checkEntry("big", new Uint8Array(MAX_KEY_VALUE + 1)), RangeError);
  });
});

class MapKeyStore implements KeyStore {
  readonly map = new Map<string, Uint8Array>();
  get(name: string) {
    checkName(name);
    return this.map.get(name)?.slice();
  }
  set(name: string, value: Uint8Array) {
    checkEntry(name, value);
    this.map.set(name, value.slice());
  }
  delete(name: string) {
    this.map.delete(name);
  }
}

describe("firmware: boot self-test (hosts/moddable/selftest.ts)", () => {
  it("passes every published vector on the @noble Crypto port, RAM flash and a map key store", () => {
    const random = seededRandom();
    const clock = new FakeClock();
    const board = { clock, timers: clock, random, crypto: nobleCrypto(random), flash: ramFlash(8192), keys: new MapKeyStore() } as unknown as Board;
    const result = selfTest(board, ramFlash(4096));
    assert.deepEqual(result.failures, []);
    assert.equal(result.passed, 9);
  });

  it("fails closed when a primitive gives a wrong answer", () => {
    const random = seededRandom();
    const clock = new FakeClock();
    const crypto = nobleCrypto(random);
    const broken = { ...crypto, sha256: (d: Uint8Array) => crypto.sha256(d).fill(0) };
    const board = { clock, timers: clock, random, crypto: broken, flash: ramFlash(8192), keys: new MapKeyStore() } as unknown as Board;
    const result = selfTest(board, ramFlash(4096));
    assert.equal(result.failures.length, 1);
    assert.match(result.failures[0]!, /^sha256: /);
  });
});

describe("firmware: UTF-8 for the TextEncoder/TextDecoder globals (hosts/moddable/utf8.ts)", () => {
  it("encodes every string as TextEncoder does, and decodes it back", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 300 }), (s) => {
        const bytes = utf8Encode(s);
        assert.deepEqual(bytes, new TextEncoder().encode(s));
        assert.equal(utf8Decode(bytes), new TextDecoder().decode(bytes));
      }),
    );
  });

  it("rejects exactly what a fatal TextDecoder rejects", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 12 }), (bytes) => {
        let expected: string | undefined;
        try {
          expected = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
        } catch {
          expected = undefined;
        }
        assert.equal(utf8Decode(bytes), expected);
      }),
      { numRuns: 5000 },
    );
  });

  it("decodes 100 000 characters without deep argument lists (the XS stack holds 512 slots)", () => {
    const s = "é🔒a".repeat(25000);
    assert.equal(utf8Decode(utf8Encode(s)), s);
  });
});

// On Node the natives are absent: this is the strict JavaScript path (the lin firmware runs the same
// contract against the native fast path: hosts/moddable/port-contracts).
utf8Contract("hosts/moddable/utf8.ts on Node (JavaScript path)", { utf8Encode, utf8Decode });
