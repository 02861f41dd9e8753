/**
 * The firmware's HTTP layer for the admin API (hosts/moddable/admin-http.ts) on Node, over a fake
 * Network and a fake clock, with the real AdminApi: the head deadline from accept, 429 with
 * Retry-After for a locked-out address, and the caller's address (without port) in the records.
 * Its two XS string helpers are polyfilled; the TLS layer under it is native (firmware-tls-pump.test.ts).
 */
import assert from "node:assert/strict";
import { AdminApi, AUTH_THROTTLE } from "../../src/admin/api.js";
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
const WEB = staticTable([
  { path: "/", file: "index.html", contentType: "text/html; charset=utf-8", immutable: false },
  { path: "/assets/app.0123456789.js", file: "app.0123456789.js", contentType: "text/javascript; charset=utf-8", immutable: true },
], (f) => (f === "index.html" ? PAGE : "void 0"));

class FakeSocket implements DeviceSocket {
  readonly remote: string;
  written = "";
  closed = false;
  constructor(remote: string) {
    this.remote = remote;
  }
  write(data: Uint8Array): boolean {
    this.written += new TextDecoder().decode(data);
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
});
