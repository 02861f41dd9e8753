/**
 * The firmware's HTTP layer for the admin API (hosts/moddable/admin-http.ts) on Node, over a fake
 * Network and a fake clock, with the real AdminApi: the head deadline from accept, 429 with
 * Retry-After for a locked-out address, and the caller's address (without port) in the records.
 * Its two XS string helpers are polyfilled; the TLS layer under it is native (firmware-tls-pump.test.ts).
 */
import assert from "node:assert/strict";
import { AdminApi, AUTH_THROTTLE, MAX_ADMIN_BODY } from "../../src/admin/api.js";
import { SESSION_COOKIE } from "../../src/admin/sessions.js";
import { base32Decode, totpAt } from "../../src/admin/totp.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import { serveStatic, staticTable } from "../../src/admin/static.js";
import type { AuditEvent } from "../../src/audit/types.js";
import type { DeviceSocket, Listener, Network, SocketHandler } from "../../src/ports.js";
import { utf8 } from "../../src/util/bytes.js";
import { FakeClock } from "../lib/fake-clock.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";

// XS's ArrayBuffer.fromString and String.fromArrayBuffer (UTF-8), which admin-http.ts uses.
declare global {
  interface ArrayBufferConstructor {
    fromString(s: string): ArrayBuffer;
  }
  interface StringConstructor {
    fromArrayBuffer(b: ArrayBuffer): string;
  }
}
ArrayBuffer.fromString ??= (s) => new TextEncoder().encode(s).buffer as ArrayBuffer;
String.fromArrayBuffer ??= (b) => new TextDecoder().decode(b);

const { HEADER_TIMEOUT_MS, serveAdmin } = await import("../../hosts/moddable/admin-http.js");

const TOKEN = "pct_firmware-http-test-not-a-secret";
/** A dashboard table as hosts/moddable/web.ts builds it from resources (here from strings). */
const PAGE = "<!doctype html><title>x</title>";
/** One 40 KB body chunk: larger than the firmware sockets' 16 KB queue limit. */
const BIG = `/*${"x".repeat(40_000)}*/`;
const WEB = staticTable([
  { path: "/", file: "index.html", contentType: "text/html; charset=utf-8", immutable: false },
  { path: "/assets/app.0123456789.js", file: "app.0123456789.js", contentType: "text/javascript; charset=utf-8", immutable: true },
  { path: "/assets/big.0123456789.js", file: "big.0123456789.js", contentType: "text/javascript; charset=utf-8", immutable: true },
], (f) => (f === "index.html" ? PAGE : f.startsWith("big") ? BIG : "void 0"));

class FakeSocket implements DeviceSocket {
  readonly remote: string;
  written = "";
  closed = false;
  largestWrite = 0;
  constructor(remote: string) {
    this.remote = remote;
  }
  write(data: Uint8Array): boolean {
    this.written += new TextDecoder().decode(data);
    this.largestWrite = Math.max(this.largestWrite, data.length);
    return true;
  }
  close(): void {
    this.closed = true;
  }
}

describe("firmware: admin HTTP over a Network (hosts/moddable/admin-http.ts)", () => {
  let clock: FakeClock;
  let events: AuditEvent[];
  let accept: (remote: string) => { socket: FakeSocket; handler: SocketHandler };

  beforeEach(() => {
    clock = new FakeClock();
    events = [];
    const crypto = nobleCrypto(seededRandom("fw-http"));
    const api = new AdminApi({
      crypto, clock, tokenHash: crypto.sha256(utf8(TOKEN)), onEvent: (e) => void events.push(e), status: () => ({ ok: true }),
      audit: { nextSeq: 1, stats: () => ({ records: 0, bytesUsed: 0, bytesTotal: 0 }), append: async () => 0, query: () => [] },
    });
    let onConnection: ((s: DeviceSocket) => SocketHandler) | undefined;
    const network: Network = {
      listen(o): Listener {
        onConnection = o.onConnection;
        return { port: o.port, close() {} };
      },
    };
    serveAdmin(network, 443, api, clock, undefined, (method, target) => serveStatic(WEB, method, target));
    accept = (remote) => {
      const socket = new FakeSocket(remote);
      return { socket, handler: onConnection!(socket) };
    };
  });

  const send = (h: SocketHandler, text: string) => h.onData(new TextEncoder().encode(text));
  const settle = () => new Promise((r) => setImmediate(r));

  it("closes a connection whose head has not arrived by the deadline, without answering it", () => {
    const { socket, handler } = accept("192.0.2.5:4000");
    const head = `GET /api/v1/status HTTP/1.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`;
    let i = 0;
    for (; clock.monotonic() < HEADER_TIMEOUT_MS - 1000; i++) {
      send(handler, head[i]!); // one byte a second
      clock.tick(1000);
    }
    assert.equal(socket.closed, false, "not before the deadline");
    clock.tick(1000);
    assert.equal(socket.closed, true, "cut at the deadline");
    assert.equal(socket.written, "");
    send(handler, head.slice(i)); // whatever arrives after the cut is ignored
    assert.equal(socket.written, "");
  });

  it("answers a prompt request, and the deadline does not fire after it", async () => {
    const { socket, handler } = accept("192.0.2.5:4000");
    send(handler, `GET /api/v1/status HTTP/1.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    await settle();
    assert.match(socket.written, /^HTTP\/1\.1 200 OK\r\n[^]*Connection: close\r\n\r\n\{"ok":true\}\n$/);
    clock.tick(HEADER_TIMEOUT_MS * 2);
    assert.ok(socket.closed);
  });

  it("writes a body chunk larger than a socket's queue limit in slices of at most 4 KB, whole", async () => {
    const { socket, handler } = accept("192.0.2.5:4000");
    send(handler, "GET /assets/big.0123456789.js HTTP/1.1\r\nHost: gw\r\n\r\n");
    await settle();
    assert.ok(socket.written.endsWith(`\r\n\r\n${BIG}`), "the whole body after the head");
    assert.ok(socket.largestWrite <= 4096, `largest write ${socket.largestWrite} bytes`);
    assert.ok(socket.closed);
  });

  it("serves the dashboard's files with their own caching and the CSP, and leaves /api/ to the API", async () => {
    let { socket, handler } = accept("192.0.2.5:4000");
    send(handler, "GET / HTTP/1.1\r\nHost: gw\r\n\r\n");
    await settle();
    assert.match(socket.written, /^HTTP\/1\.1 200 OK\r\nContent-Type: text\/html; charset=utf-8\r\n/);
    assert.match(socket.written, /\r\ncontent-security-policy: default-src 'self'; script-src 'self';[^\r]*frame-ancestors 'none'\r\n/);
    assert.match(socket.written, /\r\nx-content-type-options: nosniff\r\n/);
    assert.equal(socket.written.match(/cache-control/gi)?.length, 1, "one Cache-Control");
    assert.match(socket.written, /\r\ncache-control: no-cache\r\n/);
    assert.ok(socket.written.endsWith("\r\n\r\n" + PAGE));
    ({ socket, handler } = accept("192.0.2.5:4001"));
    send(handler, "GET /assets/app.0123456789.js HTTP/1.1\r\n\r\n");
    await settle();
    assert.match(socket.written, /\r\ncache-control: public, max-age=31536000, immutable\r\n/);
    ({ socket, handler } = accept("192.0.2.5:4002"));
    send(handler, "GET /api/v1/status HTTP/1.1\r\n\r\n"); // no token: the API's 401, not a file
    await settle();
    assert.match(socket.written, /^HTTP\/1\.1 401 Unauthorized\r\n[^]*Cache-Control: no-store\r\n/);
    assert.doesNotMatch(socket.written, /content-security-policy/i);
  });

  it("answers 429 with Retry-After to a locked-out address, and records it by address", async () => {
    for (let i = 0; i < AUTH_THROTTLE.failures; i++) {
      const { socket, handler } = accept(`192.0.2.5:${4000 + i}`);
      send(handler, "GET /api/v1/status HTTP/1.1\r\nAuthorization: Bearer pct_wrong\r\n\r\n");
      await settle();
      assert.match(socket.written, /^HTTP\/1\.1 401 Unauthorized\r\n/);
    }
    const { socket, handler } = accept("192.0.2.5:5000");
    send(handler, `GET /api/v1/status HTTP/1.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    await settle();
    assert.match(socket.written, /^HTTP\/1\.1 429 Too Many Requests\r\n[^]*Retry-After: 60\r\n[^]*Connection: close\r\n\r\n/);
    assert.ok(events.every((e) => e.detail?.remote === "192.0.2.5"), "one address, whatever the port");
    assert.equal(events.at(-1)?.reason, "throttled");
  });

  it("refuses a body over MAX_ADMIN_BODY (413) and chunked bodies (411) from the head, before reading them", async () => {
    let { socket, handler } = accept("192.0.2.5:4000");
    send(handler, `POST /api/v1/login HTTP/1.1\r\nContent-Length: ${MAX_ADMIN_BODY + 1}\r\n\r\n{`);
    await settle();
    assert.match(socket.written, /^HTTP\/1\.1 413 Content Too Large\r\n/);
    assert.ok(socket.closed);
    ({ socket, handler } = accept("192.0.2.5:4001"));
    send(handler, "POST /api/v1/login HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    await settle();
    assert.match(socket.written, /^HTTP\/1\.1 411 Length Required\r\n/);
    ({ socket, handler } = accept("192.0.2.5:4002"));
    send(handler, "POST /api/v1/login HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n");
    await settle();
    assert.match(socket.written, /^HTTP\/1\.1 400 Bad Request\r\n/, "two different lengths");
  });

  it("a body that trickles past the deadline is cut unanswered", () => {
    const { socket, handler } = accept("192.0.2.5:4000");
    send(handler, "POST /api/v1/login HTTP/1.1\r\nContent-Length: 40\r\n\r\n{\"account\":");
    clock.tick(HEADER_TIMEOUT_MS);
    assert.ok(socket.closed);
    assert.equal(socket.written, "");
  });
});

/** A socket that takes `room` writes, then pushes back until the test calls drain(). */
class SlowSocket implements DeviceSocket {
  readonly remote = "192.0.2.9:4100";
  written = "";
  writes = 0;
  closed = false;
  room = 1;
  write(data: Uint8Array): boolean {
    this.written += new TextDecoder().decode(data);
    this.writes++;
    return --this.room > 0;
  }
  close(): void {
    this.closed = true;
  }
}

describe("firmware: admin HTTP POST, headers, streamed answers (hosts/moddable/admin-http.ts)", () => {
  const PASSWORD = "correct horse battery staple";
  let clock: FakeClock;
  let codes: string[];
  let made: number;
  let released: number;
  let onConnection: ((s: DeviceSocket) => SocketHandler) | undefined;
  const send = (h: SocketHandler, text: string) => h.onData(new TextEncoder().encode(text));
  const settle = async (n = 3) => {
    for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
  };
  const exchange = async (raw: string): Promise<{ status: number; headers: string; body: string }> => {
    const socket = new FakeSocket("192.0.2.20:4000");
    const handler = onConnection!(socket);
    // Split mid-way (and inside the body), as TCP may.
    const bytes = new TextEncoder().encode(raw);
    const cut = Math.floor(bytes.length * 0.7);
    handler.onData(bytes.subarray(0, cut));
    handler.onData(bytes.subarray(cut));
    for (let i = 0; i < 50 && !socket.closed; i++) await settle(1);
    assert.ok(socket.closed, "the exchange ends with a close");
    const at = socket.written.indexOf("\r\n\r\n");
    return { status: Number(socket.written.slice(9, 12)), headers: socket.written.slice(0, at), body: socket.written.slice(at + 4) };
  };
  const post = (target: string, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
    return exchange(`POST ${target} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: ${new TextEncoder().encode(text).length}\r\n${extra}\r\n${text}`);
  };

  beforeEach(() => {
    clock = new FakeClock();
    codes = [];
    made = 0;
    released = 0;
    const random = seededRandom("fw-post");
    const crypto = nobleCrypto(random);
    const line = "y".repeat(100);
    let left = 2000;
    const source: Iterator<string> = {
      next: () => (left-- > 0 ? (made++, { done: false, value: `{"n":${made},"pad":"${line}"}` }) : { done: true, value: undefined as unknown as string }),
      return: (v?: unknown) => (released++, { done: true, value: v as string }),
    };
    const api = new AdminApi({
      crypto, clock, tokenHash: crypto.sha256(utf8(TOKEN)), onEvent: () => undefined, status: () => ({ ok: true }),
      audit: { nextSeq: 1, stats: () => ({ records: 0, bytesUsed: 0, bytesTotal: 0 }), append: async () => 0, query: () => [] },
      exportJsonl: async () => source,
      auth: { keys: new MemoryKeys(), random, timers: clock, iterations: 2, onSetupCode: (c) => void codes.push(c) },
    });
    const network: Network = {
      listen(o): Listener {
        onConnection = o.onConnection;
        return { port: o.port, close() {} };
      },
    };
    serveAdmin(network, 443, api, clock);
  });

  it("setup and login by POST with password + TOTP: Set-Cookie goes out; the cookie works, and needs x-csrf-token to change things", async () => {
    // A non-ASCII password, so the body's bytes (not its characters) are what Content-Length counts.
    const password = PASSWORD + " – ünïcödé";
    const setup = await post("/api/v1/setup", { code: codes.at(-1), account: "alice", password });
    assert.equal(setup.status, 201, setup.body);
    const secret = base32Decode((JSON.parse(setup.body) as { totp: { secret: string } }).totp.secret);
    clock.tick(30_000);
    const login = await post("/api/v1/login", { account: "alice", password, totp: totpAt(nobleCrypto(seededRandom("x")), secret, clock.now()) });
    assert.equal(login.status, 200, login.body);
    const cookie = new RegExp(`\r\nSet-Cookie: (${SESSION_COOKIE}=[^;]+);[^\r]*HttpOnly; Secure; SameSite=Strict`).exec(login.headers);
    assert.ok(cookie, login.headers);
    const csrf = (JSON.parse(login.body) as { csrf: string }).csrf;
    const me = await exchange(`GET /api/v1/me HTTP/1.1\r\nCookie: ${cookie[1]}\r\n\r\n`);
    assert.equal(me.status, 200, me.body);
    assert.equal((JSON.parse(me.body) as { account: string }).account, "alice");
    const noCsrf = await post("/api/v1/logout", {}, { Cookie: cookie[1]! });
    assert.equal(noCsrf.status, 403, "the cookie alone cannot change things");
    const out = await post("/api/v1/logout", {}, { Cookie: cookie[1]!, "X-CSRF-Token": csrf });
    assert.equal(out.status, 200, out.body);
    assert.match(out.headers, new RegExp(`\r\nSet-Cookie: ${SESSION_COOKIE}=; `));
    assert.equal((await exchange(`GET /api/v1/me HTTP/1.1\r\nCookie: ${cookie[1]}\r\n\r\n`)).status, 401, "the session is over");
  });

  it("a wrong TOTP code is refused over POST", async () => {
    await post("/api/v1/setup", { code: codes.at(-1), account: "alice", password: PASSWORD });
    const r = await post("/api/v1/login", { account: "alice", password: PASSWORD, totp: "000000" });
    assert.equal(r.status, 401);
    assert.doesNotMatch(r.headers, /Set-Cookie/i);
  });

  it("streams the export chunk by chunk as the socket drains: a chunk is pulled only after onWritable", async () => {
    const socket = new SlowSocket();
    const handler = onConnection!(socket);
    send(handler, `GET /api/v1/audit/export HTTP/1.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    await settle(5);
    let sentLines = socket.written.split("\n").length - 1;
    let most = made - sentLines;
    for (let i = 0; i < 10_000 && !socket.closed; i++) {
      const before = made;
      await settle(2);
      assert.equal(made, before, "nothing is pulled while the socket pushes back");
      socket.room = 1;
      handler.onWritable!();
      await settle(2);
      sentLines = socket.written.split("\n").length - 1;
      most = Math.max(most, made - sentLines);
    }
    assert.ok(socket.closed);
    assert.match(socket.written, /^HTTP\/1\.1 200 OK\r\nContent-Type: application\/x-ndjson\r\n/);
    const body = socket.written.slice(socket.written.indexOf("\r\n\r\n") + 4);
    assert.equal(body.split("\n").length - 1, 2000);
    assert.ok(socket.writes > 50, `${socket.writes} writes`);
    assert.ok(most <= 25, `at most one chunk made ahead of the socket (saw ${most} lines)`);
    assert.equal(released, 1);
  });

  it("a peer that goes away mid-stream closes the stream: its source is released and nothing more is pulled", async () => {
    const socket = new SlowSocket();
    const handler = onConnection!(socket);
    send(handler, `GET /api/v1/audit/export HTTP/1.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    await settle(5);
    for (let i = 0; i < 3; i++) {
      socket.room = 1;
      handler.onWritable!();
      await settle(2);
    }
    assert.equal(released, 0);
    handler.onClose();
    assert.equal(released, 1);
    const after = made;
    socket.room = 100;
    handler.onWritable!();
    await settle(3);
    assert.equal(made, after);
  });
});
