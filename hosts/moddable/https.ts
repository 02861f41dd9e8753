/**
 * TLS for the admin API: a {@link Network} whose sockets carry plaintext, layered on the plain device
 * Network and the native byte pump (modules/tls-server). The core serves HTTP over it as over any Network.
 * The server identity (P-256 key + self-signed certificate, at most 825 days) is made on first boot and
 * kept in the KeyStore; it is replaced when due (at boot and by a daily check in main.ts), and owners
 * pin its SHA-256 fingerprint, which the console prints at boot and on every replacement.
 */
import { State, TLSIdentity, TLSPump } from "portcullis/tls-server";
import { CERT_MAX_DAYS } from "portcullis/config";
import type { Clock, Crypto, DeviceSocket, KeyStore, Listener, Network, SocketHandler, Timers } from "../../src/ports.js";

/** Concurrent TLS connections at most: each holds mbedTLS buffers (about 40 KB on the ESP32). */
export const MAX_TLS_CONNECTIONS = 2;
/** Plaintext queued per connection at most; a peer that does not read is dropped. */
export const MAX_TLS_QUEUE = 16384;
/** A connection that moves no bytes either way for this long is dropped (ms). */
export const TLS_IDLE_TIMEOUT_MS = 30_000;
/** Certificate policy defaults: a new certificate is valid this long, and replaced this close to expiry. */
export const CERT_VALIDITY_DAYS = CERT_MAX_DAYS;
export const CERT_RENEW_DAYS = 30;
/** Before SNTP the board's clock guesses; a certificate never starts before this (2026-01-01). */
const CERT_FLOOR_MS = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;

const KEY_NAME = "tls.key";
const CERT_NAME = "tls.crt";
const UNTIL_NAME = "tls.until";
/** A replacement is staged under these names first, then copied over (see commitStaged). */
const STAGED = Object.freeze([[KEY_NAME, "tls.key.new"], [CERT_NAME, "tls.crt.new"], [UNTIL_NAME, "tls.until.new"]] as const);

export interface ServerIdentity {
  readonly identity: TLSIdentity;
  /** SHA-256 of the certificate DER, hex with colons (as `openssl x509 -fingerprint -sha256` prints it). */
  readonly fingerprint: string;
  /** Expiry, ms since the epoch; 0 for a certificate from a build that did not record it. */
  readonly notAfter: number;
  /** Present when the stored certificate was replaced: its fingerprint and why. */
  readonly replaced?: { readonly previous: string; readonly why: "expiring" | "too-long" };
}

export interface CertPolicy {
  readonly validityDays?: number;
  readonly renewDays?: number;
}

function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, "").slice(0, 14);
}

function fingerprintOf(crypto: Crypto, certificate: Uint8Array): string {
  return Array.from(crypto.sha256(certificate), (b) => (b < 16 ? "0" : "") + b.toString(16).toUpperCase()).join(":");
}

function untilBytes(ms: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, ms);
  return out;
}

/** Copies a complete staged replacement over the live entries (idempotent), or drops a partial one. */
function commitStaged(keys: KeyStore): void {
  const staged = STAGED.map(([, name]) => keys.get(name));
  if (staged.every((v) => v !== undefined)) STAGED.forEach(([live], i) => keys.set(live, staged[i]!));
  for (const [, name] of STAGED) keys.delete(name);
}

/** A fresh identity staged and committed; power loss at any step leaves the old or the new pair whole. */
function make(keys: KeyStore, clock: Clock, commonName: string, policy: CertPolicy): { key: Uint8Array; certificate: Uint8Array; notAfter: number } {
  const days = policy.validityDays ?? CERT_VALIDITY_DAYS;
  if (!Number.isInteger(days) || days < 2 || days > CERT_MAX_DAYS) throw new Error(`certificate validity must be 2-${CERT_MAX_DAYS} days`);
  const from = Math.max(clock.now(), CERT_FLOOR_MS);
  const notAfter = from + days * DAY;
  const made = TLSIdentity.generate(commonName, stamp(from), stamp(notAfter));
  const key = new Uint8Array(made.key);
  const certificate = new Uint8Array(made.certificate);
  keys.set("tls.key.new", key);
  keys.set("tls.crt.new", certificate);
  keys.set("tls.until.new", untilBytes(notAfter));
  commitStaged(keys);
  return { key, certificate, notAfter: Math.floor(notAfter / 1000) * 1000 };
}

/** Why the stored certificate must go at boot, or undefined to keep it. */
function due(clock: Clock, notAfter: number, renewDays: number): "expiring" | "too-long" | undefined {
  if (notAfter === 0) return "too-long"; // an older build's 2025-2049 certificate
  return clock.isSet() && notAfter - clock.now() <= renewDays * DAY ? "expiring" : undefined;
}

function open(crypto: Crypto, key: Uint8Array, certificate: Uint8Array, notAfter: number): ServerIdentity {
  const identity = new TLSIdentity(certificate, key);
  key.fill(0);
  return { identity, fingerprint: fingerprintOf(crypto, certificate), notAfter };
}

/**
 * Loads the HTTPS identity, generating one on first boot and replacing a stored one that is due.
 * @throws Error when the stored pair is corrupt (refuse rather than silently replace the owner's pin).
 */
export function loadServerIdentity(keys: KeyStore, crypto: Crypto, clock: Clock, commonName: string, policy: CertPolicy = {}): ServerIdentity {
  commitStaged(keys); // finish (or drop) a replacement cut short by power loss
  const key = keys.get(KEY_NAME);
  const certificate = keys.get(CERT_NAME);
  if (key === undefined || certificate === undefined) {
    const made = make(keys, clock, commonName, policy);
    return open(crypto, made.key, made.certificate, made.notAfter);
  }
  const until = keys.get(UNTIL_NAME);
  const notAfter = until?.length === 8 ? new DataView(until.buffer, until.byteOffset, 8).getFloat64(0) : 0;
  const why = due(clock, notAfter, policy.renewDays ?? CERT_RENEW_DAYS);
  if (why === undefined) return open(crypto, key, certificate, notAfter);
  const previous = fingerprintOf(crypto, certificate);
  key.fill(0);
  const made = make(keys, clock, commonName, policy);
  return { ...open(crypto, made.key, made.certificate, made.notAfter), replaced: { previous, why } };
}

/** The daily check: a replacement when the clock is trusted and `current` expires within renewDays. */
export function renewServerIdentityIfDue(keys: KeyStore, crypto: Crypto, clock: Clock, commonName: string, current: ServerIdentity, policy: CertPolicy = {}): ServerIdentity | undefined {
  if (due(clock, current.notAfter, policy.renewDays ?? CERT_RENEW_DAYS) === undefined) return undefined;
  const made = make(keys, clock, commonName, policy);
  return { ...open(crypto, made.key, made.certificate, made.notAfter), replaced: { previous: current.fingerprint, why: "expiring" } };
}

/**
 * One TLS connection: plaintext {@link DeviceSocket} above, ciphertext {@link SocketHandler} below.
 * Back-pressure runs both ways: ciphertext stops moving to the TCP socket while it reports a full send
 * queue, plaintext stops entering the pump while its record buffer is full, and the core is told
 * `onWritable` once the plaintext queue drains below half.
 */
class TlsConnection implements DeviceSocket, SocketHandler {
  readonly remote: string;
  /** Monotonic ms of the last bytes moved either way (the idle sweep reads it). */
  lastActive: number;
  readonly #clock: Clock;
  readonly #raw: DeviceSocket;
  readonly #pump: TLSPump;
  readonly #onGone: () => void;
  #handler: SocketHandler | undefined;
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #rawBlocked = false;
  #blocked = false;
  #closing = false;
  #done = false;

  constructor(raw: DeviceSocket, identity: TLSIdentity, clock: Clock, onGone: () => void) {
    this.remote = raw.remote;
    this.#clock = clock;
    this.lastActive = clock.monotonic();
    this.#raw = raw;
    this.#pump = new TLSPump(identity);
    this.#onGone = onGone;
  }

  attach(handler: SocketHandler): void {
    this.#handler = handler;
  }

  // --- SocketHandler: ciphertext from the TCP socket ---
  onData(data: Uint8Array): void {
    this.lastActive = this.#clock.monotonic();
    let offset = 0;
    while (!this.#done && offset < data.length) {
      offset += this.#pump.feed(data.subarray(offset));
      this.#pumpAll(); // reading plaintext drains the pump's input, so the next feed is accepted
    }
  }

  onClose(): void {
    this.#finish(true);
  }

  onWritable(): void {
    this.#rawBlocked = false;
    this.#pumpAll();
  }

  // --- DeviceSocket: plaintext to and from the core ---
  write(data: Uint8Array): boolean {
    if (this.#done || this.#closing) return false;
    if (this.#outBytes + data.length > MAX_TLS_QUEUE) {
      this.#finish(true); // the peer stopped reading: drop it rather than grow
      return false;
    }
    this.#out.push(data.slice());
    this.#outBytes += data.length;
    this.#pumpAll();
    if (this.#outBytes >= MAX_TLS_QUEUE / 2) this.#blocked = true;
    return !this.#blocked;
  }

  close(): void {
    if (this.#done || this.#closing) return;
    this.#closing = true;
    this.#handler = undefined; // nothing calls back after close()
    this.#pumpAll();
  }

  #pumpAll(): void {
    if (this.#done) return;
    for (let plain = this.#pump.read(); plain !== undefined; plain = this.#pump.read()) {
      this.#handler?.onData(new Uint8Array(plain));
      if (this.#done) return;
    }
    while (this.#out.length > 0 && !this.#rawBlocked) {
      const head = this.#out[0]!;
      const n = this.#pump.write(head);
      if (n === 0) {
        if (!this.#sendCiphertext()) break; // not open yet, or the socket is full
        continue;
      }
      this.#outBytes -= n;
      if (n === head.length) this.#out.shift();
      else this.#out[0] = head.subarray(n);
    }
    this.#sendCiphertext();
    if (this.#closing && this.#out.length === 0 && !this.#rawBlocked) {
      this.#pump.close();
      this.#sendCiphertext();
      return this.#finish(false);
    }
    const state = this.#pump.state;
    if (state === State.failed || state === State.closed) return this.#finish(true);
    if (this.#blocked && this.#outBytes < MAX_TLS_QUEUE / 2) {
      this.#blocked = false;
      this.#handler?.onWritable?.();
    }
  }

  /** Moves pending ciphertext to the TCP socket until it pushes back; false when nothing moved. */
  #sendCiphertext(): boolean {
    let sent = false;
    while (!this.#rawBlocked) {
      const cipher = this.#pump.take();
      if (cipher === undefined) break;
      sent = true;
      this.lastActive = this.#clock.monotonic();
      if (!this.#raw.write(new Uint8Array(cipher))) this.#rawBlocked = true;
    }
    return sent;
  }

  /** Drops the connection now (idle too long), telling the core. */
  drop(): void {
    this.#finish(true);
  }

  #finish(notify: boolean): void {
    if (this.#done) return;
    this.#done = true;
    const handler = this.#handler;
    this.#handler = undefined;
    this.#out = [];
    this.#raw.close();
    this.#pump.destroy();
    this.#onGone();
    if (notify) handler?.onClose();
  }
}

export interface TlsNetworkOptions {
  /** The plain TCP network underneath. */
  readonly network: Network;
  readonly identity: TLSIdentity;
  readonly clock: Clock;
  readonly timers: Timers;
  /** Default {@link MAX_TLS_CONNECTIONS}. */
  readonly maxConnections?: number;
  /** Default {@link TLS_IDLE_TIMEOUT_MS}. */
  readonly idleTimeoutMs?: number;
}

/**
 * A Network whose connections are TLS servers over a plain network's sockets: at most
 * `maxConnections` at once (more are closed at accept), each dropped after `idleTimeoutMs` without
 * traffic (one sweep timer for all, checking every second).
 */
export class TlsNetwork implements Network {
  readonly #o: TlsNetworkOptions;
  readonly #max: number;
  readonly #idleMs: number;
  readonly #open = new Set<TlsConnection>();
  #identity: TLSIdentity;

  /** @throws Error when a limit is not a positive integer. */
  constructor(options: TlsNetworkOptions) {
    this.#max = options.maxConnections ?? MAX_TLS_CONNECTIONS;
    this.#idleMs = options.idleTimeoutMs ?? TLS_IDLE_TIMEOUT_MS;
    if (!Number.isInteger(this.#max) || this.#max < 1 || !Number.isInteger(this.#idleMs) || this.#idleMs < 1) throw new Error("TLS limits must be positive integers");
    this.#o = options;
    this.#identity = options.identity;
  }

  /** New connections use `identity` from now on (after a renewal); open ones keep theirs. */
  setIdentity(identity: TLSIdentity): void {
    this.#identity = identity;
  }

  listen(options: { port: number; onConnection(socket: DeviceSocket): SocketHandler }): Listener {
    const sweep = this.#o.timers.every(1000, () => {
      const now = this.#o.clock.monotonic();
      for (const c of this.#open) if (now - c.lastActive >= this.#idleMs) c.drop();
    });
    const inner = this.#o.network.listen({
      port: options.port,
      onConnection: (raw) => {
        if (this.#open.size >= this.#max) {
          raw.close();
          return { onData() {}, onClose() {} };
        }
        const connection: TlsConnection = new TlsConnection(raw, this.#identity, this.#o.clock, () => {
          this.#open.delete(connection);
        });
        this.#open.add(connection);
        connection.attach(options.onConnection(connection));
        return connection;
      },
    });
    return {
      port: inner.port,
      close: () => {
        this.#o.timers.cancel(sweep);
        inner.close();
      },
    };
  }
}
