/**
 * Interop: the gateway's envelopes (HPKE on node:crypto and on @noble) open with @hpke/core through
 * the vendor reference (tools/open-envelope.ts), and @hpke/core's seals open with our setupBaseR.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Aes128Gcm, CipherSuite, DhkemP256HkdfSha256, HkdfSha256 } from "@hpke/core";
import { nodeCrypto } from "../../hosts/node/crypto.js";
import { nodeRandom } from "../../hosts/node/random.js";
import { nobleCrypto } from "../lib/noble-crypto.js";
import { FakeClock } from "../lib/fake-clock.js";
import { EnvelopeSealer } from "../../src/outbound/envelope.js";
import { setupBaseR } from "../../src/crypto/hpke.js";
import { fromHex, toHex, utf8 as text } from "../../src/util/bytes.js";
import { VendorReceiver, readVendorKey } from "../../tools/open-envelope.js";
import { vendorKeygen } from "../../tools/vendor-keygen.js";
import type { Crypto } from "../../src/ports.js";

import { envelopeExample as ex } from "../fixtures/hpke/envelope-example.js";

const suite = new CipherSuite({ kem: new DhkemP256HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes128Gcm() });
const dir = mkdtempSync(join(tmpdir(), "portcullis-hpke-"));
const node = nodeCrypto();

function receiver(sk: Uint8Array, extra: Partial<{ allowPlaintext: boolean }> = {}): VendorReceiver {
  return new VendorReceiver({ privateKey: sk, integration: "acme", contractVersion: "7", ...extra });
}

for (const [name, crypto] of [["node:crypto", node], ["@noble", nobleCrypto(nodeRandom())]] as [string, Crypto][]) {
  describe(`interop: our sealer on ${name} → @hpke/core`, () => {
    const vendor = node.p256Generate();
    const sealer = (): EnvelopeSealer =>
      new EnvelopeSealer({ crypto, clock: new FakeClock(), integration: "acme", contractVersion: "7", encryption: "hpke", vendorPublicKey: vendor.publicKey });

    it("opens every envelope of a session in order, across acknowledged (enc-less) ones", async () => {
      const s = sealer();
      const r = receiver(vendor.privateKey);
      for (let seq = 1; seq <= 20; seq++) {
        const out = await r.open(s.seal(seq, "acme/v1/temp", text(`m${seq}`)), "acme/v1/temp");
        assert.deepEqual(out, { kind: "message", seq, payload: text(`m${seq}`), plaintext: false, missing: 0 });
        if (seq === 3) s.acknowledged();
      }
    });

    it("reports gaps and duplicates by seq, and follows a new context after reconnect", async () => {
      const s = sealer();
      const r = receiver(vendor.privateKey);
      assert.equal((await r.open(s.seal(1, "t", text("a")), "t")).kind, "message");
      s.acknowledged();
      const gap = await r.open(s.seal(5, "t", text("e")), "t");
      assert.equal(gap.kind === "message" && gap.missing, 3);
      s.reset(); // reconnect: the unacknowledged seq 5 is sent again in a new context
      const dup = await r.open(s.seal(5, "t", text("e")), "t");
      assert.deepEqual(dup, { kind: "duplicate", seq: 5 });
      assert.equal((await r.open(s.seal(6, "t", text("f")), "t")).kind, "message");
      assert.equal(r.missingTotal, 3);
    });

    it("rejects a wrong topic (auth), a wrong vendor key, an unknown context, and plaintext unless allowed", async () => {
      const s = sealer();
      const env = s.seal(1, "t", text("a"));
      assert.equal((await receiver(vendor.privateKey).open(env, "u")).kind === "rejected", true);
      const other = node.p256Generate();
      const wrong = await receiver(other.privateKey).open(env, "t");
      assert.equal(wrong.kind === "rejected" && wrong.reason, "wrong-key");
      s.acknowledged();
      const orphan = await receiver(vendor.privateKey).open(s.seal(2, "t", text("b")), "t");
      assert.equal(orphan.kind === "rejected" && orphan.reason, "unknown-context");
      const plain = new EnvelopeSealer({ crypto, clock: new FakeClock(), integration: "acme", contractVersion: "7", encryption: "none" }).seal(1, "t", text("p"));
      const refused = await receiver(vendor.privateKey).open(plain, "t");
      assert.equal(refused.kind === "rejected" && refused.reason, "plaintext-refused");
      const ok = await receiver(vendor.privateKey, { allowPlaintext: true }).open(plain, "t");
      assert.equal(ok.kind === "message" && ok.plaintext, true);
    });
  });
}

describe("interop: @hpke/core seals → our setupBaseR opens", () => {
  for (const [name, crypto] of [["node:crypto", node], ["@noble", nobleCrypto(nodeRandom())]] as [string, Crypto][]) {
    it(`on ${name}, including the exporter`, async () => {
      const kp = crypto.p256Generate();
      const pk = await suite.kem.importKey("raw", kp.publicKey.slice().buffer, true);
      const info = text("portcullis interop");
      const sender = await suite.createSenderContext({ recipientPublicKey: pk, info: info.slice().buffer });
      const r = setupBaseR(crypto, kp.privateKey, new Uint8Array(sender.enc), info);
      for (let i = 0; i < 5; i++) {
        const aad = text(`aad ${i}`);
        const ct = new Uint8Array(await sender.seal(text(`msg ${i}`).slice().buffer, aad.slice().buffer));
        assert.deepEqual(r.open(aad, ct), text(`msg ${i}`));
      }
      const theirs = new Uint8Array(await sender.export(text("ctx").slice().buffer, 32));
      assert.equal(toHex(r.export(text("ctx"), 32)), toHex(theirs));
    });
  }
});

describe("interop: the spec's worked example", () => {
  it("opens with @hpke/core through the vendor reference", async () => {
    const r = new VendorReceiver({ privateKey: fromHex(ex.skR), integration: ex.integration, contractVersion: ex.contractVersion });
    const a = await r.open(fromHex(ex.envelope7), ex.topic);
    const b = await r.open(fromHex(ex.envelope8), ex.topic);
    assert.equal(a.kind === "message" && new TextDecoder().decode(a.payload), ex.plaintext7);
    assert.equal(b.kind === "message" && new TextDecoder().decode(b.payload), ex.plaintext8);
  });
});

describe("vendor tools", () => {
  it("vendor-keygen writes a 0600 PKCS#8 key, never overwrites, and its public key/key id work end to end", async () => {
    const path = join(dir, "vendor.key");
    const out = vendorKeygen(path);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.throws(() => vendorKeygen(path));
    const sk = readVendorKey(path);
    const pub = new Uint8Array(Buffer.from(out.publicKey, "base64"));
    assert.deepEqual(node.p256PublicKey(sk), pub);
    const s = new EnvelopeSealer({ crypto: node, clock: new FakeClock(), integration: "acme", contractVersion: "7", encryption: "hpke", vendorPublicKey: pub });
    assert.equal(toHex(s.keyId), out.keyId);
    const env = s.seal(42, "acme/t", text("{\"t\":21}"));
    const file = join(dir, "env.bin");
    writeFileSync(file, env);
    const stdout = execFileSync("npx", ["tsx", "tools/open-envelope.ts", "--key", path, "--integration", "acme", "--contract-version", "7", "--topic", "acme/t", file], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    assert.equal(stdout, "{\"t\":21}");
    const viaHex = execFileSync("npx", ["tsx", "tools/open-envelope.ts", "--key", path, "--integration", "acme", "--contract-version", "7", "--topic", "acme/t", toHex(env)], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    assert.equal(viaHex, "{\"t\":21}");
  });
});
