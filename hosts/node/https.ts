/**
 * The admin HTTPS server on the Node board: a self-signed ECDSA P-256 identity made at first boot
 * (@peculiar/x509 over node's WebCrypto), and node:https calling the core's transport-free AdminApi.
 */
import { createServer, type Server } from "node:https";
import { createHash, webcrypto } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import * as x509 from "@peculiar/x509";
import type { AdminApi } from "../../src/admin/api.js";

export interface Identity {
  readonly keyPem: string;
  readonly certPem: string;
  /** SHA-256 of the certificate's DER, uppercase hex with colons (as `openssl x509 -fingerprint -sha256` prints). */
  readonly fingerprint: string;
}

function fingerprintOf(certPem: string): string {
  const der = Buffer.from(certPem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
  return createHash("sha256").update(der).digest("hex").toUpperCase().match(/../g)!.join(":");
}

/** Loads the board's HTTPS identity from `<data>/https/`, creating it on first boot. */
export async function loadOrCreateIdentity(dataDir: string, commonName = "portcullis.local"): Promise<Identity> {
  const dir = path.join(dataDir, "https");
  const keyFile = path.join(dir, "server.key");
  const certFile = path.join(dir, "server.crt");
  if (existsSync(keyFile) && existsSync(certFile)) {
    const certPem = readFileSync(certFile, "utf8");
    return { keyPem: readFileSync(keyFile, "utf8"), certPem, fingerprint: fingerprintOf(certPem) };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString("hex").replace(/^[89a-f]/, "1"),
    name: `CN=${commonName}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 10 * 365 * 24 * 3600_000),
    signingAlgorithm: alg,
    keys: keys as unknown as CryptoKeyPair,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: "dns", value: commonName },
        { type: "dns", value: "localhost" },
        { type: "ip", value: "127.0.0.1" },
      ]),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey);
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(pkcs8).toString("base64").match(/.{1,64}/g)!.join("\n")}\n-----END PRIVATE KEY-----\n`;
  const certPem = cert.toString("pem") + "\n";
  writeFileSync(keyFile, keyPem, { mode: 0o600 });
  writeFileSync(certFile, certPem, { mode: 0o644 });
  return { keyPem, certPem, fingerprint: fingerprintOf(certPem) };
}

/** Serves the AdminApi over HTTPS on `port` (0 = any); resolves once listening. */
export async function startAdminServer(api: AdminApi, identity: Identity, port: number, host = "0.0.0.0"): Promise<Server> {
  const server = createServer({ key: identity.keyPem, cert: identity.certPem, minVersion: "TLSv1.2" }, (req, res) => {
    const remote = `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? "?"}`;
    api
      .handle({ method: req.method ?? "GET", target: req.url ?? "/", authorization: req.headers.authorization, remote })
      .then((r) => {
        res.writeHead(r.status, { "content-type": r.contentType, "cache-control": "no-store" });
        for (const chunk of r.body) res.write(chunk);
        res.end();
      })
      .catch(() => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
        res.end('{"error":"internal error"}\n');
      });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}
