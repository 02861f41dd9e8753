/**
 * The admin HTTPS server on the Node board: node:https calling the core's transport-free AdminApi,
 * with the holds the firmware has too — a connection cap, a deadline for the handshake and request
 * head, an idle timeout, one request per connection, TLS 1.2 ECDHE AEAD suites or TLS 1.3 only.
 * The self-signed identity and its renewal are in identity.ts.
 */
import { createServer, type Server } from "node:https";
import type { Socket } from "node:net";
import type { SecureContextOptions } from "node:tls";
import { MAX_ADMIN_BODY, type AdminApi, type AdminResponse, type AdminStream } from "../../src/admin/api.js";
import type { Identity } from "./identity.js";
import { PROFILES } from "../../src/profiles.js";

export { loadOrCreateIdentity, renewIdentityIfDue, CERT_DEFAULTS, type Identity, type CertPolicy, type LoadedIdentity } from "./identity.js";

/** Limits of the Node board's admin server; gateway.json `admin` overrides them. */
export const ADMIN_HTTPS_DEFAULTS = Object.freeze({
  /**
   * Loopback: the simulator runs on a development machine, whose other interfaces are whatever network
   * the machine is on, not the home LAN the gateway guards. `--https-host` or `admin.host` opens it.
   */
  host: "127.0.0.1",
  /** The node profile's admin sessions; the board passes its profile's (src/profiles.ts). */
  maxConnections: PROFILES.node.limits.adminSessions,
  headerTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
});

/**
 * What the server offers: TLS 1.3's AEAD suites, and in TLS 1.2 only ECDHE with AES-GCM or
 * ChaCha20-Poly1305 — no CBC, no SHA-1 MACs, no CCM8, no static RSA. (The key is P-256, so only the
 * ECDSA ones can be chosen; the list says what is allowed, the key what is possible.)
 */
export const ADMIN_CIPHERS = [
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
].join(":");

export interface AdminServerOptions {
  /** TCP port (0 = any). */
  readonly port: number;
  readonly host?: string;
  readonly maxConnections?: number;
  readonly headerTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  /** The dashboard's files (src/admin/static.ts): asked first; undefined passes the request to the API. */
  readonly staticFiles?: (method: string, target: string) => AdminResponse | undefined;
}

export interface AdminServer {
  readonly server: Server;
  readonly port: number;
  /** Serves `identity` to new connections from now on (after a renewal). */
  setIdentity(identity: Identity): void;
  /** Stops listening and drops every connection. */
  close(): Promise<void>;
}

function tlsOptions(identity: Identity): SecureContextOptions {
  return { key: identity.keyPem, cert: identity.certPem, minVersion: "TLSv1.2", ciphers: ADMIN_CIPHERS, honorCipherOrder: true };
}

function positive(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
  return v;
}

/**
 * Serves the AdminApi over HTTPS; resolves once listening.
 * @throws Error for a limit that is not a positive integer, or when the address cannot be bound.
 */
export async function startAdminServer(api: AdminApi, identity: Identity, options: AdminServerOptions): Promise<AdminServer> {
  const maxConnections = positive("maxConnections", options.maxConnections ?? ADMIN_HTTPS_DEFAULTS.maxConnections);
  const headerTimeoutMs = positive("headerTimeoutMs", options.headerTimeoutMs ?? ADMIN_HTTPS_DEFAULTS.headerTimeoutMs);
  const idleTimeoutMs = positive("idleTimeoutMs", options.idleTimeoutMs ?? ADMIN_HTTPS_DEFAULTS.idleTimeoutMs);
  /** Head deadlines of accepted TCP connections, by peer address and port (the TLS socket has the same). */
  const deadlines = new Map<string, NodeJS.Timeout>();
  const peer = (s: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string => `${s.remoteAddress ?? "?"}|${s.remotePort ?? "?"}`;

  const server = createServer({ ...tlsOptions(identity), handshakeTimeout: headerTimeoutMs, maxHeaderSize: 8192 }, (req, res) => {
    const key = peer(req.socket);
    clearTimeout(deadlines.get(key));
    deadlines.delete(key);
    res.shouldKeepAlive = false; // one request per connection: every connection lives under the head deadline
    const send = (status: number, headers: Record<string, string>, body: readonly string[], stream?: AdminStream): void => {
      res.writeHead(status, { ...headers, "cache-control": headers["cache-control"] ?? "no-store", connection: "close" });
      for (const chunk of body) res.write(chunk);
      if (stream) void pump(stream);
      else res.end();
    };
    // A streamed body: the next chunk is pulled only once the socket has drained the last one; the
    // stream is closed when it ends, fails, or the client goes away (a follow stream's subscription).
    const pump = async (stream: AdminStream): Promise<void> => {
      let gone = false;
      let wake: (() => void) | undefined;
      const onClose = (): void => {
        gone = true;
        stream.close();
        wake?.();
      };
      res.once("close", onClose);
      try {
        for (;;) {
          const chunk = await stream.next();
          if (gone) return;
          if (chunk === undefined) break;
          if (!res.write(chunk)) {
            await new Promise<void>((resolve) => {
              wake = resolve;
              res.once("drain", resolve);
            });
            wake = undefined;
            if (gone) return;
          }
        }
        res.end();
      } catch {
        // Headers are sent: cutting the connection is the only honest signal (a truncated export fails verification).
        res.destroy();
      } finally {
        res.off("close", onClose);
        stream.close();
      }
    };
    const page = options.staticFiles?.(req.method ?? "GET", req.url ?? "/");
    if (page) {
      send(page.status, { ...page.headers, "content-type": page.contentType }, page.body);
      req.resume();
      return;
    }
    // The body (JSON commands) is read whole, at most MAX_ADMIN_BODY bytes, under the idle timeout.
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on("data", (c: Buffer) => {
      if (refused) return;
      size += c.length;
      if (size > MAX_ADMIN_BODY) {
        refused = true;
        send(413, { "content-type": "application/json" }, [JSON.stringify({ error: `request body over ${MAX_ADMIN_BODY} bytes` }) + "\n"]);
        req.socket.destroySoon();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => {
      if (refused) return;
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (k !== "authorization" && typeof v === "string") headers[k] = v;
      api
        .handle({
          method: req.method ?? "GET",
          target: req.url ?? "/",
          authorization: req.headers.authorization,
          remote: req.socket.remoteAddress ?? "?",
          headers,
          ...(size > 0 ? { body: Buffer.concat(chunks).toString("utf8") } : {}),
        })
        .then((r) => send(r.status, { ...r.headers, "content-type": r.contentType }, r.body, r.stream))
        .catch(() => {
          if (!res.headersSent) res.writeHead(500, { "content-type": "application/json", connection: "close" });
          res.end('{"error":"internal error"}\n');
        });
    });
  });
  // Beyond the cap, node closes a new TCP connection at accept, before any TLS work.
  server.maxConnections = maxConnections;
  const sockets = new Set<Socket>();
  server.on("connection", (raw: Socket) => {
    const key = peer(raw);
    sockets.add(raw);
    // The handshake and the whole request head must arrive within the deadline, however slowly they trickle.
    deadlines.set(key, setTimeout(() => raw.destroy(), headerTimeoutMs));
    raw.setTimeout(idleTimeoutMs, () => raw.destroy());
    raw.once("close", () => {
      sockets.delete(raw);
      clearTimeout(deadlines.get(key));
      deadlines.delete(key);
    });
  });
  server.on("tlsClientError", () => undefined); // a failed handshake is the client's problem; the socket is gone

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? ADMIN_HTTPS_DEFAULTS.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as { port: number }).port,
    setIdentity: (next) => server.setSecureContext(tlsOptions(next)),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const raw of sockets) raw.destroy();
        for (const t of deadlines.values()) clearTimeout(t);
        deadlines.clear();
      }),
  };
}
