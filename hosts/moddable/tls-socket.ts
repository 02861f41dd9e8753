/**
 * An ECMA-419 TLS client socket over the SDK's TLS session (`ssl/session`) that also checks certificate
 * pins. The SDK's own TLSSocket (examples/io/tcp/tlssocket) keeps its session private, and the session
 * drops the peer certificate at Finished, so pins can only be checked by a socket that watches the
 * handshake: this one does, after each record, and fails before any application data is sent.
 * Chain and server-name verification stay on (the session's CertificateManager); pins are in addition.
 */
import { Session, type SessionSocket } from "portcullis/sdk/tls";
import Timer from "timer";
import { matchesPin } from "portcullis/moddable/spki";

/** Bytes of TLS record overhead reserved from the writable window (as the SDK's TLSSocket does). */
const OVERHEAD = 96;

type Raw = SessionSocket & { close(): void; format: string };
type Data = Uint8Array & { position: number };

export interface PinnedSecure {
  /** Base64 SHA-256 SPKI pins; empty: chain verification only. */
  readonly pins?: readonly string[];
  readonly sha256: (data: Uint8Array) => Uint8Array;
  readonly [option: string]: unknown;
}

export interface PinnedSocketOptions {
  readonly host: string;
  readonly secure: PinnedSecure;
  readonly TCP: { readonly io: new (options: Record<string, unknown>) => Raw };
  readonly onReadable?: (count: number) => void;
  readonly onWritable?: (count: number) => void;
  readonly onError?: (detail?: string) => void;
  readonly [option: string]: unknown;
}

export class PinnedTLSSocket {
  #socket: Raw | undefined;
  #session: Session | undefined;
  #ready = false;
  #pinned: boolean;
  #data: Data | undefined;
  #buffer = true;
  #doRead: Timer | undefined;
  readonly #pins: readonly string[];
  readonly #sha256: (data: Uint8Array) => Uint8Array;
  readonly #onReadable: ((count: number) => void) | undefined;
  readonly #onWritable: ((count: number) => void) | undefined;
  readonly #onError: ((detail?: string) => void) | undefined;

  constructor(options: PinnedSocketOptions) {
    const { pins = [], sha256, ...secure } = options.secure;
    this.#pins = pins;
    this.#sha256 = sha256;
    this.#pinned = pins.length === 0;
    this.#onReadable = options.onReadable;
    this.#onWritable = options.onWritable;
    this.#onError = options.onError;
    // No session resumption: a resumed handshake carries no certificate to check against pins, and the
    // SDK caches sessions by host name only (ssl/cache), so two vendors on one host (different ports)
    // would offer each other's sessions.
    this.#session = new Session({ serverName: options.host, ...secure, cache: false, protocolVersion: 0x303 });
    this.#session.initiateHandshake();
    // `target` puts this socket on the TCP one, so its callbacks are shared functions, not three
    // closures per connection (as hosts/moddable/network.ts does).
    const socket = new options.TCP.io({
      ...options,
      target: this,
      onReadable: PinnedTLSSocket.#readableCallback,
      onWritable: PinnedTLSSocket.#writableCallback,
      onError: PinnedTLSSocket.#errorCallback,
    });
    socket.readable = socket.writable = 0;
    this.#socket = socket;
  }

  static #readableCallback(this: Raw & { target: PinnedTLSSocket }, count: number): void {
    this.target.#readableChanged(count);
  }

  static #writableCallback(this: Raw & { target: PinnedTLSSocket }, count: number): void {
    this.target.#writableChanged(count);
  }

  static #errorCallback(this: Raw & { target: PinnedTLSSocket }): void {
    this.target.#fail("connection lost");
  }

  close(): void {
    this.#socket?.close();
    if (this.#doRead !== undefined) Timer.clear(this.#doRead);
    this.#socket = this.#session = this.#doRead = this.#data = undefined;
  }

  read(count?: number | ArrayBufferView | ArrayBuffer): ArrayBuffer | number | undefined {
    const data = this.#data;
    if (data === undefined) return undefined;
    let result: ArrayBuffer | number;
    const available = data.byteLength - data.position;
    if (!this.#buffer) {
      result = data[data.position++]!;
    } else if (typeof count === "object") {
      const view = ArrayBuffer.isView(count) ? new Uint8Array(count.buffer, count.byteOffset, count.byteLength) : new Uint8Array(count);
      result = Math.min(view.byteLength, available);
      view.set(data.subarray(data.position, data.position + result));
      data.position += result;
    } else {
      const n = count ?? available;
      if (n > available) throw new RangeError("read beyond available");
      result = data.slice(data.position, data.position + n).buffer as ArrayBuffer;
      data.position += n;
    }
    if (data.position === data.byteLength) this.#data = undefined;
    if (this.#data === undefined && this.#socket?.readable) {
      this.#doRead ??= Timer.set(() => {
        this.#doRead = undefined;
        if (this.#socket?.readable) this.#readableChanged(this.#socket.readable);
      });
    }
    return result;
  }

  write(buffer: ArrayBuffer | ArrayBufferView, options?: { more?: boolean; byteLength?: number }): number {
    const session = this.#session;
    const socket = this.#socket;
    // Never throws: this runs inside SDK callbacks, where an exception would abort the machine.
    if (session === undefined || socket === undefined || !this.#ready) return 0;
    const bytes = buffer instanceof DataView ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength) : buffer;
    try {
      return session.write(socket, bytes, options);
    } catch (e) {
      this.#fail(`TLS write: ${String(e)}`);
      return 0;
    }
  }

  get format(): string {
    return this.#buffer ? "buffer" : "number";
  }

  set format(format: string) {
    if (format !== "buffer" && format !== "number") throw new RangeError("format");
    this.#buffer = format === "buffer";
  }

  #writableChanged(count: number): void {
    if (this.#socket === undefined) return;
    this.#socket.writable = count;
    if (!this.#ready) this.#handshake(false);
    else if (count > OVERHEAD) this.#deliver(() => this.#onWritable?.(count - OVERHEAD));
  }

  #readableChanged(count: number): void {
    if (this.#socket === undefined) return;
    this.#socket.readable = count;
    if (this.#data !== undefined) return;
    if (!this.#ready) {
      this.#handshake(true);
      if (!this.#ready) this.#handshake(false);
      return;
    }
    let data: Uint8Array | undefined | null;
    try {
      data = this.#session?.read(this.#socket);
    } catch (e) {
      return this.#fail(`TLS record: ${String(e)}`); // a bad record or MAC: the session is over
    }
    if (data === undefined) return;
    if (data === null) return this.#fail("closed by peer");
    if (data.byteLength === 0) return;
    (data as Data).position = 0;
    this.#data = data as Data;
    this.#deliver(() => this.#onReadable?.(data.byteLength));
  }

  #handshake(read: boolean): void {
    const session = this.#session;
    const socket = this.#socket;
    if (session === undefined || socket === undefined) return;
    let done: boolean;
    try {
      done = session.handshake(socket);
      if (read && !done) session.read(socket);
    } catch (e) {
      return this.#fail(`TLS handshake: ${String(e)}`);
    }
    if (!this.#pinned && session.peerCert !== undefined) {
      if (!matchesPin(new Uint8Array(session.peerCert), this.#pins, this.#sha256)) return this.#fail("certificate pin mismatch");
      this.#pinned = true;
    }
    if (!done) return;
    if (session.alert !== undefined) return this.#fail(`TLS alert ${session.alert.description}`);
    if (!this.#pinned) return this.#fail("no certificate seen to check pins against");
    this.#ready = true;
    this.#writableChanged(socket.writable);
  }

  /** Calls up into the MQTT client; an exception there ends this connection instead of aborting XS. */
  #deliver(callback: () => void): void {
    try {
      callback();
    } catch (e) {
      this.#fail(`client callback threw: ${String(e)}`);
    }
  }

  #fail(detail: string): void {
    if (this.#socket === undefined) return;
    this.close();
    try {
      this.#onError?.(detail);
    } catch (e) {
      trace(`TLS socket: onError threw ${String(e)}\n`);
    }
  }
}
