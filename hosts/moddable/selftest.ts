/**
 * Boot self-test of the Moddable ports against published vectors, run on the device before the gateway
 * starts: a port that gives a wrong answer stops the boot (fail closed). Vectors: FIPS 180-2 B.1 (SHA-256),
 * RFC 4231 §4.3 (HMAC), RFC 5869 A.1 (HKDF), GCM spec test cases 1-2 (McGrew & Viega), RFC 5903 §8.1 (ECDH).
 */
import type { Board, Flash } from "../../src/ports.js";

function hex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => (x < 16 ? "0" : "") + x.toString(16)).join("");
}

function ascii(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function expectHex(what: string, got: Uint8Array | undefined, want: string): void {
  const g = got === undefined ? "undefined" : toHex(got);
  if (g !== want.toLowerCase()) throw new Error(`${what}: got ${g}, want ${want.toLowerCase()}`);
}

function expectThrow(what: string, f: () => unknown): void {
  try {
    f();
  } catch {
    return;
  }
  throw new Error(`${what}: did not throw`);
}

export interface SelfTestResult {
  readonly passed: number;
  readonly failures: readonly string[];
  /** Milliseconds per named operation, measured on this board. */
  readonly timings: Readonly<Record<string, number>>;
}

/** `scratch` is a flash region the test may erase (never the core's): one sector after the audit region. */
export function selfTest(board: Board, scratch: Flash): SelfTestResult {
  const { crypto, keys, random, clock } = board;
  const flash = scratch;
  const failures: string[] = [];
  const timings: Record<string, number> = {};
  let passed = 0;
  const check = (name: string, f: () => void): void => {
    const start = clock.monotonic();
    try {
      f();
      passed++;
    } catch (e) {
      failures.push(`${name}: ${String(e)}`);
    }
    timings[name] = clock.monotonic() - start;
  };

  check("sha256", () => expectHex("SHA-256(abc)", crypto.sha256(ascii("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  check("hmac", () =>
    expectHex("HMAC RFC 4231 case 2", crypto.hmacSha256(ascii("Jefe"), ascii("what do ya want for nothing?")),
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
  check("hkdf", () => {
    const prk = crypto.hkdfExtract(hex("000102030405060708090a0b0c"), new Uint8Array(22).fill(0x0b));
    expectHex("HKDF A.1 PRK", prk, "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
    expectHex("HKDF A.1 OKM", crypto.hkdfExpand(prk, hex("f0f1f2f3f4f5f6f7f8f9"), 42),
      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    expectThrow("HKDF too long", () => crypto.hkdfExpand(prk, new Uint8Array(0), 255 * 32 + 1));
  });
  check("gcm", () => {
    const key = new Uint8Array(16);
    const nonce = new Uint8Array(12);
    expectHex("GCM case 1", crypto.aesGcmSeal(key, nonce, new Uint8Array(0), new Uint8Array(0)), "58e2fccefa7e3061367f1d57a4e7455a");
    const sealed = crypto.aesGcmSeal(key, nonce, new Uint8Array(16), new Uint8Array(0));
    expectHex("GCM case 2", sealed, "0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf");
    expectHex("GCM open", crypto.aesGcmOpen(key, nonce, sealed, new Uint8Array(0)), "00000000000000000000000000000000");
    sealed[0]! ^= 1;
    if (crypto.aesGcmOpen(key, nonce, sealed, new Uint8Array(0)) !== undefined) throw new Error("GCM accepted a forgery");
    expectThrow("GCM bad nonce", () => crypto.aesGcmSeal(key, new Uint8Array(8), new Uint8Array(0), new Uint8Array(0)));
  });
  check("ecdh", () => {
    const i = hex("c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433");
    expectHex("RFC 5903 gi", crypto.p256PublicKey(i),
      "04dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c37725811805271a0461cdb8252d61f1c456fa3e59ab1f45b33accf5f58389e0577b8990bb3");
    const gr = hex("04d12dfb5289c8d4f81208b70270398c342296970a0bccb74c736fc7554494bf6356fbf3ca366cc23e8157854c13c58d6aac23f046ada30f8353e74f33039872ab");
    expectHex("RFC 5903 gir", crypto.p256Ecdh(i, gr), "d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de");
    const bad = gr.slice();
    bad[64]! ^= 1;
    expectThrow("point off the curve", () => crypto.p256Ecdh(i, bad));
    expectThrow("zero scalar", () => crypto.p256PublicKey(new Uint8Array(32)));
  });
  check("p256Generate", () => {
    const a = crypto.p256Generate();
    const b = crypto.p256Generate();
    expectHex("ECDH agreement", crypto.p256Ecdh(a.privateKey, b.publicKey), toHex(crypto.p256Ecdh(b.privateKey, a.publicKey)));
  });
  check("random", () => {
    const a = new Uint8Array(32);
    const b = new Uint8Array(32);
    random.fill(a);
    random.fill(b);
    if (toHex(a) === toHex(b) || a.every((x) => x === 0)) throw new Error("random source repeats");
  });
  check("flash", () => {
    const last = flash.size / flash.sectorSize - 1;
    const base = last * flash.sectorSize;
    flash.erase(last);
    flash.program(base, Uint8Array.of(0xf0, 0x0f, 0xaa, 0x55));
    expectHex("flash read-back", flash.read(base, 4), "f00faa55");
    expectThrow("flash set bit", () => flash.program(base, Uint8Array.of(0xff, 0xff, 0xff, 0xff)));
    flash.erase(last);
    expectHex("flash erased", flash.read(base, 4), "ffffffff");
  });
  check("keystore", () => {
    keys.set("selftest", Uint8Array.of(1, 2, 3));
    expectHex("keystore get", keys.get("selftest"), "010203");
    keys.delete("selftest");
    if (keys.get("selftest") !== undefined) throw new Error("keystore delete left the value");
    expectThrow("keystore bad name", () => keys.set("Bad Name", new Uint8Array(1)));
    expectThrow("keystore oversize", () => keys.set("big", new Uint8Array(4001)));
  });
  return { passed, failures, timings };
}
