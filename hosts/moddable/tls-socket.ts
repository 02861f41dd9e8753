/**
 * An ECMA-419 TLS client socket for the SDK's MQTT client, over the native byte pump
 * (modules/tls-server, tls_pump.c in client mode): mbedTLS verifies the chain, validity and server
 * name; this socket checks the certificate pins once the handshake is done and before any application
 * byte is written. The TLS state, records and buffers live in C, outside the XS heap, and AES-GCM runs
 * natively, so a vendor connection costs the XS heap only this object and its queues.
 *
 * Plaintext written with `{ more: true }` is gathered until the piece without it, then encrypted as one
 * record (one MQTT packet, one record). `write` answers the bytes still writable, as ECMA-419 asks:
 * the plaintext window below less what waits for the pump or the TCP socket.
 */
import { State, TLSPump, TLSTrust } from "portcullis/tls-server";
import Timer from "timer";
import { matchesPin } from "portcullis/moddable/spki";
import { meter } from "portcullis/util/meter";
import { concatAll } from "portcullis/util/bytes";

/**
 * Plaintext bytes held for the pump and TCP at most: what `write` offers to the MQTT client, which
 * writes a packet only when all of it fits. At least the TCP send window the SDK's TLS socket offered
 * before (5,744 B less record overhead), so no packet that fitted then is refused now.
 */
const WINDOW = 6144;

interface Raw {
  read(): ArrayBuffer | undefined;
  write(data: Uint8Array): number;
  close(): void;
  format: string;
}

export interface TLSClientSecure {
  /** The shared client configuration (trust anchors): one per board, made by the uplink. */
  readonly trust: TLSTrust;
  /** Base64 SHA-256 SPKI pins; empty: chain verification only. */
  readonly pins?: readonly string[];
  readonly sha256: (data: Uint8Array) => Uint8Array;
  /** The name the certificate must carry (the SDK resolver hands `host` over as an address). */
  readonly serverName?: string;
}

export interface TLSClientSocketOptions {
  readonly host: string;
  readonly secure: TLSClientSecure;
  readonly TCP: { readonly io: new (options: Record<string, unknown>) => Raw };
  readonly onReadable?: (count: number) => void;
  readonly onWritable?: (count: number) => void;
  readonly onError?: (detail?: string) => void;
  readonly [option: string]: unknown;
}

export class TLSClientSocket {
  #socket: Raw | undefined;
  #pump: TLSPump | undefined;
  #ready = false;
  #buffer = true;
  /** Plaintext received and not yet read by the client. */
  #data: Uint8Array | undefined;
  #position = 0;
  /** Ciphertext received that the pump has not taken yet. */
  #cipherIn: Uint8Array | undefined;
  /** Ciphertext taken from the pump that TCP has no room for yet. */
  #cipherOut: Uint8Array | undefined;
  /** The pieces of the packet being written (`more: true`). */
  #pieces: Uint8Array[] | undefined;
  /** Whole packets waiting for the pump. */
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #tcpWritable = 0;
  #later: Timer | undefined;
  /** A write answered 0: the next room TCP makes is reported even if the window did not grow in that call. */
  #starved = false;
  /** Inside the client's onReadable (a drained buffer is refilled by the caller's loop, not a timer). */
  #delivering = false;
  readonly #secure: TLSClientSecure;
  readonly #onReadable: ((count: number) => void) | undefined;
  readonly #onWritable: ((count: number) => void) | undefined;
  readonly #onError: ((detail?: string) => void) | undefined;

  constructor(options: TLSClientSocketOptions) {
    this.#secure = options.secure;
    this.#onReadable = options.onReadable;
    this.#onWritable = options.onWritable;
    this.#onError = options.onError;
    // No session resumption: a resumed handshake carries no certificate to check pins against.
    this.#pump = new TLSPump(options.secure.trust, options.secure.serverName ?? options.host);
    // `target` puts this socket on the TCP one, so its callbacks are shared functions, not three
    // closures per connection (as hosts/moddable/network.ts does).
    const socket = new options.TCP.io({
      ...options,
      target: this,
      onReadable: TLSClientSocket.#readableCallback,
      onWritable: TLSClientSocket.#writableCallback,
      onError: TLSClientSocket.#errorCallback,
    });
    socket.format = "buffer";
    this.#socket = socket;
  }

  // The vendor side is metered as one stage ("vendor"); the publishes it triggers are "uplink".
  static #readableCallback(this: Raw & { target: TLSClientSocket }): void {
    const span = meter.start();
    this.target._receive();
    meter.stop("vendor", span);
  }

  static #writableCallback(this: Raw & { target: TLSClientSocket }, count: number): void {
    const span = meter.start();
    this.target.#tcpWritable = count;
    this.target._pumpAll(true);
    meter.stop("vendor", span);
  }

  static #errorCallback(this: Raw & { target: TLSClientSocket }): void {
    this.target._fail("connection lost");
  }

  close(): void {
    const pump = this.#pump;
    const socket = this.#socket;
    if (pump === undefined || socket === undefined) return;
    try {
      pump.close(); // close_notify, sent if TCP has room for it now
      const alert = pump.take();
      if (alert !== undefined && this.#cipherOut === undefined && alert.byteLength <= this.#tcpWritable) socket.write(new Uint8Array(alert));
    } catch {
      // the connection is going anyway
    }
    this._release();
  }

  read(count?: number | ArrayBufferView | ArrayBuffer): ArrayBuffer | number | undefined {
    const data = this.#data;
    if (data === undefined) return undefined;
    const available = data.byteLength - this.#position;
    let result: ArrayBuffer | number;
    if (!this.#buffer) {
      result = data[this.#position++]!;
    } else if (typeof count === "object") {
      const view = ArrayBuffer.isView(count) ? new Uint8Array(count.buffer, count.byteOffset, count.byteLength) : new Uint8Array(count);
      result = Math.min(view.byteLength, available);
      view.set(data.subarray(this.#position, this.#position + result));
      this.#position += result;
    } else {
      const n = count ?? available;
      if (n > available) throw new RangeError("read beyond available");
      result = data.slice(this.#position, this.#position + n).buffer as ArrayBuffer;
      this.#position += n;
    }
    if (this.#position === data.byteLength) {
      this.#data = undefined;
      // More plaintext may be waiting in the pump: offered at once when the client read inside its
      // onReadable (the loop in _pumpAll), else after this call returns.
      if (!this.#delivering) this.#later ??= Timer.set(() => {
        this.#later = undefined;
        this._receive();
      });
    }
    return result;
  }

  write(buffer: ArrayBuffer | ArrayBufferView, options?: { more?: boolean; byteLength?: number }): number {
    // Never throws: this runs inside SDK callbacks, where an exception would abort the machine.
    if (this.#pump === undefined || !this.#ready) return 0;
    const view = ArrayBuffer.isView(buffer) ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength) : new Uint8Array(buffer);
    const piece = view.slice(); // the client reuses its buffers
    this.#outBytes += piece.byteLength;
    if (options?.more) {
      (this.#pieces ??= []).push(piece);
      return this._writable();
    }
    const pieces = this.#pieces;
    this.#pieces = undefined;
    this.#out.push(pieces === undefined ? piece : (pieces.push(piece), concatAll(pieces)));
    this._pumpAll();
    const writable = this._writable();
    if (writable === 0) this.#starved = true;
    return writable;
  }

  get format(): string {
    return this.#buffer ? "buffer" : "number";
  }

  set format(format: string) {
    if (format !== "buffer" && format !== "number") throw new RangeError("format");
    this.#buffer = format === "buffer";
  }

  private _writable(): number {
    return this.#ready ? Math.max(0, WINDOW - this.#outBytes) : 0;
  }

  /** Ciphertext in from TCP, through the pump, plaintext up to the client. */
  private _receive(): void {
    const socket = this.#socket;
    const pump = this.#pump;
    if (socket === undefined || pump === undefined) return;
    try {
      if (this.#cipherIn === undefined) {
        const got = socket.read();
        if (got !== undefined) this.#cipherIn = new Uint8Array(got);
      }
      while (this.#cipherIn !== undefined) {
        const input = this.#cipherIn;
        const n = pump.feed(input);
        this.#cipherIn = n < input.byteLength ? input.subarray(n) : undefined;
        this._pumpAll();
        if (this.#pump === undefined || this.#data !== undefined) return; // failed, or the client has plaintext to read first
        if (n === 0) return; // the pump is full until the client reads
        if (this.#cipherIn === undefined) {
          const more = socket.read();
          if (more !== undefined) this.#cipherIn = new Uint8Array(more);
        }
      }
      this._pumpAll();
    } catch (e) {
      this._fail(`TLS: ${String(e)}`);
    }
  }

  /**
   * Moves everything that can move: the handshake, plaintext up, packets into records, records to TCP.
   * `notify` (TCP made room) tells the client of a window that grew; never from inside `write`, which
   * answers the window itself (a callback there would recurse through the client's writes).
   */
  private _pumpAll(notify = false): void {
    const pump = this.#pump;
    if (pump === undefined) return;
    this._flushCipher();
    if (!this.#ready) {
      const state = pump.state;
      if (state === State.open) return this._opened();
      if (state !== State.handshake) return this._fail(`TLS handshake failed (mbedTLS ${pump.error})`);
      return;
    }
    while (this.#data === undefined) {
      const plain = pump.read();
      if (plain === undefined) break;
      this.#data = new Uint8Array(plain);
      this.#position = 0;
      this.#delivering = true;
      this._deliver(() => this.#onReadable?.(plain.byteLength));
      this.#delivering = false;
      if (this.#pump === undefined) return;
    }
    const before = this._writable();
    while (this.#out.length > 0) {
      const head = this.#out[0]!;
      const n = pump.write(head);
      if (n === 0) {
        if (!this._flushCipher()) break; // TCP is full: onWritable resumes
        continue;
      }
      this.#outBytes -= n;
      if (n === head.byteLength) this.#out.shift();
      else this.#out[0] = head.subarray(n);
    }
    this._flushCipher();
    const state = pump.state;
    if (state === State.failed) return this._fail(`TLS record failure (mbedTLS ${pump.error})`);
    if (state === State.closed) return this._fail("closed by peer");
    if (notify && this._writable() > 0 && (this._writable() > before || this.#starved)) {
      this.#starved = false;
      this._deliver(() => this.#onWritable?.(this._writable()));
    }
  }

  /** Takes ciphertext from the pump to TCP while TCP has room; true when something moved. */
  private _flushCipher(): boolean {
    const socket = this.#socket;
    const pump = this.#pump;
    if (socket === undefined || pump === undefined) return false;
    let moved = false;
    for (;;) {
      const chunk = this.#cipherOut ?? takeBytes(pump);
      if (chunk === undefined) return moved;
      const n = Math.min(chunk.byteLength, this.#tcpWritable);
      if (n === 0) {
        this.#cipherOut = chunk;
        return moved;
      }
      this.#tcpWritable = socket.write(n === chunk.byteLength ? chunk : chunk.subarray(0, n)) ?? 0; // undefined: failed (onError follows)
      this.#cipherOut = n < chunk.byteLength ? chunk.subarray(n) : undefined;
      moved = true;
    }
  }

  private _opened(): void {
    const pins = this.#secure.pins ?? [];
    if (pins.length > 0) {
      const der = this.#pump?.peerCertificate;
      if (der === undefined) return this._fail("no certificate seen to check pins against");
      if (!matchesPin(new Uint8Array(der), pins, this.#secure.sha256)) return this._fail("certificate pin mismatch");
    }
    this.#ready = true;
    this._deliver(() => this.#onWritable?.(this._writable()));
    if (this.#pump !== undefined) this._pumpAll(); // plaintext that came with the server's Finished
  }

  /** Calls up into the MQTT client; an exception there ends this connection instead of aborting XS. */
  private _deliver(callback: () => void): void {
    try {
      callback();
    } catch (e) {
      this._fail(`client callback threw: ${String(e)}`);
    }
  }

  private _release(): void {
    this.#socket?.close();
    this.#pump?.destroy(); // wipes the session keys now, not at GC
    if (this.#later !== undefined) Timer.clear(this.#later);
    this.#socket = this.#pump = this.#later = this.#data = this.#cipherIn = this.#cipherOut = this.#pieces = undefined;
    this.#out = [];
    this.#outBytes = 0;
    this.#ready = false;
  }

  private _fail(detail: string): void {
    if (this.#socket === undefined) return;
    this._release();
    try {
      this.#onError?.(detail);
    } catch (e) {
      trace(`TLS socket: onError threw ${String(e)}\n`);
    }
  }
}

let shared: { readonly anchor: ArrayBuffer | undefined; readonly trust: TLSTrust } | undefined;

/**
 * The board's client trust: the provisioned anchor (if any) and the platform's roots, parsed once and
 * shared by every vendor and home-broker connection (it lives in C: the Debian bundle on lin, the
 * ESP-IDF bundle on the chip).
 * @throws Error when the anchor is malformed, or nothing at all can be trusted.
 */
export function clientTrust(anchor: ArrayBuffer | undefined): TLSTrust {
  if (shared === undefined || shared.anchor !== anchor) shared = { anchor, trust: new TLSTrust(anchor, true) };
  return shared.trust;
}

function takeBytes(pump: TLSPump): Uint8Array | undefined {
  const b = pump.take();
  return b === undefined ? undefined : new Uint8Array(b);
}
