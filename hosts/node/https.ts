/**
 * The admin HTTPS server on the Node board: a self-signed ECDSA P-256 identity made at first boot
 * (@peculiar/x509 over node's WebCrypto), and node:https calling the core's transport-free AdminApi.
 */
import { createServer, type Server } from "node:https";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { AdminApi } from "../../src/admin/api.js";
import { certFingerprint, selfSigned } from "./pki.js";

export interface Identity {
  readonly keyPem: string;
  readonly certPem: string;
  /** SHA-256 of the certificate's DER, uppercase hex with colons (as `openssl x509 -fingerprint -sha256` prints). */
  readonly fingerprint: string;
}

/** Loads the board's HTTPS identity from `<data>/https/`, creating it on first boot. */
export async function loadOrCreateIdentity(dataDir: string, commonName = "portcullis.local"): Promise<Identity> {
  const dir = path.join(dataDir, "https");
  const keyFile = path.join(dir, "server.key");
  const certFile = path.join(dir, "server.crt");
  if (existsSync(keyFile) && existsSync(certFile)) {
    const certPem = readFileSync(certFile, "utf8");
    return { keyPem: readFileSync(keyFile, "utf8"), certPem, fingerprint: certFingerprint(certPem) };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const id = await selfSigned(commonName, [commonName, "localhost", "127.0.0.1"]);
  writeFileSync(keyFile, id.keyPem, { mode: 0o600 });
  writeFileSync(certFile, id.certPem, { mode: 0o644 });
  return { keyPem: id.keyPem, certPem: id.certPem, fingerprint: id.fingerprint };
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
