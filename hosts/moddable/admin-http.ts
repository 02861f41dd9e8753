/**
 * HTTP/1.1 for the core's admin API (src/admin/api.ts) over any {@link Network} — on the firmware the
 * TLS network (https.ts). One request per connection (`Connection: close`), GET only, a bounded request
 * head that must arrive within a deadline from accept (a slowloris peer is cut, not held), and a
 * response body written chunk by chunk as the socket drains, so a large audit page never sits in RAM twice.
 */
import type { DeviceSocket, Listener, Network, SocketHandler, TimerId, Timers } from "../../src/ports.js";
import type { AdminApi, AdminResponse } from "portcullis/admin/api";

/** Request heads larger than this get 431 (RFC 6585 §5) and the connection closes. */
export const MAX_REQUEST_HEAD = 4096;
/** From accept (the TLS handshake included), the whole request head must arrive within this (ms). */
export const HEADER_TIMEOUT_MS = 10_000;

const REASONS: Readonly<Record<number, string>> = Object.freeze({ 200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 408: "Request Timeout", 405: "Method Not Allowed", 413: "Content Too Large", 429: "Too Many Requests", 431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable" });

function encode(text: string): Uint8Array {
  return new Uint8Array(ArrayBuffer.fromString(text));
}

function head(status: number, contentType: string, extra: Readonly<Record<string, string>> = {}): string {
  let lines = "";
  let cache = "Cache-Control: no-store\r\n"; // the API's; a static file brings its own
  for (const [name, value] of Object.entries(extra)) {
    if (name.toLowerCase() === "cache-control") cache = "";
    lines += `${name}: ${value}\r\n`;
  }
  return `HTTP/1.1 ${status} ${REASONS[status] ?? "Status"}\r\nContent-Type: ${contentType}\r\n${cache}${lines}Connection: close\r\n\r\n`;
}

/** What a request head says, or the status to refuse it with. */
export function parseHead(text: string): { method: string; target: string; authorization: string | undefined } | number {
  const lines = text.split("\r\n");
  const request = /^([A-Z]+) (\/[^ ]*) HTTP\/1\.[01]$/.exec(lines[0] ?? "");
  if (!request) return 400;
  let authorization: string | undefined;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "authorization") authorization = value;
    else if (name === "content-length" && value !== "0") return 413;
    else if (name === "transfer-encoding") return 413;
  }
  if (request[1] !== "GET") return 405;
  return { method: request[1]!, target: request[2]!, authorization };
}

class Exchange implements SocketHandler {
  readonly #socket: DeviceSocket;
  readonly #api: AdminApi;
  readonly #timers: Timers;
  #deadline: TimerId | undefined;
  #head = "";
  #started = false;
  #pending: string[] = [];
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
      this.#closed = true; // no answer: a peer that trickles its head gets nothing back but the close
      this.#socket.close();
    });
  }

  #stopDeadline(): void {
    if (this.#deadline !== undefined) this.#timers.cancel(this.#deadline);
    this.#deadline = undefined;
  }

  onData(data: Uint8Array): void {
    if (this.#started || this.#closed) return;
    this.#head += String.fromArrayBuffer(data.slice().buffer as ArrayBuffer);
    const end = this.#head.indexOf("\r\n\r\n");
    if (end < 0) {
      if (this.#head.length > MAX_REQUEST_HEAD) this.#respond(431, "text/plain", ["request head too large\n"]);
      return;
    }
    this.#started = true;
    this.#stopDeadline();
    const parsed = parseHead(this.#head.slice(0, end));
    if (typeof parsed === "number") return this.#respond(parsed, "text/plain", [`${REASONS[parsed] ?? "error"}\n`]);
    const page = this.#files?.(parsed.method, parsed.target);
    if (page) return this.#respond(page.status, page.contentType, page.body, { ...page.headers });
    this.#api
      .handle({ ...parsed, remote: this.#socket.remote })
      .then((r) => this.#respond(r.status, r.contentType, r.body, r.headers))
      .catch(() => this.#respond(500, "application/json", ['{"error":"internal error"}\n']));
  }

  onWritable(): void {
    this.#drain();
  }

  onClose(): void {
    this.#closed = true;
    this.#pending = [];
    this.#stopDeadline();
  }

  #respond(status: number, contentType: string, body: readonly string[], headers?: Readonly<Record<string, string>>): void {
    this.#started = true;
    this.#stopDeadline();
    this.#pending = [head(status, contentType, headers), ...body];
    this.#drain();
  }

  /** Writes body chunks until the socket pushes back; onWritable resumes. Closes after the last. */
  #drain(): void {
    while (!this.#closed && this.#pending.length > 0) {
      const more = this.#socket.write(encode(this.#pending.shift()!));
      if (!more) return;
    }
    if (!this.#closed && this.#started && this.#pending.length === 0) {
      this.#closed = true;
      this.#socket.close();
    }
  }
}

/** The dashboard's files (src/admin/static.ts), asked before the API; undefined passes to the API. */
export type StaticFiles = (method: string, target: string) => AdminResponse | undefined;

/** Serves `api` (and `files`, the dashboard) on `port` of `network`. @throws Error when the port cannot be bound. */
export function serveAdmin(network: Network, port: number, api: AdminApi, timers: Timers, headerTimeoutMs = HEADER_TIMEOUT_MS, files?: StaticFiles): Listener {
  return network.listen({ port, onConnection: (socket) => new Exchange(socket, api, timers, headerTimeoutMs, files) });
}
