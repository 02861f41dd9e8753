/**
 * The Node board's HTTPS certificate (hosts/node/identity.ts): at most 825 days, replaced at boot
 * when within its renewal window, too long or mismatched, replaced by the daily check on a running
 * board — and every replacement announced on the console with the new fingerprint, recorded in the
 * audit log, and served to the next client.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import tls from "node:tls";
import { CERT_MAX_DAYS } from "../../src/config.js";
import { bootNodeBoard } from "../../hosts/node/board.js";
import { loadOrCreateIdentity, renewIdentityIfDue } from "../../hosts/node/https.js";
import { selfSigned } from "../../hosts/node/pki.js";

const DAY = 86_400_000;

function days(certPem: string): number {
  const x = new X509Certificate(certPem);
  return (Date.parse(x.validTo) - Date.parse(x.validFrom)) / DAY;
}

/** Puts a key and certificate where the board keeps its identity. */
function plant(dataDir: string, keyPem: string, certPem: string): void {
  mkdirSync(path.join(dataDir, "https"), { recursive: true });
  writeFileSync(path.join(dataDir, "https/server.key"), keyPem);
  writeFileSync(path.join(dataDir, "https/server.crt"), certPem);
}

function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      resolve(s.getPeerX509Certificate()?.fingerprint256 ?? "");
      s.destroy();
    });
    s.on("error", reject);
  });
}

describe("admin HTTPS certificate: validity and renewal (Node board)", function () {
  this.timeout(60000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), "portcullis-admin-cert-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("makes a P-256 certificate valid at most 825 days, and keeps it while it is not due", async () => {
    const first = await loadOrCreateIdentity(dir);
    assert.equal(first.replaced, undefined);
    const x = new X509Certificate(first.identity.certPem);
    assert.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
    assert.ok(days(first.identity.certPem) <= CERT_MAX_DAYS + 1 / 24, `valid ${days(first.identity.certPem)} days`);
    assert.ok(days(first.identity.certPem) >= CERT_MAX_DAYS - 1);
    const again = await loadOrCreateIdentity(dir);
    assert.equal(again.identity.fingerprint, first.identity.fingerprint);
    assert.equal(again.replaced, undefined);
    await assert.rejects(selfSigned("x", ["x"], CERT_MAX_DAYS + 1), /825/);
    await assert.rejects(loadOrCreateIdentity(mkdtempSync(path.join(dir, "p")), { validityDays: 3650 }), /825/);
  });

  it("replaces at boot a certificate within its renewal window, one valid too long, and a mismatched pair", async () => {
    const expiring = await selfSigned("portcullis.local", ["portcullis.local"], 20);
    plant(dir, expiring.keyPem, expiring.certPem);
    const renewed = await loadOrCreateIdentity(dir, { renewDays: 30 });
    assert.deepEqual(renewed.replaced, { previous: expiring.fingerprint, why: "expiring" });
    assert.notEqual(renewed.identity.fingerprint, expiring.fingerprint);
    assert.equal(readFileSync(path.join(dir, "https/server.crt"), "utf8"), renewed.identity.certPem, "the new one is what the next boot loads");
    assert.equal((await loadOrCreateIdentity(dir, { renewDays: 30 })).replaced, undefined, "and it is not renewed again");
    assert.equal((await loadOrCreateIdentity(dir, { renewDays: 10 })).replaced, undefined);

    // An older build's 10-year certificate (made here with openssl) is replaced, not kept for years.
    const legacy = mkdtempSync(path.join(dir, "legacy-"));
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "3650", "-subj", "/CN=portcullis.local",
      "-keyout", path.join(legacy, "k.pem"), "-out", path.join(legacy, "c.pem")], { stdio: "ignore" });
    plant(legacy, readFileSync(path.join(legacy, "k.pem"), "utf8"), readFileSync(path.join(legacy, "c.pem"), "utf8"));
    assert.equal((await loadOrCreateIdentity(legacy)).replaced?.why, "too-long");

    const other = await selfSigned("other", ["other"], 100);
    plant(dir, other.keyPem, renewed.identity.certPem);
    assert.equal((await loadOrCreateIdentity(dir)).replaced?.why, "mismatched");
  });

  it("the daily check replaces only a certificate that is due", async () => {
    const { identity } = await loadOrCreateIdentity(dir);
    assert.equal(await renewIdentityIfDue(dir, identity, {}, Date.now()), undefined);
    const later = identity.notAfter - 29 * DAY;
    const next = await renewIdentityIfDue(dir, identity, {}, later);
    assert.equal(next?.replaced?.previous, identity.fingerprint);
    assert.ok(next!.identity.notAfter - later > (CERT_MAX_DAYS - 1) * DAY, "valid 825 days from the check");
  });

  it("a booted board announces a replacement on the console and in the audit log, and serves the new certificate", async () => {
    const expiring = await selfSigned("portcullis.local", ["portcullis.local"], 5);
    plant(dir, expiring.keyPem, expiring.certPem);
    const out = new PassThrough();
    let console = "";
    out.on("data", (c: Buffer) => (console += c.toString()));
    const board = await bootNodeBoard({
      configDir: path.resolve("examples/home"), dataDir: dir, mqttPort: 0, httpsPort: 0, demo: false,
      consoleInput: new PassThrough(), consoleOutput: out,
    });
    try {
      const first = board.fingerprint;
      assert.notEqual(first, expiring.fingerprint);
      assert.match(console, new RegExp(`HTTPS certificate replaced \\(expiring\\); new SHA-256 fingerprint ${first}`));
      assert.match(console, /admin HTTPS on 127\.0\.0\.1 port \d+/, "the default bind address is loopback");
      assert.equal(await servedFingerprint(board.httpsPort), first);
      assert.equal(board.gateway.status().certificateFingerprint, first);

      assert.equal(await board.renewCertificate(), false, "not due today");
      assert.equal(await board.renewCertificate(Date.now() + (CERT_MAX_DAYS - 10) * DAY), true);
      const second = board.fingerprint;
      assert.notEqual(second, first);
      assert.ok(console.includes(`new SHA-256 fingerprint ${second}`));
      assert.equal(await servedFingerprint(board.httpsPort), second, "new connections get the new certificate");
      assert.equal(board.gateway.status().certificateFingerprint, second);

      await board.gateway.audit.log.flushSummaries();
      const renewals = board.gateway.audit.log.query({ kind: "admin" }).filter((r) => r.reason === "cert-renewed");
      assert.deepEqual(renewals.map((r) => [r.detail?.previous, r.detail?.fingerprint, r.detail?.why]), [
        [expiring.fingerprint, first, "expiring"],
        [first, second, "expiring"],
      ]);
    } finally {
      await board.stop();
    }
  });
});
