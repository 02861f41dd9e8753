/**
 * The TLS byte pump (modules/tls-server/tls_pump.c) compiled against an mbedTLS and driven by
 * test/native/tls_pump_driver.c, with Node's TLS client as the peer: a real handshake, pinning by
 * fingerprint, an HTTP-ish echo, back-pressure on a large response, fail-closed on bad clients, the
 * offered suites (TLS 1.2 ECDHE AEAD only), P-256 keys only and the certificate's validity cap (825 days).
 * By default against the system's (Debian 12 libmbedtls-dev 2.28: `apt-get install -y libmbedtls-dev`;
 * skips with a message when it or `cc` is missing). With MBEDTLS_PREFIX=<dir> against the mbedTLS
 * installed there (<dir>/include, <dir>/lib, e.g. mbedTLS 4.0 as ESP-IDF 6.0 ships it, built by
 * DESIGN.md "mbedTLS versions"); a prefix that is not an mbedTLS install fails, never skips.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { promisify } from "node:util";
import { X509Certificate, createPrivateKey, generateKeyPairSync } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { skipUnlessAvailable } from "../lib/skip.js";
import { makeTestCa, type TestCa } from "../lib/test-ca.js";

const execFileAsync = promisify(execFile);
const root = new URL("../../", import.meta.url).pathname;
const sources = ["test/native/tls_pump_driver.c", "modules/tls-server/tls_pump.c", "modules/tls-server/tls_identity.c", "modules/tls-server/tls_compat.c"];
/** An mbedTLS install to build against instead of the system's; unset or empty: the system's. */
const prefix = process.env.MBEDTLS_PREFIX || undefined;
const includeDir = prefix ? join(prefix, "include") : "/usr/include";

/** Why the native test cannot run here, or undefined when it can. */
function missing(): string | undefined {
  if (!prefix && !existsSync("/usr/include/mbedtls/ssl.h")) return "mbedTLS headers absent: apt-get install -y libmbedtls-dev";
  try {
    execFileSync("cc", ["--version"], { stdio: "ignore" });
  } catch {
    return "no C compiler (cc) on PATH";
  }
  return undefined;
}

/** With MBEDTLS_PREFIX set, the flags that build against it; throws (the test fails) when it is not an install. */
function prefixFlags(): string[] {
  if (!prefix) return [];
  const lib = join(prefix, "lib");
  const libraries = ["libmbedtls", "libmbedx509", "libmbedcrypto"];
  const absent = [join(includeDir, "mbedtls/ssl.h"), ...libraries.map((l) => join(lib, `${l}.a`))].filter(
    (f, i) => !existsSync(f) && !(i > 0 && existsSync(f.replace(/\.a$/, ".so"))),
  );
  if (absent.length > 0) throw new Error(`MBEDTLS_PREFIX=${prefix} is not an mbedTLS install: missing ${absent.join(", ")}`);
  return ["-I", includeDir, "-L", lib, `-Wl,-rpath,${lib}`];
}

/** MBEDTLS_VERSION_STRING as the headers in `dir` define it (build_info.h from 3.0 on, version.h before). */
function headerVersion(dir: string): string | undefined {
  for (const file of ["mbedtls/build_info.h", "mbedtls/version.h"]) {
    const path = join(dir, file);
    const m = existsSync(path) ? /#define\s+MBEDTLS_VERSION_STRING\s+"([^"]+)"/.exec(readFileSync(path, "utf8")) : null;
    if (m) return m[1];
  }
  return undefined;
}

/** A running `driver serve`, handing out its RESULT lines in order. */
class Server {
  readonly port: Promise<number>;
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: string[] = [];
  #waiters: Array<() => void> = [];

  constructor(driver: string, cert: string, key: string, connections: number) {
    this.#child = spawn(driver, ["serve", cert, key, String(connections)]);
    let buffered = "";
    this.#child.stdout.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        this.#lines.push(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        for (const w of this.#waiters.splice(0)) w();
      }
    });
    this.port = this.next().then((line) => {
      const m = /^PORT (\d+)$/.exec(line);
      if (!m) throw new Error(`driver said ${line}`);
      return Number(m[1]);
    });
  }

  async next(): Promise<string> {
    while (this.#lines.length === 0) await new Promise<void>((r) => this.#waiters.push(r));
    return this.#lines.shift()!;
  }

  stop(): void {
    this.#child.kill();
  }
}

/** Connects with Node's TLS client, sends `request`, collects the whole response. */
function fetchTls(port: number, request: string, options: tls.ConnectionOptions = {}) {
  return new Promise<{ body: string; fingerprint: string; protocol: string | null; cipher: string; ms: number }>((resolve, reject) => {
    const start = performance.now();
    let ms = 0;
    const chunks: Buffer[] = [];
    const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, ...options }, () => {
      ms = performance.now() - start;
      socket.write(request);
    });
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("end", () =>
      resolve({
        body: Buffer.concat(chunks).toString("latin1"),
        fingerprint: socket.getPeerX509Certificate()?.fingerprint256 ?? "",
        protocol: socket.getProtocol(),
        cipher: socket.getCipher().name,
        ms,
      }),
    );
  });
}

describe("firmware: TLS byte pump over mbedTLS (native)", function () {
  let dir = "";
  let driver = "";
  let cert: X509Certificate;
  /** Whether this mbedTLS build has ChaCha20-Poly1305 (ESP-IDF 6.0's default configuration does not). */
  let chachaBuiltIn = true;

  before(function () {
    const why = missing();
    if (prefix && why) throw new Error(`MBEDTLS_PREFIX=${prefix} is set but ${why}`);
    skipUnlessAvailable(this, why?.startsWith("no C compiler") ? "cc" : "libmbedtls-dev", why, "apt-get install -y libmbedtls-dev gcc");
    const flags = prefixFlags();
    dir = mkdtempSync(join(tmpdir(), "tls-pump-"));
    driver = join(dir, "driver");
    execFileSync("cc", ["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-Imodules/tls-server", ...flags, "-o", driver, ...sources,
      "-lmbedtls", "-lmbedx509", "-lmbedcrypto"], { cwd: root, stdio: "inherit" });
    chachaBuiltIn = execFileSync(driver, ["version"], { encoding: "utf8" }).trim().endsWith(" chachapoly");
    execFileSync(driver, ["gen", "portcullis.local", join(dir, "key.der"), join(dir, "cert.der")]);
    cert = new X509Certificate(readFileSync(join(dir, "cert.der")));
  });

  it("runs the mbedTLS it was compiled against: headers and library agree, from MBEDTLS_PREFIX when set", () => {
    const [compiled, compiledNumber, linkedNumber, chacha] = execFileSync(driver, ["version"], { encoding: "utf8" }).trim().split(" ");
    assert.equal(linkedNumber, compiledNumber, "the library linked is the one whose headers were compiled");
    assert.equal(compiled, headerVersion(includeDir), `headers from ${includeDir}`);
    if (!prefix) assert.equal(chacha, "chachapoly", "Debian's build has ChaCha20-Poly1305");
    console.log(`      mbedTLS ${compiled} (${prefix ? `MBEDTLS_PREFIX=${prefix}` : "system"}), ${chacha}`);
  });

  it("generates a self-signed P-256 certificate for the given name, valid now", () => {
    assert.equal(cert.subject, "CN=portcullis.local");
    assert.equal(cert.issuer, cert.subject);
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
    assert.ok(cert.verify(cert.publicKey), "self-signature verifies");
    assert.equal(cert.ca, false);
    assert.ok(new Date(cert.validFrom) <= new Date() && new Date() < new Date(cert.validTo));
    const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000;
    assert.ok(days > 824 && days <= 825, `valid ${days} days, at most 825`);
    const key = createPrivateKey({ key: readFileSync(join(dir, "key.der")), format: "der", type: "sec1" });
    assert.equal(key.asymmetricKeyDetails?.namedCurve, "prime256v1");
  });

  it("refuses to generate a certificate valid longer than 825 days, or with malformed dates", () => {
    const gen = (from: string, to: string) => {
      try {
        execFileSync(driver, ["gen", "x", join(dir, "k.der"), join(dir, "c.der"), from, to], { encoding: "utf8" });
        return "OK";
      } catch (e) {
        return String((e as { stdout?: string }).stdout).trim();
      }
    };
    assert.equal(gen("20260101000000", "20280405000000"), "OK"); // 825 days (2028 is a leap year)
    assert.equal(new X509Certificate(readFileSync(join(dir, "c.der"))).validTo, "Apr  5 00:00:00 2028 GMT");
    assert.equal(gen("20260101000000", "20280405000001"), "ERR -1");
    assert.equal(gen("20250101000000", "20491231235959"), "ERR -1", "the old 25-year validity");
    for (const [from, to] of [["2026010100000", "20270101000000"], ["20261301000000", "20270101000000"], ["20270101000000", "20260101000000"]]) {
      assert.equal(gen(from!, to!), "ERR -1", `${from} → ${to}`);
    }
  });

  it("accepts its own pair and refuses mismatched, RSA, P-384 and other 256-bit curves' keys", () => {
    const check = (c: string, k: string) => execFileSync(driver, ["check", c, k]).toString().trim();
    assert.equal(check(join(dir, "cert.der"), join(dir, "key.der")), "OK");
    execFileSync(driver, ["gen", "other", join(dir, "key2.der"), join(dir, "cert2.der")]);
    assert.match(check(join(dir, "cert.der"), join(dir, "key2.der")), /^ERR -\d+$/);
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "der", type: "pkcs8" });
    writeFileSync(join(dir, "rsa.der"), rsa);
    assert.equal(check(join(dir, "cert.der"), join(dir, "rsa.der")), "ERR -1");
    const p384 = generateKeyPairSync("ec", { namedCurve: "secp384r1" }).privateKey.export({ format: "der", type: "pkcs8" });
    writeFileSync(join(dir, "p384.der"), p384);
    assert.equal(check(join(dir, "cert.der"), join(dir, "p384.der")), "ERR -1");
    for (const namedCurve of ["secp256k1", "brainpoolP256r1"]) {
      // 256 bits and ECDSA-capable, but not P-256: refused by the curve check, not by a later pair mismatch
      const other = generateKeyPairSync("ec", { namedCurve }).privateKey.export({ format: "der", type: "pkcs8" });
      writeFileSync(join(dir, `${namedCurve}.der`), other);
      assert.equal(check(join(dir, "cert.der"), join(dir, `${namedCurve}.der`)), "ERR -1", namedCurve);
    }
  });

  it("serves TLS 1.2 ECDHE-ECDSA-AES-GCM, the pinned fingerprint, an echo and a 20000-byte body", async () => {
    const server = new Server(driver, join(dir, "cert.der"), join(dir, "key.der"), 2);
    try {
      const port = await server.port;
      const r = await fetchTls(port, "GET /hello HTTP/1.0\r\n\r\n");
      assert.equal(r.fingerprint, cert.fingerprint256);
      assert.equal(r.protocol, "TLSv1.2");
      assert.match(r.cipher, /^ECDHE-ECDSA-AES(128|256)-GCM-SHA(256|384)$/);
      assert.ok(r.body.startsWith("HTTP/1.0 200 OK\r\n"));
      assert.ok(r.body.endsWith("\r\n\r\necho:GET /hello HTTP/1.0"));
      assert.equal(await server.next(), "RESULT closed 0");
      console.log(`      handshake on this host: ${r.ms.toFixed(1)} ms`);

      const big = await fetchTls(port, "GET /big HTTP/1.0\r\n\r\n");
      const body = big.body.slice(big.body.indexOf("\r\n\r\n") + 4);
      assert.equal(body.length, 20000);
      assert.ok([...body].every((ch, i) => ch.charCodeAt(0) === 97 + (i % 26)), "body intact across records");
      assert.equal(await server.next(), "RESULT closed 0");
    } finally {
      server.stop();
    }
  });

  it("offers only TLS 1.2 ECDHE-ECDSA AEAD suites: GCM and ChaCha20-Poly1305 (where built in), no CBC, SHA-1, CCM8, TLS 1.0/1.1", async () => {
    const refused: tls.ConnectionOptions[] = [
      { ciphers: "ECDHE-ECDSA-AES128-SHA", maxVersion: "TLSv1.2" },
      { ciphers: "ECDHE-ECDSA-AES128-SHA256", maxVersion: "TLSv1.2" },
      { ciphers: "ECDHE-ECDSA-AES128-CCM8", maxVersion: "TLSv1.2" },
      { ciphers: "ECDHE-ECDSA-AES128-CCM", maxVersion: "TLSv1.2" },
      { minVersion: "TLSv1.1", maxVersion: "TLSv1.1", ciphers: "DEFAULT@SECLEVEL=0" },
      { minVersion: "TLSv1", maxVersion: "TLSv1", ciphers: "DEFAULT@SECLEVEL=0" },
    ];
    const accepted = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"];
    if (chachaBuiltIn) accepted.push("ECDHE-ECDSA-CHACHA20-POLY1305");
    else refused.push({ ciphers: "ECDHE-ECDSA-CHACHA20-POLY1305", maxVersion: "TLSv1.2" });
    const server = new Server(driver, join(dir, "cert.der"), join(dir, "key.der"), refused.length + accepted.length);
    try {
      const port = await server.port;
      for (const options of refused) {
        await assert.rejects(fetchTls(port, "GET / HTTP/1.0\r\n\r\n", options), JSON.stringify(options));
        assert.match(await server.next(), /^RESULT failed -\d+$/);
      }
      for (const cipher of accepted) {
        const r = await fetchTls(port, "GET / HTTP/1.0\r\n\r\n", { ciphers: cipher, maxVersion: "TLSv1.2" });
        assert.deepEqual([r.protocol, r.cipher], ["TLSv1.2", cipher]);
        assert.equal(await server.next(), "RESULT closed 0");
      }
    } finally {
      server.stop();
    }
  });

  it("fails closed on RSA-only, TLS 1.3-only and non-TLS clients", async () => {
    const server = new Server(driver, join(dir, "cert.der"), join(dir, "key.der"), 3);
    try {
      const port = await server.port;
      await assert.rejects(fetchTls(port, "GET / HTTP/1.0\r\n\r\n", { ciphers: "AES128-GCM-SHA256", maxVersion: "TLSv1.2" }));
      assert.match(await server.next(), /^RESULT failed -\d+$/);
      await assert.rejects(fetchTls(port, "GET / HTTP/1.0\r\n\r\n", { minVersion: "TLSv1.3" }));
      assert.match(await server.next(), /^RESULT failed -\d+$/);
      const plain = net.connect(port, "127.0.0.1", () => plain.write("GET / HTTP/1.0\r\n\r\n"));
      plain.on("error", () => {});
      assert.match(await server.next(), /^RESULT failed -\d+$/);
      plain.destroy();
    } finally {
      server.stop();
    }
  });
});

/** Node's TLS server echoing lines, as a vendor endpoint; records what each connection negotiated and received. */
async function echoServer(options: tls.TlsOptions): Promise<{ port: number; seen: Array<{ protocol: string | null; cipher: string; bytes: number }>; close(): void }> {
  const seen: Array<{ protocol: string | null; cipher: string; bytes: number }> = [];
  const server = tls.createServer(options, (socket) => {
    const entry = { protocol: socket.getProtocol(), cipher: socket.getCipher().name, bytes: 0 };
    seen.push(entry);
    socket.on("data", (d: Buffer) => {
      entry.bytes += d.length;
      socket.write(d);
    });
    socket.on("error", () => {});
  });
  server.on("tlsClientError", () => {});
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as net.AddressInfo).port, seen, close: () => server.close() };
}

describe("firmware: TLS byte pump as the uplink's client (native)", function () {
  let dir = "";
  let driver = "";
  let pki: TestCa;
  /** The 200 echoed "ping n\n" lines the driver sends, in bytes. */
  const echoed = Array.from({ length: 200 }, (_, i) => `ping ${i + 1}\n`).join("").length;

  before(async function () {
    const why = missing();
    if (prefix && why) throw new Error(`MBEDTLS_PREFIX=${prefix} is set but ${why}`);
    skipUnlessAvailable(this, why?.startsWith("no C compiler") ? "cc" : "libmbedtls-dev", why, "apt-get install -y libmbedtls-dev gcc");
    dir = mkdtempSync(join(tmpdir(), "tls-pump-client-"));
    driver = join(dir, "driver");
    execFileSync("cc", ["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-Imodules/tls-server", ...prefixFlags(), "-o", driver, ...sources,
      "-lmbedtls", "-lmbedx509", "-lmbedcrypto"], { cwd: root, stdio: "inherit" });
    pki = await makeTestCa();
    writeFileSync(join(dir, "ca.pem"), pki.ca);
    writeFileSync(join(dir, "foreign-ca.pem"), pki.foreignCa);
  });

  /** Runs `driver connect` (asynchronously: the echo server is in this process); its output lines. */
  async function connect(ca: string, port: number, name: string, system = false): Promise<string[]> {
    const { stdout } = await execFileAsync(driver, ["connect", ca, String(port), name, ...(system ? ["system"] : [])], { encoding: "utf8", timeout: 30_000 });
    return stdout.trim().split("\n");
  }

  it("verifies the chain and the name, hands out the server certificate, and moves 200 lines both ways over TLS 1.2 ECDHE-ECDSA AEAD", async () => {
    const server = await echoServer({ cert: pki.server.cert, key: pki.server.key });
    try {
      const lines = await connect(join(dir, "ca.pem"), server.port, "localhost");
      const der = new X509Certificate(pki.server.cert).raw;
      assert.deepEqual(lines, [`PEER ${der.length}`, `RESULT closed 0 ${echoed}`]);
      assert.equal(server.seen.length, 1);
      assert.equal(server.seen[0]!.protocol, "TLSv1.2");
      assert.match(server.seen[0]!.cipher, /^ECDHE-ECDSA-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
      assert.equal(server.seen[0]!.bytes, echoed);
    } finally {
      server.close();
    }
  });

  it("takes an RSA server certificate too (ECDHE-RSA, a public-key operation only)", async () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const keyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    writeFileSync(join(dir, "rsa.key"), keyPem);
    execFileSync("openssl", ["req", "-x509", "-key", join(dir, "rsa.key"), "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-days", "2", "-out", join(dir, "rsa.pem")], { stdio: "ignore" });
    const server = await echoServer({ cert: readFileSync(join(dir, "rsa.pem")), key: keyPem });
    try {
      const lines = await connect(join(dir, "rsa.pem"), server.port, "localhost");
      assert.equal(lines.at(-1), `RESULT closed 0 ${echoed}`);
      assert.match(server.seen[0]!.cipher, /^ECDHE-RSA-/);
    } finally {
      server.close();
    }
  });

  it("fails closed, before any application byte, on another name, another CA, an expired certificate and a TLS 1.3-only server", async () => {
    const cases: Array<{ what: string; options: tls.TlsOptions; ca: string; name: string }> = [
      { what: "name", options: { cert: pki.server.cert, key: pki.server.key }, ca: "ca.pem", name: "vendor.example" },
      { what: "foreign CA", options: { cert: pki.foreign.cert, key: pki.foreign.key }, ca: "ca.pem", name: "localhost" },
      { what: "trusting only the other CA", options: { cert: pki.server.cert, key: pki.server.key }, ca: "foreign-ca.pem", name: "localhost" },
      { what: "expired", options: { cert: pki.expired.cert, key: pki.expired.key }, ca: "ca.pem", name: "localhost" },
      { what: "TLS 1.3 only", options: { cert: pki.server.cert, key: pki.server.key, minVersion: "TLSv1.3" }, ca: "ca.pem", name: "localhost" },
    ];
    for (const c of cases) {
      const server = await echoServer(c.options);
      try {
        const lines = await connect(join(dir, c.ca), server.port, c.name);
        assert.equal(lines.length, 1, `${c.what}: ${lines.join(" | ")}`);
        // MBEDTLS_ERR_X509_CERT_VERIFY_FAILED (-0x2700) for the certificate cases; a handshake alert for 1.3.
        if (c.what === "TLS 1.3 only") assert.match(lines[0]!, /^RESULT failed -\d+ 0$/, c.what);
        else assert.equal(lines[0], "RESULT failed -9984 0", c.what);
        assert.equal(server.seen.reduce((n, s) => n + s.bytes, 0), 0, `${c.what}: no application data reached the server`);
      } finally {
        server.close();
      }
    }
  });

  it("refuses a configuration with nothing to trust; the system's roots load but do not trust a private CA", async () => {
    assert.deepEqual(await connect("-", 1, "localhost"), ["ERR -1"]);
    const server = await echoServer({ cert: pki.server.cert, key: pki.server.key });
    try {
      assert.equal((await connect("-", server.port, "localhost", true)).at(-1), "RESULT failed -9984 0");
      assert.equal((await connect(join(dir, "ca.pem"), server.port, "localhost", true)).at(-1), `RESULT closed 0 ${echoed}`);
    } finally {
      server.close();
    }
  });
});
