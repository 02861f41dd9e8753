/**
 * Streamed answers over the Node board's admin HTTPS (hosts/node/https.ts): a real audit export
 * arrives byte-identical to the whole one; a client that stops reading stops the producer
 * (back-pressure: the next chunk is pulled only after 'drain'); a client that goes away closes the
 * stream (its source is released).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:https";
import type { ClientRequest, IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { AdminApi } from "../../src/admin/api.js";
import { FlashAuditLog } from "../../src/audit/log.js";
import { ramFlash } from "../../src/flash/nor.js";
import { utf8 } from "../../src/util/bytes.js";
import { nodeClock } from "../../hosts/node/clock.js";
import { nodeCrypto } from "../../hosts/node/crypto.js";
import { loadOrCreateIdentity, startAdminServer, type AdminServer, type Identity } from "../../hosts/node/https.js";
import { MemoryKeys } from "../lib/memory-keys.js";
import { FakeClock } from "../lib/fake-clock.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";

const TOKEN = "pct_stream-test-not-a-secret";
const noLog = { nextSeq: 1, stats: () => ({ records: 0, bytesUsed: 0, bytesTotal: 0 }), append: async () => 0, query: () => [] };

function open(port: number, target: string): Promise<{ req: ClientRequest; res: IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: target, rejectUnauthorized: false, agent: false, headers: { authorization: `Bearer ${TOKEN}` } }, (res) => resolve({ req, res }));
    req.on("error", reject);
    req.end();
  });
}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = "";
    res.setEncoding("utf8");
    res.on("data", (c: string) => (body += c));
    res.on("end", () => resolve(body));
    res.on("error", reject);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("streamed admin answers over HTTPS (Node board)", function () {
  this.timeout(60000);
  let dir: string;
  let identity: Identity;
  let admin: AdminServer | undefined;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "portcullis-stream-"));
    identity = (await loadOrCreateIdentity(dir)).identity;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(async () => {
    await admin?.close();
    admin = undefined;
  });

  it("a real export of a large log arrives byte-identical to the whole export", async () => {
    const clock = new FakeClock();
    const random = seededRandom("stream");
    const log = await FlashAuditLog.open({ flash: ramFlash(128 * 4096), crypto: nobleCrypto(random), random, keys: new MemoryKeys(), clock, timers: clock });
    for (let i = 0; i < 4000; i++) await log.append({ kind: "flow", decision: "deny", device: `cam${i % 5}`, topic: `home/cam/${i}`, reason: "no-contract" });
    const crypto = nodeCrypto();
    const api = new AdminApi({ crypto, clock: nodeClock(), audit: log, tokenHash: crypto.sha256(utf8(TOKEN)), onEvent: () => undefined, status: () => ({}), exportJsonl: async (f, t) => log.exportLines(f, t) });
    admin = await startAdminServer(api, identity, { port: 0 });
    const { res } = await open(admin.port, "/api/v1/audit/export");
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers["content-type"], "application/x-ndjson");
    const body = await readBody(res);
    assert.ok(body.length > 400_000, `${body.length} bytes`);
    assert.equal(body, log.exportJsonl().join("\n") + "\n");
    await log.close();
  });

  it("a client that stops reading stops the producer; one that goes away closes the stream", async () => {
    let made = 0;
    let released = 0;
    const line = "x".repeat(200);
    // An endless source of lines: only back-pressure keeps it bounded.
    const endless: Iterator<string> = {
      next: () => (made++, { done: false, value: `{"n":${made},"pad":"${line}"}` }),
      return: (v?: unknown) => (released++, { done: true, value: v as string }),
    };
    const crypto = nodeCrypto();
    const api = new AdminApi({ crypto, clock: nodeClock(), audit: noLog, tokenHash: crypto.sha256(utf8(TOKEN)), onEvent: () => undefined, status: () => ({}), exportJsonl: async () => endless });
    admin = await startAdminServer(api, identity, { port: 0 });
    const { req, res } = await open(admin.port, "/api/v1/audit/export");
    assert.equal(res.statusCode, 200);
    res.pause();
    // Let the socket buffers fill; then production must stand still.
    let before = -1;
    for (let i = 0; i < 40 && before !== made; i++) {
      before = made;
      await sleep(150);
    }
    assert.equal(made, before, "production stops while the client does not read");
    assert.ok(made * 220 < 64 * 1024 * 1024, `bounded by socket buffers: ${made} lines made`);
    assert.equal(released, 0);
    req.destroy();
    for (let i = 0; i < 50 && released === 0; i++) await sleep(50);
    assert.equal(released, 1, "the stream is closed once the client is gone");
    const after = made;
    await sleep(200);
    assert.equal(made, after, "nothing is made after the close");
  });
});
