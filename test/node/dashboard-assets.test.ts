/**
 * The dashboard's built assets: under the 50 KB gzipped budget (computed from what
 * tools/build-web.ts writes), reproducible content-hashed names, nothing from another origin and no
 * inline script; and the Node board serving them over HTTPS with the CSP, nosniff and caching, while
 * the API keeps `no-store`.
 */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { gzipSync } from "node:zlib";
import { bootNodeBoard, type RunningBoard } from "../../hosts/node/board.js";
import { WEB_BUDGET_GZIP_BYTES, buildWeb, type BuiltAsset } from "../../tools/build-web.js";

function fetchRaw(port: number, method: string, target: string, token?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path: target, rejectUnauthorized: false, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("dashboard assets", function () {
  this.timeout(60000);
  let dir: string;
  let built: BuiltAsset[];
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "portcullis-web-"));
    built = await buildWeb(path.join(dir, "web"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(`stays within ${WEB_BUDGET_GZIP_BYTES} bytes gzipped, all assets together`, () => {
    let total = 0;
    for (const b of built) {
      const bytes = readFileSync(path.join(dir, "web", b.file));
      assert.equal(bytes.length, b.bytes);
      total += gzipSync(bytes, { level: 9 }).length;
    }
    console.log(`      dashboard: ${built.length} files, ${built.reduce((n, b) => n + b.bytes, 0)} B, ${total} B gzipped (budget ${WEB_BUDGET_GZIP_BYTES} B)`);
    assert.ok(total <= WEB_BUDGET_GZIP_BYTES, `${total} B gzipped is over the ${WEB_BUDGET_GZIP_BYTES} B budget`);
  });

  it("builds reproducibly: the same sources give the same hashed names and bytes", async () => {
    const again = await buildWeb(path.join(dir, "again"));
    assert.deepEqual(again.map((b) => [b.file, b.bytes]), built.map((b) => [b.file, b.bytes]));
    for (const b of built) assert.equal(readFileSync(path.join(dir, "again", b.file), "utf8"), readFileSync(path.join(dir, "web", b.file), "utf8"));
    for (const b of built.filter((x) => x.immutable)) assert.match(b.file, /^assets\/app\.[0-9a-f]{10}\.(js|css)$/);
  });

  it("has no inline script or style, no event-handler attributes and nothing from another origin", () => {
    const html = readFileSync(path.join(dir, "web", "index.html"), "utf8");
    for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)) {
      assert.match(m[1]!, /\bsrc="\/assets\/app\.[0-9a-f]{10}\.js"/);
      assert.equal(m[2], "", "a script element has inline code");
    }
    assert.doesNotMatch(html, /<style|\son[a-z]+=|style="/i);
    for (const b of built) {
      // The SVG namespace name (the QR code's elements) is an identifier that is never fetched.
      const text = readFileSync(path.join(dir, "web", b.file), "utf8").replaceAll("http://www.w3.org/2000/svg", "");
      assert.doesNotMatch(text, /(https?:)?\/\/[a-z0-9-]+\.[a-z]/i, `${b.file} names another origin`);
      assert.doesNotMatch(text, /@import|@font-face|\beval\(|new Function\(|innerHTML/, `${b.file}`);
    }
  });

  describe("served by the Node board", () => {
    let board: RunningBoard;
    let data: string;
    before(async () => {
      data = path.join(dir, "board");
      board = await bootNodeBoard({
        configDir: path.resolve("examples/home"), dataDir: data, mqttPort: 0, httpsPort: 0, demo: false, host: "127.0.0.1",
        consoleInput: new PassThrough(), consoleOutput: new PassThrough(), webDir: path.join(dir, "web"),
      });
    });
    after(async () => board?.stop());

    it("serves / and each asset with the CSP, nosniff and the right caching; the API stays no-store", async () => {
      for (const b of built) {
        const r = await fetchRaw(board.httpsPort, "GET", b.path);
        assert.equal(r.status, 200, b.path);
        assert.equal(r.headers["content-type"], b.contentType);
        assert.equal(r.body, readFileSync(path.join(dir, "web", b.file), "utf8"));
        assert.match(String(r.headers["content-security-policy"]), /^default-src 'self'; script-src 'self';.*frame-ancestors 'none'$/);
        assert.equal(r.headers["x-content-type-options"], "nosniff");
        assert.equal(r.headers["cache-control"], b.immutable ? "public, max-age=31536000, immutable" : "no-cache");
      }
      const token = readFileSync(path.join(data, "owner.token"), "utf8").trim();
      const api = await fetchRaw(board.httpsPort, "GET", "/api/v1/status", token);
      assert.equal(api.status, 200);
      assert.equal(api.headers["cache-control"], "no-store");
      assert.equal((await fetchRaw(board.httpsPort, "GET", "/api/v1/status")).status, 401, "the API still needs its credential");
      assert.equal((await fetchRaw(board.httpsPort, "GET", "/assets/app.0000000000.js")).status, 404);
      assert.equal((await fetchRaw(board.httpsPort, "POST", "/")).status, 405);
    });

    it("says the dashboard is not built when the board has no build", async () => {
      const bare = await bootNodeBoard({
        configDir: path.resolve("examples/home"), dataDir: path.join(dir, "bare"), mqttPort: 0, httpsPort: 0, demo: false, host: "127.0.0.1",
        consoleInput: new PassThrough(), consoleOutput: new PassThrough(), webDir: path.join(dir, "nothing-here"),
      });
      try {
        const r = await fetchRaw(bare.httpsPort, "GET", "/");
        assert.equal(r.status, 503);
        assert.match(r.body, /npm run build:web/);
      } finally {
        await bare.stop();
      }
    });

    it("boots with a broken build, says so on the console, and answers / with 503", async () => {
      const broken = path.join(dir, "broken");
      cpSync(path.join(dir, "web"), broken, { recursive: true });
      rmSync(path.join(broken, built[1]!.file));
      const out = new PassThrough();
      let said = "";
      out.on("data", (c: Buffer) => (said += c.toString()));
      const b = await bootNodeBoard({
        configDir: path.resolve("examples/home"), dataDir: path.join(dir, "broken-board"), mqttPort: 0, httpsPort: 0, demo: false, host: "127.0.0.1",
        consoleInput: new PassThrough(), consoleOutput: out, webDir: broken,
      });
      try {
        assert.match(said, /dashboard not served: assets\.json: assets\/app\.[0-9a-f]{10}\.js is missing/);
        assert.equal((await fetchRaw(b.httpsPort, "GET", "/")).status, 503);
      } finally {
        await b.stop();
      }
    });
  });
});
