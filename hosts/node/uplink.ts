/**
 * The Uplink port on mqtt.js over TLS (`mqtts`). Certificate verification is always on — there is no
 * option to turn it off — and SPKI SHA-256 pins (RFC 7469 style, base64) are checked in
 * `checkServerIdentity` after normal host-name verification. mqtt.js never reconnects by itself
 * (`reconnectPeriod: 0`): the core's UplinkManager owns reconnection, backoff and the queue.
 */
import { X509Certificate, createHash } from "node:crypto";
import { checkServerIdentity, type ConnectionOptions, type PeerCertificate } from "node:tls";
import mqtt, { type IClientOptions } from "mqtt";
import type { Uplink, UplinkFailure, UplinkOptions, UplinkSession } from "../../src/ports.js";

export interface NodeUplinkOptions {
  /** Trust anchors (PEM). Default: the system's roots. */
  readonly ca?: string | Buffer;
  /** Connect + TLS + CONNACK must finish within this many ms. Default 15000. */
  readonly connectTimeoutMs?: number;
}

/** The error code a pin mismatch carries, so it maps to "tls". */
export const PIN_MISMATCH = "ERR_PORTCULLIS_SPKI_PIN";

/** Base64 SHA-256 of a certificate's DER SubjectPublicKeyInfo: the RFC 7469 pin. */
export function spkiPin(certDer: Uint8Array): string {
  const spki = new X509Certificate(certDer).publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("base64");
}

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|ERR_PORTCULLIS|HOSTNAME_MISMATCH|INVALID_CA|UNABLE)/;
const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "EPIPE", "ECONNABORTED"]);

/** Maps an error from tls/net/mqtt.js to the port's closed set. */
export function classify(err: Error & { code?: unknown }, tlsDone: boolean): UplinkFailure {
  const code = err.code;
  if (typeof code === "string" && TLS_CODES.test(code)) return "tls";
  if (!tlsDone && /certificate|TLS|SSL|handshake|self.signed|pin/i.test(err.message)) return "tls";
  if (typeof code === "number" || /Connection refused/i.test(err.message)) return "refused";
  if (typeof code === "string" && NETWORK_CODES.has(code)) return "network";
  if (/timeout|timed out/i.test(err.message)) return "network";
  return tlsDone ? "protocol" : "network";
}

/** The Node board's uplink factory. */
export function nodeUplink(options: NodeUplinkOptions = {}): Uplink {
  return {
    connect(o: UplinkOptions): UplinkSession {
      if (!o.host || !(o.port > 0 && o.port < 65536)) throw new Error("host and port required");
      const pins = o.pins ?? [];
      let tlsDone = false;
      let connected = false;
      let finished = false;
      let firstError: Error | undefined;
      const pending = new Set<(e: Error) => void>();

      const opts: IClientOptions & ConnectionOptions = {
        protocol: "mqtts",
        host: o.host,
        port: o.port,
        clientId: o.clientId,
        ...(o.username !== undefined ? { username: o.username } : {}),
        ...(o.password !== undefined ? { password: o.password } : {}),
        keepalive: o.keepalive,
        clean: true,
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: options.connectTimeoutMs ?? 15_000,
        ...(options.ca !== undefined ? { ca: options.ca } : {}),
        rejectUnauthorized: true,
        checkServerIdentity: (host: string, cert: PeerCertificate): Error | undefined => {
          const err = checkServerIdentity(host, cert);
          if (err) return err;
          if (pins.length === 0) return undefined;
          const pin = spkiPin(cert.raw);
          if (pins.includes(pin)) return undefined;
          return Object.assign(new Error(`SPKI pin mismatch: server key ${pin} is not pinned`), { code: PIN_MISMATCH });
        },
      };
      const client = mqtt.connect(opts);

      const finish = (reason: UplinkFailure, detail: string): void => {
        if (finished) return;
        finished = true;
        for (const reject of pending) reject(new Error(`uplink closed: ${detail}`));
        pending.clear();
        client.end(true);
        o.onClose(reason, detail);
      };

      // TCP_NODELAY: a window of small QoS 1 publishes must not wait for Nagle's coalescing (and the
      // vendor's delayed ACK) between one PUBACK and the next (issue #14).
      const stream = client.stream as { setNoDelay?: (on: boolean) => unknown; on?: (ev: string, f: () => void) => unknown } | undefined;
      stream?.setNoDelay?.(true);
      stream?.on?.("secureConnect", () => {
        tlsDone = true;
        stream.setNoDelay?.(true);
      });
      client.on("connect", () => {
        tlsDone = true;
        connected = true;
        if (!finished) o.onConnect();
      });
      client.on("error", (err: Error & { code?: unknown }) => {
        firstError ??= err;
        finish(classify(err, tlsDone), err.message);
      });
      client.on("close", () => {
        if (firstError) finish(classify(firstError, tlsDone), firstError.message);
        else finish(connected ? "closed" : "network", connected ? "connection closed" : "connection closed before CONNACK");
      });

      return {
        publish(topic: string, payload: Uint8Array, qos: 0 | 1): Promise<void> {
          if (finished || !connected) return Promise.reject(new Error("uplink not connected"));
          return new Promise<void>((resolve, reject) => {
            pending.add(reject);
            client.publish(topic, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), { qos, retain: false }, (err) => {
              pending.delete(reject);
              if (err) reject(err);
              else resolve();
            });
          });
        },
        close(): void {
          if (finished) return;
          finished = true;
          for (const reject of pending) reject(new Error("uplink closed by the core"));
          pending.clear();
          client.end(true);
        },
      };
    },
  };
}
