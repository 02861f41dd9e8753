/**
 * The firmware's HTTPS identity (hosts/moddable/tls-identity.ts) on Node, with a fake native generator
 * that binds each certificate to its key: validity at most 825 days and never before 2026 on an unset
 * clock, replacement when expiring (trusted clock only) or from an older build, and power loss at every
 * key-store operation of a replacement leaving the old or the new pair whole.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import type { KeyStore } from "../../src/ports.js";
import { CERT_MAX_DAYS as CORE_MAX_DAYS } from "../../src/config.js";
import { CERT_MAX_DAYS, STAGED, loadServerIdentity, renewServerIdentityIfDue, type IdentityContext, type TlsNative } from "../../hosts/moddable/tls-identity.js";
import { FakeClock } from "../lib/fake-clock.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";

const DAY = 86_400_000;
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** Certificates that name their key's hash and their validity: `open` refuses a mismatched pair. */
class FakeNative implements TlsNative<string> {
  made: { from: string; to: string }[] = [];
  generate(commonName: string, from: string, to: string) {
    this.made.push({ from, to });
    const key = randomBytes(32);
    const cert = Buffer.from(`CERT ${commonName} ${from} ${to} ${createHash("sha256").update(key).digest("hex")}`);
    return { key: new Uint8Array(key).buffer, certificate: new Uint8Array(cert).buffer };
  }
  open(certificate: Uint8Array, key: Uint8Array): string {
    const text = Buffer.from(certificate).toString();
    if (!text.endsWith(createHash("sha256").update(key).digest("hex"))) throw new Error("pair mismatched");
    return text;
  }
}

/** A Map key store that can lose power: after `budget` writes/deletes every operation throws. */
class CuttableKeys implements KeyStore {
  readonly map = new Map<string, Uint8Array>();
  budget = Infinity;
  get(name: string) {
    const v = this.map.get(name);
    return v ? v.slice() : undefined;
  }
  set(name: string, value: Uint8Array) {
    if (this.budget-- <= 0) throw new Error("power cut");
    this.map.set(name, value.slice());
  }
  delete(name: string) {
    if (this.budget-- <= 0) throw new Error("power cut");
    this.map.delete(name);
  }
}

function stampToMs(s: string): number {
  return Date.UTC(+s.slice(0, 4), +s.slice(4, 6) - 1, +s.slice(6, 8), +s.slice(8, 10), +s.slice(10, 12), +s.slice(12, 14));
}

describe("firmware: HTTPS identity in the key store (hosts/moddable/tls-identity.ts)", () => {
  const crypto = nobleCrypto(seededRandom("tls-identity"));
  let keys: CuttableKeys;
  let native: FakeNative;
  const ctx = (clock: FakeClock, policy = {}): IdentityContext<string> => ({ keys, crypto, clock, native, commonName: "portcullis", policy });
  beforeEach(() => {
    keys = new CuttableKeys();
    native = new FakeNative();
  });

  it("caps validity at 825 days everywhere: this module, the core, and the C generator", () => {
    assert.equal(CERT_MAX_DAYS, CORE_MAX_DAYS);
    const header = readFileSync(new URL("../../modules/tls-server/tls_pump.h", import.meta.url), "utf8");
    assert.equal(Number(/#define TLS_PUMP_CERT_MAX_DAYS (\d+)/.exec(header)?.[1]), CERT_MAX_DAYS);
  });

  it("makes a certificate valid 825 days from now, or from 2026-01-01 while the clock is a guess", () => {
    const now = Date.UTC(2027, 5, 1);
    const id = loadServerIdentity(ctx(new FakeClock(now, true)));
    const { from, to } = native.made[0]!;
    assert.equal(stampToMs(from), now);
    assert.equal((stampToMs(to) - stampToMs(from)) / DAY, CERT_MAX_DAYS);
    assert.equal(id.notAfter, stampToMs(to));
    assert.deepEqual([...keys.map.keys()].sort(), ["tls.crt", "tls.key", "tls.until"], "nothing staged is left");
    keys.map.clear();
    loadServerIdentity(ctx(new FakeClock(0, false)));
    assert.equal(native.made[1]!.from, "20260101000000");
    assert.throws(() => loadServerIdentity({ ...ctx(new FakeClock(now, true), { validityDays: 3650 }), keys: new CuttableKeys() }), /825/);
  });

  it("keeps a certificate that is not due, and replaces one expiring (on a trusted clock) or from an older build", () => {
    const start = Date.UTC(2027, 0, 1);
    const first = loadServerIdentity(ctx(new FakeClock(start, true)));
    assert.equal(loadServerIdentity(ctx(new FakeClock(start + 100 * DAY, true))).fingerprint, first.fingerprint);
    const late = first.notAfter - 10 * DAY;
    assert.equal(loadServerIdentity(ctx(new FakeClock(late, false))).replaced, undefined, "an unset clock proves nothing about expiry");
    const renewed = loadServerIdentity(ctx(new FakeClock(late, true)));
    assert.deepEqual(renewed.replaced, { previous: first.fingerprint, why: "expiring" });
    assert.equal(renewServerIdentityIfDue(ctx(new FakeClock(late, true)), renewed), undefined);
    assert.equal(renewServerIdentityIfDue(ctx(new FakeClock(renewed.notAfter - DAY, true)), renewed)?.replaced?.previous, renewed.fingerprint);

    keys.map.delete("tls.until"); // as an older build left it: a 2025-2049 certificate
    const legacy = keys.get("tls.crt")!;
    const fromOld = loadServerIdentity(ctx(new FakeClock(late, false)));
    assert.equal(fromOld.replaced?.why, "too-long");
    assert.notDeepEqual(keys.get("tls.crt"), legacy);
  });

  it("power loss at any key-store operation of a replacement leaves the old or the new pair whole", () => {
    const start = Date.UTC(2027, 0, 1);
    const clock = new FakeClock(start, true);
    const old = loadServerIdentity(ctx(clock));
    const due = new FakeClock(old.notAfter - DAY, true);
    const snapshot = new Map(keys.map);
    let cuts = 0;
    for (let budget = 0; ; budget++) {
      keys.map.clear();
      for (const [k, v] of snapshot) keys.map.set(k, v);
      keys.budget = budget;
      let finished = true;
      try {
        renewServerIdentityIfDue(ctx(due), old);
      } catch {
        finished = false;
        cuts++;
      }
      keys.budget = Infinity;
      const after = loadServerIdentity(ctx(new FakeClock(old.notAfter - 40 * DAY, true))); // reboot: not due yet
      assert.ok(after.replaced === undefined || after.replaced.why === "expiring");
      assert.ok(native.open(keys.get("tls.crt")!, keys.get("tls.key")!), "the live pair matches");
      for (const [, staged] of STAGED) assert.equal(keys.get(staged), undefined, "no staged entry survives a boot");
      if (finished) break;
    }
    assert.ok(cuts >= 9, `cut at each of the ${cuts} writes and deletes`);
  });
});
