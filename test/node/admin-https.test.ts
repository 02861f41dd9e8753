/**
 * The admin HTTPS server holds (hosts/node/https.ts): real node:tls clients against it — offered
 * suites and versions (each refusal checked against a permissive control server, so it is our
 * configuration that refuses, not the client), a slowloris head cut at the deadline, the connection
 * cap with recovery once idle connections are cut, and failed-auth throttling over the wire.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { PassThrough } from "node:stream";
import { createServer as createHttpsServer, request, type Server } from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import tls from "node:tls";
import { AdminApi, AUTH_THROTTLE } from "../../src/admin/api.js";
import type { AuditEvent } from "../../src/audit/types.js";
import { utf8 } from "../../src/util/bytes.js";
import { bootNodeBoard } from "../../hosts/node/board.js";
import { nodeClock } from "../../hosts/node/clock.js";
import { nodeCrypto } from "../../hosts/node/crypto.js";
import { loadOrCreateIdentity, startAdminServer, type AdminServer, type Identity } from "../../hosts/node/https.js";

const TOKEN = "pct_admin-https-test-not-a-secret";

function makeApi(events: AuditEvent[]): AdminApi {
  const crypto = nodeCrypto();
  return new AdminApi({
    crypto,
    clock: nodeClock(),
    audit: { nextSeq: 1, stats: () => ({ records: 0, bytesUsed: 0, bytesTotal: 0 }), append: async () => 0, query: () => [] },
    tokenHash: crypto.sha256(utf8(TOKEN)),
    onEvent: (e) => void events.push(e),
    status: () => ({ ok: true }),
  });
}

/** Handshakes with `options`; resolves with the negotiated protocol and cipher, rejects on failure. */
function handshake(port: number, options: tls.ConnectionOptions = {}): Promise<{ protocol: string | null; cipher: string }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, ...options }, () => {
      const r = { protocol: s.getProtocol(), cipher: s.getCipher().name };
      s.destroy();
      resolve(r);
    });
    s.on("error", reject);
    s.on("close", () => reject(new Error("closed before the handshake finished")));
  });
}

function get(port: number, target: string, token: string | null = TOKEN): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: target, rejectUnauthorized: false, agent: false, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** An open TLS connection that sends nothing; resolves once the handshake is done. */
function idle(port: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => resolve(s));
    s.on("error", reject);
    s.on("close", () => reject(new Error("closed")));
  });
}

const closed = (s: tls.TLSSocket): Promise<void> => new Promise((resolve) => (s.destroyed ? resolve() : s.once("close", () => resolve())));

/** Refused by ours, accepted by the permissive control: the suite or version itself is what we refuse. */
const REFUSED: readonly [string, tls.ConnectionOptions][] = [
  ["TLS 1.2 CBC with SHA-1 (ECDHE-ECDSA-AES128-SHA)", { ciphers: "ECDHE-ECDSA-AES128-SHA", maxVersion: "TLSv1.2" }],
  ["TLS 1.2 CBC with SHA-256 (ECDHE-ECDSA-AES128-SHA256)", { ciphers: "ECDHE-ECDSA-AES128-SHA256", maxVersion: "TLSv1.2" }],
  ["TLS 1.2 CCM8 (ECDHE-ECDSA-AES128-CCM8)", { ciphers: "ECDHE-ECDSA-AES128-CCM8", maxVersion: "TLSv1.2" }],
  ["TLS 1.3 CCM8 (TLS_AES_128_CCM_8_SHA256)", { ciphers: "TLS_AES_128_CCM_8_SHA256", minVersion: "TLSv1.3" }],
  ["TLS 1.1", { minVersion: "TLSv1.1", maxVersion: "TLSv1.1", ciphers: "DEFAULT@SECLEVEL=0" }],
  ["TLS 1.0", { minVersion: "TLSv1", maxVersion: "TLSv1", ciphers: "DEFAULT@SECLEVEL=0" }],
];

describe("admin HTTPS server (Node board)", function () {
  this.timeout(30000);
  let dir: string;
  let identity: Identity;
  let events: AuditEvent[];
  let admin: AdminServer | undefined;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "portcullis-admin-https-"));
    identity = (await loadOrCreateIdentity(dir)).identity;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => (events = []));
  afterEach(async () => {
    await admin?.close();
    admin = undefined;
  });

  it("offers TLS 1.3 and TLS 1.2 ECDHE AEAD suites, and nothing else", async () => {
    admin = await startAdminServer(makeApi(events), identity, { port: 0 });
    assert.deepEqual(await handshake(admin.port), { protocol: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256" });
    for (const c of ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"]) {
      assert.deepEqual(await handshake(admin.port, { ciphers: c, maxVersion: "TLSv1.2" }), { protocol: "TLSv1.2", cipher: c });
    }
    const control: Server = createHttpsServer({ key: identity.keyPem, cert: identity.certPem, minVersion: "TLSv1", ciphers: "TLS_AES_128_CCM_8_SHA256:TLS_AES_128_GCM_SHA256:ALL:@SECLEVEL=0" });
    await new Promise<void>((r) => control.listen(0, "127.0.0.1", r));
    try {
      const controlPort = (control.address() as { port: number }).port;
      for (const [name, options] of REFUSED) {
        await handshake(controlPort, options); // the client can offer it, and a lax server takes it
        await assert.rejects(handshake(admin.port, options), `${name} must be refused`);
      }
    } finally {
      control.close();
    }
  });

  it("cuts a request head trickling in byte by byte at the header deadline", async () => {
    admin = await startAdminServer(makeApi(events), identity, { port: 0, headerTimeoutMs: 1500, idleTimeoutMs: 10_000 });
    const start = performance.now();
    const s = await idle(admin.port);
    const head = `GET /api/v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nX-Slow: ${"a".repeat(100)}\r\n\r\n`;
    let sent = 0;
    let answer = "";
    s.on("data", (d: Buffer) => (answer += d.toString()));
    s.on("error", () => undefined);
    const drip = setInterval(() => s.write(head[sent++] ?? ""), 250);
    await closed(s);
    clearInterval(drip);
    const ms = performance.now() - start;
    assert.ok(ms >= 1400 && ms < 2600, `cut after ${ms.toFixed(0)} ms, the deadline is 1500 ms`);
    assert.ok(sent < head.length, "the head never completed");
    assert.equal(answer, "", "nothing was served to it");
    console.log(`      slowloris head cut after ${ms.toFixed(0)} ms (deadline 1500 ms, ${sent} bytes sent)`);
    assert.equal((await get(admin.port, "/api/v1/status")).status, 200, "a prompt request is served");
  });

  it("holds at most maxConnections; the rest are refused, and service resumes once idle ones are cut", async () => {
    const cap = 4;
    admin = await startAdminServer(makeApi(events), identity, { port: 0, maxConnections: cap, headerTimeoutMs: 1500 });
    const held = await Promise.all(Array.from({ length: cap }, () => idle(admin!.port)));
    for (const s of held) s.on("error", () => undefined);
    const extra = await Promise.allSettled(Array.from({ length: 3 }, () => handshake(admin!.port)));
    assert.deepEqual(extra.map((r) => r.status), ["rejected", "rejected", "rejected"], "beyond the cap nothing gets a handshake");
    await assert.rejects(get(admin.port, "/api/v1/status"), "while the cap is full, even a good request waits outside");
    await Promise.all(held.map(closed)); // the head deadline frees the idle ones
    const r = await get(admin.port, "/api/v1/status");
    assert.equal(r.status, 200);
    assert.equal(r.headers.connection, "close", "one request per connection");
  });

  it("throttles failed authentication per address: 429 with Retry-After, records carry the address", async () => {
    admin = await startAdminServer(makeApi(events), identity, { port: 0 });
    for (let i = 0; i < AUTH_THROTTLE.failures; i++) assert.equal((await get(admin.port, "/api/v1/status", "pct_wrong")).status, 401);
    const r = await get(admin.port, "/api/v1/status");
    assert.equal(r.status, 429, "the right token from a locked address is refused too");
    assert.equal(r.headers["retry-after"], String(AUTH_THROTTLE.windowMs / 1000));
    assert.ok(events.length === AUTH_THROTTLE.failures && events.every((e) => e.detail?.remote === "127.0.0.1"));
    assert.equal(events.at(-1)?.reason, "throttled");
  });

  it("refuses limits that are not positive integers", async () => {
    await assert.rejects(startAdminServer(makeApi(events), identity, { port: 0, maxConnections: 0 }), /maxConnections/);
    await assert.rejects(startAdminServer(makeApi(events), identity, { port: 0, headerTimeoutMs: 1.5 }), /headerTimeoutMs/);
  });

  it("npm start takes --https-host: an address literal is bound and printed, anything else exits 2 naming it", async () => {
    const bad = spawnSync(process.execPath, ["--import", "tsx", "hosts/node/main.ts", "--https-host", "my-laptop"], { encoding: "utf8" });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--https-host must be an IPv4 or IPv6 address, got "my-laptop"/);
    const data = mkdtempSync(path.join(tmpdir(), "portcullis-https-host-"));
    const child = spawn(process.execPath, ["--import", "tsx", "hosts/node/main.ts", "--no-demo", "--data", data, "--mqtt-port", "0", "--https-port", "0", "--https-host", "127.0.0.1"]);
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (c: Buffer) => {
          out += c.toString();
          const m = /admin HTTPS on (\S+) port (\d+)/.exec(out);
          if (m) resolve(m[0]);
        });
        child.once("exit", (code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      assert.match(line, /^admin HTTPS on 127\.0\.0\.1 port \d+$/);
      const port = Number(/port (\d+)/.exec(line)![1]);
      assert.equal((await get(port, "/api/v1/status", "pct_wrong")).status, 401, "and it serves there");
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      rmSync(data, { recursive: true, force: true });
    }
  });

  it("takes its limits and bind address from gateway.json admin", async () => {
    const config = mkdtempSync(path.join(tmpdir(), "portcullis-admin-config-"));
    cpSync("examples/home", config, { recursive: true });
    const file = path.join(config, "gateway.json");
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, "utf8")), admin: { host: "127.0.0.1", maxConnections: 2, headerTimeoutMs: 1000 } }));
    const out = new PassThrough();
    let text = "";
    out.on("data", (c: Buffer) => (text += c.toString()));
    const board = await bootNodeBoard({ configDir: config, dataDir: path.join(config, "data"), mqttPort: 0, httpsPort: 0, demo: false, consoleInput: new PassThrough(), consoleOutput: out });
    try {
      assert.match(text, /admin HTTPS on 127\.0\.0\.1 port/);
      const held = await Promise.all([idle(board.httpsPort), idle(board.httpsPort)]);
      for (const s of held) s.on("error", () => undefined);
      await assert.rejects(handshake(board.httpsPort), "the third is over the configured cap of 2");
      const start = performance.now();
      await Promise.all(held.map(closed));
      assert.ok(performance.now() - start < 1500, "cut by the configured 1000 ms deadline");
    } finally {
      await board.stop();
      rmSync(config, { recursive: true, force: true });
    }
  });
});
