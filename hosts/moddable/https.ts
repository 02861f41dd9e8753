/**
 * TLS for the admin API: a {@link Network} whose sockets carry plaintext, layered on the plain device
 * Network and the native byte pump (modules/tls-server). The core serves HTTP over it as over any Network.
 * The server identity is tls-identity.ts; this file holds the connection cap and the idle sweep.
 */
import { State, TLSIdentity, TLSPump } from "portcullis/tls-server";
import type { Clock, DeviceSocket, Listener, Network, SocketHandler, Timers } from "../../src/ports.js";

/** Concurrent TLS connections at most: each holds mbedTLS buffers (about 40 KB on the ESP32). */
export const MAX_TLS_CONNECTIONS = 2;
/** Plaintext queued per connection at most; a peer that does not read is dropped. */
export const MAX_TLS_QUEUE = 16384;
/** A connection that moves no bytes either way for this long is dropped (ms). */
export const TLS_IDLE_TIMEOUT_MS = 30_000;
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
      this._pumpAll(); // reading plaintext drains the pump's input, so the next feed is accepted
    }
  }

  onClose(): void {
    this._finish(true);
  }

  onWritable(): void {
    this.#rawBlocked = false;
    this._pumpAll();
  }

  // --- DeviceSocket: plaintext to and from the core ---
  write(data: Uint8Array): boolean {
    if (this.#done || this.#closing) return false;
    // Only a writer that ignored back-pressure (wrote on after `false`) can overrun the queue: drop it rather than grow.
    if (this.#blocked && this.#outBytes + data.length > MAX_TLS_QUEUE) {
      trace(`admin TLS: ${this.remote} dropped: ${this.#outBytes} + ${data.length} plaintext bytes queued, over ${MAX_TLS_QUEUE}\n`);
      this._finish(true); // the peer stopped reading: drop it rather than grow
      return false;
    }
    this.#out.push(data.slice());
    this.#outBytes += data.length;
    this._pumpAll();
    if (this.#outBytes >= MAX_TLS_QUEUE / 2) this.#blocked = true;
    return !this.#blocked;
  }

  close(): void {
    if (this.#done || this.#closing) return;
    this.#closing = true;
    this.#handler = undefined; // nothing calls back after close()
    this._pumpAll();
  }

  private _pumpAll(): void {
    if (this.#done) return;
    for (let plain = this.#pump.read(); plain !== undefined; plain = this.#pump.read()) {
      this.#handler?.onData(new Uint8Array(plain));
      if (this.#done) return;
    }
    while (this.#out.length > 0 && !this.#rawBlocked) {
      const head = this.#out[0]!;
      const n = this.#pump.write(head);
      if (n === 0) {
        if (!this._sendCiphertext()) break; // not open yet, or the socket is full
        continue;
      }
      this.#outBytes -= n;
      if (n === head.length) this.#out.shift();
      else this.#out[0] = head.subarray(n);
    }
    this._sendCiphertext();
    if (this.#closing && this.#out.length === 0 && !this.#rawBlocked) {
      this.#pump.close();
      this._sendCiphertext();
      return this._finish(false);
    }
    const state = this.#pump.state;
    if (state === State.failed || state === State.closed) {
      if (this.#out.length > 0) trace(`admin TLS: ${this.remote} ended (${state === State.failed ? "failed" : "closed by the peer"}) with ${this.#outBytes} bytes unsent\n`);
      return this._finish(true);
    }
    if (this.#blocked && this.#outBytes < MAX_TLS_QUEUE / 2) {
      this.#blocked = false;
      this.#handler?.onWritable?.();
    }
  }

  /** Moves pending ciphertext to the TCP socket until it pushes back; false when nothing moved. */
  private _sendCiphertext(): boolean {
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
    trace(`admin TLS: ${this.remote} idle too long, dropped\n`);
    this._finish(true);
  }

  private _finish(notify: boolean): void {
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
