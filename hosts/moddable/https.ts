/**
 * TLS for the audit pull: a {@link Network} whose sockets carry plaintext, layered on the plain device
 * Network and the native byte pump (modules/tls-server). The core serves HTTP over it as over any Network.
 * The server identity (P-256 key + self-signed certificate) is made on first boot and kept in the KeyStore;
 * owners pin its SHA-256 fingerprint, which the console prints.
 */
import { State, TLSIdentity, TLSPump } from "portcullis/tls-server";
import type { Crypto, DeviceSocket, KeyStore, Listener, Network, SocketHandler } from "../../src/ports.js";

/** Concurrent TLS connections at most: each holds mbedTLS buffers (about 40 KB on the ESP32). */
export const MAX_TLS_CONNECTIONS = 2;
/** Plaintext queued per connection at most; a peer that does not read is dropped. */
export const MAX_TLS_QUEUE = 16384;

const KEY_NAME = "tls.key";
const CERT_NAME = "tls.crt";

export interface ServerIdentity {
  readonly identity: TLSIdentity;
  /** SHA-256 of the certificate DER, hex with colons (as `openssl x509 -fingerprint -sha256` prints it). */
  readonly fingerprint: string;
}

/**
 * Loads the HTTPS identity, generating and storing one on first boot.
 * @throws Error when the stored pair is corrupt (refuse rather than silently replace the owner's pin).
 */
export function loadServerIdentity(keys: KeyStore, crypto: Crypto, commonName: string): ServerIdentity {
  let key = keys.get(KEY_NAME);
  let certificate = keys.get(CERT_NAME);
  if (key === undefined || certificate === undefined) {
    const made = TLSIdentity.generate(commonName);
    key = new Uint8Array(made.key);
    certificate = new Uint8Array(made.certificate);
    keys.set(KEY_NAME, key);
    keys.set(CERT_NAME, certificate);
  }
  const identity = new TLSIdentity(certificate, key);
  key.fill(0);
  const hex = Array.from(crypto.sha256(certificate), (b) => (b < 16 ? "0" : "") + b.toString(16).toUpperCase());
  return { identity, fingerprint: hex.join(":") };
}

/**
 * One TLS connection: plaintext {@link DeviceSocket} above, ciphertext {@link SocketHandler} below.
 * Back-pressure runs both ways: ciphertext stops moving to the TCP socket while it reports a full send
 * queue, plaintext stops entering the pump while its record buffer is full, and the core is told
 * `onWritable` once the plaintext queue drains below half.
 */
class TlsConnection implements DeviceSocket, SocketHandler {
  readonly remote: string;
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

  constructor(raw: DeviceSocket, identity: TLSIdentity, onGone: () => void) {
    this.remote = raw.remote;
    this.#raw = raw;
    this.#pump = new TLSPump(identity);
    this.#onGone = onGone;
  }

  attach(handler: SocketHandler): void {
    this.#handler = handler;
  }

  // --- SocketHandler: ciphertext from the TCP socket ---
  onData(data: Uint8Array): void {
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
      if (!this.#raw.write(new Uint8Array(cipher))) this.#rawBlocked = true;
    }
    return sent;
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

/** A Network whose connections are TLS servers over `plain`'s sockets. */
export class TlsNetwork implements Network {
  readonly #plain: Network;
  readonly #identity: TLSIdentity;
  #open = 0;

  constructor(plain: Network, identity: TLSIdentity) {
    this.#plain = plain;
    this.#identity = identity;
  }

  listen(options: { port: number; onConnection(socket: DeviceSocket): SocketHandler }): Listener {
    return this.#plain.listen({
      port: options.port,
      onConnection: (raw) => {
        if (this.#open >= MAX_TLS_CONNECTIONS) {
          raw.close();
          return { onData() {}, onClose() {} };
        }
        this.#open++;
        const connection = new TlsConnection(raw, this.#identity, () => {
          this.#open--;
        });
        connection.attach(options.onConnection(connection));
        return connection;
      },
    });
  }
}
