/**
 * HTTP/1.1 for the core's admin API (src/admin/api.ts) over any {@link Network} — on the firmware the
 * TLS network (https.ts). One request per connection (`Connection: close`); a bounded request head and
 * a `Content-Length` body of at most MAX_ADMIN_BODY bytes (413 beyond, 411 for chunked), both to arrive
 * within a deadline from accept (a slowloris peer is cut, not held); the headers the API reads (cookie,
 * content-type, x-csrf-token) passed on, its answer headers (Set-Cookie, Retry-After) sent; and the
 * body written chunk by chunk as the socket drains — a streamed body (the audit export) is pulled one
 * chunk at a time, only once the previous one went out, and closed when the peer goes away.
 */
import type { DeviceSocket, Listener, Network, SocketHandler, TimerId, Timers } from "../../src/ports.js";
import { MAX_ADMIN_BODY, type AdminApi, type AdminResponse, type AdminStream } from "portcullis/admin/api";

/** Request heads larger than this get 431 (RFC 6585 §5) and the connection closes. */
export const MAX_REQUEST_HEAD = 4096;
/** From accept (the TLS handshake included), the whole request (head and body) must arrive within this (ms). */
export const HEADER_TIMEOUT_MS = 10_000;

const REASONS: Readonly<Record<number, string>> = Object.freeze({ 200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout", 405: "Method Not Allowed", 409: "Conflict", 411: "Length Required", 413: "Content Too Large", 423: "Locked", 429: "Too Many Requests", 431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable" });

/** The console's trace on the device; absent where this file runs on Node (its tests). */
const say = (globalThis as { trace?: (text: string) => void }).trace;

/** A body chunk goes to the socket in slices of at most this many bytes: under the sockets' high-water marks, so a large chunk (a 24 KB status) meets back-pressure instead of their hard limits. */
const WRITE_PIECE = 4096;

/** Request headers passed to the API (besides Authorization), lower case. */
const PASSED = ["cookie", "content-type", "x-csrf-token"];

function encode(text: string): Uint8Array {
  return new Uint8Array(ArrayBuffer.fromString(text));
}

function head(status: number, contentType: string, extra: Readonly<Record<string, string>> = {}): string {
  let lines = "";
  let cache = "Cache-Control: no-store\r\n"; // the API's; a static file brings its own
  for (const [name, value] of Object.entries(extra)) {
    if (name.toLowerCase() === "cache-control") cache = "";
    if (/[\r\n]/.test(name + value)) continue; // never let a value split the head
    lines += `${name}: ${value}\r\n`;
  }
  return `HTTP/1.1 ${status} ${REASONS[status] ?? "Status"}\r\nContent-Type: ${contentType}\r\n${cache}${lines}Connection: close\r\n\r\n`;
}

export interface ParsedHead {
  readonly method: string;
  readonly target: string;
  readonly authorization: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /** Body bytes that follow the head. */
  readonly length: number;
}

/** What a request head says, or the status to refuse it with. */
export function parseHead(text: string): ParsedHead | number {
  const lines = text.split("\r\n");
  const request = /^([A-Z]+) (\/[^ ]*) HTTP\/1\.[01]$/.exec(lines[0] ?? "");
  if (!request) return 400;
  let authorization: string | undefined;
  let length = 0;
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "authorization") authorization = value;
    else if (name === "content-length") {
      if (!/^[0-9]{1,9}$/.test(value)) return 400;
      const n = Number(value);
      if (length !== 0 && n !== length) return 400; // two different lengths: a smuggling attempt
      length = n;
      if (length > MAX_ADMIN_BODY) return 413;
    } else if (name === "transfer-encoding") return 411;
    else if (PASSED.includes(name)) headers[name] = value;
  }
  return { method: request[1]!, target: request[2]!, authorization, headers, length };
}

/** Index of CR LF CR LF in `b`, or -1. */
function headEnd(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function text(b: Uint8Array): string {
  return String.fromArrayBuffer(b.slice().buffer as ArrayBuffer);
}

class Exchange implements SocketHandler {
  readonly #socket: DeviceSocket;
  readonly #api: AdminApi;
  readonly #timers: Timers;
  #deadline: TimerId | undefined;
  #buf: Uint8Array = new Uint8Array(0);
  #parsed: ParsedHead | undefined;
  #bodyAt = 0;
  #started = false;
  #pending: string[] = [];
  /** The chunk being written, encoded, and how far: sent in WRITE_PIECE slices so one large chunk never overruns a socket's queue. */
  #piece: Uint8Array | undefined;
  #pieceAt = 0;
  #stream: AdminStream | undefined;
  #pulling = false;
  #closed = false;

  readonly #files: StaticFiles | undefined;

  constructor(socket: DeviceSocket, api: AdminApi, timers: Timers, headerTimeoutMs: number, files?: StaticFiles) {
    this.#socket = socket;
    this.#api = api;
    this.#files = files;
    this.#timers = timers;
    this.#deadline = timers.after(headerTimeoutMs, () => {
      this.#deadline = undefined;
      if (this.#started || this.#closed) return;
      this.#closed = true; // no answer: a peer that trickles its request gets nothing back but the close
      this.#socket.close();
    });
  }

  private _stopDeadline(): void {
    if (this.#deadline !== undefined) this.#timers.cancel(this.#deadline);
    this.#deadline = undefined;
  }

  onData(data: Uint8Array): void {
    if (this.#started || this.#closed) return;
    this.#buf = concat(this.#buf, data);
    if (!this.#parsed) {
      const end = headEnd(this.#buf);
      if (end < 0) {
        if (this.#buf.length > MAX_REQUEST_HEAD) this._respond(431, "text/plain", ["request head too large\n"]);
        return;
      }
      if (end > MAX_REQUEST_HEAD) return this._respond(431, "text/plain", ["request head too large\n"]);
      const parsed = parseHead(text(this.#buf.subarray(0, end)));
      if (typeof parsed === "number") return this._respond(parsed, "text/plain", [`${REASONS[parsed] ?? "error"}\n`]);
      this.#parsed = parsed;
      this.#bodyAt = end + 4;
    }
    const parsed = this.#parsed;
    const have = this.#buf.length - this.#bodyAt;
    if (have < parsed.length) return; // more body to come, under the same deadline
    const body = parsed.length > 0 ? text(this.#buf.subarray(this.#bodyAt, this.#bodyAt + parsed.length)) : undefined;
    this.#buf = new Uint8Array(0);
    this.#started = true;
    this._stopDeadline();
    const page = this.#files?.(parsed.method, parsed.target);
    if (page) return this._respond(page.status, page.contentType, page.body, { ...page.headers });
    this.#api
      .handle({ method: parsed.method, target: parsed.target, authorization: parsed.authorization, headers: parsed.headers, remote: this.#socket.remote, ...(body !== undefined ? { body } : {}) })
      .then((r) => this._respond(r.status, r.contentType, r.body, r.headers, r.stream))
      .catch(() => this._respond(500, "application/json", ['{"error":"internal error"}\n']));
  }

  onWritable(): void {
    this._drain();
  }

  onClose(): void {
    this.#closed = true;
    this.#pending = [];
    this.#piece = undefined;
    this.#buf = new Uint8Array(0);
    this._stopDeadline();
    this._endStream();
  }

  private _endStream(): void {
    const s = this.#stream;
    this.#stream = undefined;
    s?.close();
  }

  private _respond(status: number, contentType: string, body: readonly string[], headers?: Readonly<Record<string, string>>, stream?: AdminStream): void {
    if (this.#closed) {
      stream?.close();
      return;
    }
    this.#started = true;
    this._stopDeadline();
    this.#pending = [head(status, contentType, headers), ...body];
    this.#stream = stream;
    this._drain();
  }

  /** Writes chunks until the socket pushes back (onWritable resumes); pulls the stream's next chunk only then. Closes after the last. */
  private _drain(): void {
    while (!this.#closed) {
      let piece = this.#piece;
      if (piece === undefined) {
        if (this.#pending.length === 0) break;
        piece = this.#piece = encode(this.#pending.shift()!);
        this.#pieceAt = 0;
      }
      const end = Math.min(this.#pieceAt + WRITE_PIECE, piece.length);
      const more = this.#socket.write(piece.subarray(this.#pieceAt, end));
      this.#pieceAt = end;
      if (end >= piece.length) this.#piece = undefined;
      if (!more) return;
    }
    if (this.#closed || !this.#started) return;
    if (this.#stream) {
      if (!this.#pulling) this._pull(this.#stream);
      return;
    }
    this.#closed = true;
    this.#socket.close();
  }

  private _pull(stream: AdminStream): void {
    this.#pulling = true;
    stream.next().then(
      (chunk) => {
        this.#pulling = false;
        if (this.#closed || this.#stream !== stream) return;
        if (chunk === undefined) this._endStream();
        else this.#pending.push(chunk);
        this._drain();
      },
      (e: unknown) => {
        // The head is out: cutting the connection is the only signal left (a truncated export fails verification).
        say?.(`admin: a streamed answer failed and its connection is cut: ${String(e)}\n`);
        this.#pulling = false;
        this._endStream();
        if (this.#closed) return;
        this.#closed = true;
        this.#pending = [];
        this.#piece = undefined;
        this.#socket.close();
      },
    );
  }
}

/** The dashboard's files (src/admin/static.ts), asked before the API; undefined passes to the API. */
export type StaticFiles = (method: string, target: string) => AdminResponse | undefined;

/** Serves `api` (and `files`, the dashboard) on `port` of `network`. @throws Error when the port cannot be bound. */
export function serveAdmin(network: Network, port: number, api: AdminApi, timers: Timers, headerTimeoutMs = HEADER_TIMEOUT_MS, files?: StaticFiles): Listener {
  return network.listen({ port, onConnection: (socket) => new Exchange(socket, api, timers, headerTimeoutMs, files) });
}
