/**
 * The device-side Network port on ECMA-419 `embedded:io/socket/listener` and `embedded:io/socket/tcp`.
 * Each accepted socket gets a bounded send queue: `write` returns false above the high-water mark, and a
 * peer that stops reading altogether is disconnected at the hard limit rather than allowed to grow RAM.
 */
import Listener from "embedded:io/socket/listener";
import TCP from "embedded:io/socket/tcp";
import { meter } from "portcullis/util/meter";
import type { DeviceSocket, Listener as PortListener, Network, SocketHandler } from "../../src/ports.js";

export interface NetworkLimits {
  /** Open device connections at most; more are accepted and closed at once. */
  readonly maxConnections: number;
  /** Queued bytes per connection above which `write` returns false. */
  readonly highWater: number;
  /** Queued bytes per connection below which `onWritable` is called again. */
  readonly lowWater: number;
  /** Queued bytes per connection at which the connection is dropped. */
  readonly hardLimit: number;
}

/** 50 devices (the promise in SPEC.md "Firmware") plus room for reconnect overlap. */
export const DEFAULT_NETWORK_LIMITS: NetworkLimits = Object.freeze({
  maxConnections: 56,
  highWater: 4096,
  lowWater: 1024,
  hardLimit: 16384,
});

/** One accepted connection, bridging ECMA-419 callbacks to the core's {@link SocketHandler}. */
class Connection implements DeviceSocket {
  readonly remote: string;
  readonly #limits: NetworkLimits;
  readonly #onGone: () => void;
  #tcp: TCP | undefined;
  #handler: SocketHandler | undefined;
  /** Bytes the socket's window could not take yet, oldest first (created when first needed). */
  #queue: Uint8Array[] | undefined;
  #queued = 0;
  #writable = 0;
  #blocked = false;
  #closing = false;
  /** The core paused reading: bytes stay in lwIP, whose TCP window then holds the peer back. */
  #paused = false;
  /** Bytes the last onReadable reported that were left unread while paused. */
  #unread = 0;

  constructor(from: TCP, limits: NetworkLimits, onGone: () => void) {
    this.#limits = limits;
    this.#onGone = onGone;
    // `target` puts this connection on the socket, so the three callbacks are shared functions, not
    // three closures per connection (each closure costs heap slots for as long as the socket lives).
    this.#tcp = new TCP({ from, target: this, onReadable: Connection.#readableCallback, onWritable: Connection.#writableCallback, onError: Connection.#errorCallback });
    this.remote = `${this.#tcp.remoteAddress ?? "?"}:${this.#tcp.remotePort ?? 0}`;
  }

  static #readableCallback(this: TCP, count: number): void {
    (this as TCP & { target: Connection }).target._onReadable(count);
  }

  static #writableCallback(this: TCP, count: number): void {
    (this as TCP & { target: Connection }).target._onWritable(count);
  }

  static #errorCallback(this: TCP): void {
    (this as TCP & { target: Connection }).target._fail();
  }

  attach(handler: SocketHandler): void {
    this.#handler = handler;
  }

  write(data: Uint8Array): boolean {
    if (this.#closing || this.#tcp === undefined) return false;
    if (this.#queued + data.length > this.#limits.hardLimit) {
      trace(`network: ${this.remote} dropped: ${this.#queued} + ${data.length} bytes queued, over ${this.#limits.hardLimit}\n`);
      this._fail(); // the peer stopped reading: drop it rather than grow (fail closed)
      return false;
    }
    const tcp = this.#tcp;
    if (this.#queued === 0 && data.length <= this.#writable) {
      // The common case: the window takes it all now. The socket copies the bytes, so no copy here.
      tcp.write(data);
      this.#writable -= data.length;
      return !this.#blocked;
    }
    (this.#queue ??= []).push(data.slice());
    this.#queued += data.length;
    this._flush();
    if (this.#queued > this.#limits.highWater) this.#blocked = true;
    return !this.#blocked;
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#handler = undefined; // nothing calls back after close()
    if (this.#queued === 0) this._release();
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (this.#unread > 0) this._onReadable(this.#unread);
  }

  private _onReadable(count: number): void {
    const tcp = this.#tcp;
    if (tcp === undefined || count <= 0) return;
    if (this.#paused) {
      this.#unread = count; // ECMA-419 reports the total readable; read it all on resume
      return;
    }
    this.#unread = 0;
    const span = meter.start();
    const bytes = tcp.read() as ArrayBuffer | undefined;
    if (bytes !== undefined && bytes.byteLength > 0) this.#handler?.onData(new Uint8Array(bytes));
    meter.stop("network", span);
  }

  private _onWritable(count: number): void {
    const span = meter.start();
    this._onWritableMetered(count);
    meter.stop("network", span);
  }

  private _onWritableMetered(count: number): void {
    this.#writable = count;
    this._flush();
    if (this.#closing && this.#queued === 0) return this._release();
    if (this.#blocked && this.#queued <= this.#limits.lowWater) {
      this.#blocked = false;
      this.#handler?.onWritable?.();
    }
  }

  private _flush(): void {
    const tcp = this.#tcp;
    const queue = this.#queue;
    while (tcp !== undefined && queue !== undefined && this.#writable > 0 && queue.length > 0) {
      const head = queue[0]!;
      const n = Math.min(head.length, this.#writable);
      tcp.write(n === head.length ? head : head.subarray(0, n));
      this.#writable -= n;
      this.#queued -= n;
      if (n === head.length) queue.shift();
      else queue[0] = head.subarray(n);
    }
  }

  /** The peer closed or the socket failed: tell the core once, unless it closed first. */
  private _fail(): void {
    const handler = this.#handler;
    this.#handler = undefined;
    this.#closing = true;
    this._release();
    handler?.onClose();
  }

  private _release(): void {
    const tcp = this.#tcp;
    this.#tcp = undefined;
    this.#queue = undefined;
    this.#queued = 0;
    if (tcp !== undefined) {
      tcp.close();
      this.#onGone();
    }
  }
}

export class ModdableNetwork implements Network {
  readonly #limits: NetworkLimits;
  #open = 0;

  constructor(limits: NetworkLimits = DEFAULT_NETWORK_LIMITS) {
    this.#limits = limits;
  }

  /** Connections currently open (for the console's status line). */
  get open(): number {
    return this.#open;
  }

  listen(options: { port: number; onConnection(socket: DeviceSocket): SocketHandler }): PortListener {
    const onGone = (): void => {
      this.#open--;
    };
    const accept = (from: TCP): void => {
      if (this.#open >= this.#limits.maxConnections) {
        new TCP({ from }).close(); // over the limit: refuse by closing at once
        return;
      }
      this.#open++;
      const connection = new Connection(from, this.#limits, onGone);
      connection.attach(options.onConnection(connection));
    };
    let listener: Listener | undefined = new Listener({
      port: options.port,
      onReadable(this: Listener, requests: number) {
        for (let i = 0; i < requests; i++) {
          const from = this.read();
          if (from !== undefined) accept(from);
        }
      },
    });
    const port = listener.port;
    return {
      port,
      close(): void {
        // ECMA-419 §10.3 Listener.close(); absent from the SDK's typings.
        (listener as unknown as { close(): void } | undefined)?.close();
        listener = undefined;
      },
    };
  }
}
