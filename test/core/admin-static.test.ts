/** The dashboard's static serving, transport-free: the page and hashed assets from the host's table, with CSP, nosniff and caching; API paths left to the API. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { DASHBOARD_CSP, IMMUTABLE, serveStatic, staticTable } from "../../src/admin/static.js";

const FILES: Record<string, string> = {
  "index.html": "<!doctype html><script src=\"/assets/app.0123456789.js\"></script>",
  "assets/app.0123456789.js": "console.log(1)",
};
const LIST = [
  { path: "/", file: "index.html", contentType: "text/html; charset=utf-8", immutable: false },
  { path: "/assets/app.0123456789.js", file: "assets/app.0123456789.js", contentType: "text/javascript; charset=utf-8", immutable: true },
];

describe("admin static files", () => {
  const table = staticTable(LIST, (f) => FILES[f]);

  it("serves the page at / and /index.html, revalidated, with the CSP and nosniff", () => {
    for (const target of ["/", "/index.html", "/?from=bookmark"]) {
      const r = serveStatic(table, "GET", target)!;
      assert.equal(r.status, 200);
      assert.equal(r.contentType, "text/html; charset=utf-8");
      assert.deepEqual(r.body, [FILES["index.html"]]);
      assert.equal(r.headers!["cache-control"], "no-cache");
      assert.equal(r.headers!["content-security-policy"], DASHBOARD_CSP);
      assert.equal(r.headers!["x-content-type-options"], "nosniff");
    }
    assert.match(DASHBOARD_CSP, /^default-src 'self'; script-src 'self';/);
    assert.match(DASHBOARD_CSP, /frame-ancestors 'none'/);
    assert.doesNotMatch(DASHBOARD_CSP, /unsafe-inline|unsafe-eval|https?:|\*/);
  });

  it("serves a hashed asset as immutable; HEAD has no body", () => {
    const r = serveStatic(table, "GET", "/assets/app.0123456789.js")!;
    assert.equal(r.status, 200);
    assert.equal(r.headers!["cache-control"], IMMUTABLE);
    assert.deepEqual(serveStatic(table, "HEAD", "/assets/app.0123456789.js")!.body, []);
  });

  it("leaves /api/ to the API, refuses other methods, and answers 404 for unknown files", () => {
    assert.equal(serveStatic(table, "GET", "/api/v1/status"), undefined);
    assert.equal(serveStatic(table, "POST", "/api/v1/audit/seal"), undefined);
    assert.equal(serveStatic(table, "GET", "/api"), undefined);
    const post = serveStatic(table, "POST", "/")!;
    assert.equal(post.status, 405);
    assert.equal(post.headers!.allow, "GET, HEAD");
    for (const t of ["/assets/app.js", "/assets/../index.html", "/favicon.ico", "/assets/app.0123456789.js/"]) {
      const r = serveStatic(table, "GET", t)!;
      assert.equal(r.status, 404, t);
      assert.equal(r.headers!["content-security-policy"], DASHBOARD_CSP);
    }
    assert.equal(serveStatic(undefined, "GET", "/")!.status, 503);
    assert.equal(serveStatic(undefined, "GET", "/assets/x.js")!.status, 404);
  });

  it("answers any non-API target with a status and the security headers, never throwing", () => {
    fc.assert(fc.property(fc.constantFrom("GET", "HEAD", "POST", "PUT", "DELETE", "X"), fc.string(), (method, rest) => {
      const target = "/" + rest;
      const r = serveStatic(table, method, target);
      if (target === "/api" || target.startsWith("/api/") || target.startsWith("/api?")) return;
      if (r === undefined) throw new Error(`no answer for ${target}`);
      assert.ok([200, 404, 405].includes(r.status));
      assert.equal(r.headers!["x-content-type-options"], "nosniff");
    }));
  });

  it("rejects a malformed asset list, a missing file and a list without a page", () => {
    assert.throws(() => staticTable({}, () => ""), /must be a list/);
    assert.throws(() => staticTable([{ path: "x", file: "a", contentType: "t", immutable: true }], () => ""), /bad entry/);
    assert.throws(() => staticTable(LIST, () => undefined), /index\.html is missing/);
    assert.throws(() => staticTable([LIST[1]], (f) => FILES[f]), /no page at \//);
  });
});
