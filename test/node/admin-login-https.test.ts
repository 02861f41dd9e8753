/**
 * First boot to logout over real TLS on the Node board: the setup code on the console, setup, login
 * with password + TOTP (real node:crypto, real clock), the session cookie's attributes, CSRF on a
 * change made with the cookie, the bearer form, logout, and the console's `unlock`.
 */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { bootNodeBoard, type RunningBoard } from "../../hosts/node/board.js";
import { nodeCrypto } from "../../hosts/node/crypto.js";
import { base32Decode, totpAt } from "../../src/admin/totp.js";

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(port: number, method: string, target: string, headers: Record<string, string> = {}, body?: unknown): Promise<Res> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      { host: "127.0.0.1", port, method, path: target, rejectUnauthorized: false, agent: false, headers: { ...headers, ...(data ? { "content-type": "application/json", "content-length": String(Buffer.byteLength(data)) } : {}) } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

describe("admin login over HTTPS (Node board)", function () {
  this.timeout(60_000);
  let dir: string;
  let board: RunningBoard;
  let out = "";
  const input = new PassThrough();
  const PASSWORD = "a long owner password";

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "pc-login-"));
    cpSync("examples/home", path.join(dir, "home"), { recursive: true });
    const output = new PassThrough();
    output.on("data", (c: Buffer) => (out += c.toString("utf8")));
    board = await bootNodeBoard({ configDir: path.join(dir, "home"), dataDir: path.join(dir, "data"), mqttPort: 0, httpsPort: 0, demo: false, consoleInput: input, consoleOutput: output });
  });
  after(async () => {
    await board?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("setup with the console's code, login with TOTP, cookie + CSRF, bearer, logout, console unlock", async () => {
    const code = /Setup code ([A-Z2-7]{4}(?:-[A-Z2-7]{4}){3})/.exec(out)?.[1];
    assert.ok(code, `the console shows a setup code:\n${out}`);
    const port = board.httpsPort;
    assert.equal((await call(port, "POST", "/api/v1/setup", {}, { code: "AAAA-AAAA-AAAA-AAAA", account: "owner1", password: PASSWORD })).status, 401);
    const setup = await call(port, "POST", "/api/v1/setup", {}, { code, account: "owner1", password: PASSWORD });
    assert.equal(setup.status, 201, setup.body);
    const { totp, recoveryCodes } = JSON.parse(setup.body) as { totp: { secret: string; uri: string }; recoveryCodes: string[] };
    assert.equal(recoveryCodes.length, 10);
    assert.equal((await call(port, "POST", "/api/v1/setup", {}, { code, account: "owner2", password: PASSWORD })).status, 409);

    const crypto = nodeCrypto();
    const login = await call(port, "POST", "/api/v1/login", {}, { account: "owner1", password: PASSWORD, totp: totpAt(crypto, base32Decode(totp.secret), Date.now()) });
    assert.equal(login.status, 200, login.body);
    const setCookie = ([] as string[]).concat(login.headers["set-cookie"] ?? []);
    assert.equal(setCookie.length, 1);
    for (const attr of ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"]) assert.ok(setCookie[0]!.includes(attr), `cookie has ${attr}: ${setCookie[0]}`);
    const cookie = setCookie[0]!.split(";")[0]!;
    const { csrf } = JSON.parse(login.body) as { csrf: string };

    assert.equal((await call(port, "GET", "/api/v1/me", { cookie })).status, 200);
    assert.equal((await call(port, "GET", "/api/v1/status", { cookie })).status, 200);
    const add = { name: "aud", role: "auditor", password: PASSWORD };
    assert.equal((await call(port, "POST", "/api/v1/accounts", { cookie }, add)).status, 403, "no CSRF header");
    assert.equal((await call(port, "POST", "/api/v1/accounts", { cookie, "x-csrf-token": csrf }, add)).status, 201);

    // The auditor (no TOTP) logs in with the bearer form; its role is enforced over the wire.
    const aud = await call(port, "POST", "/api/v1/login", {}, { account: "aud", password: PASSWORD, bearer: true });
    assert.equal(aud.status, 200, aud.body);
    const bearer = { authorization: `Bearer ${(JSON.parse(aud.body) as { token: string }).token}` };
    assert.equal((await call(port, "GET", "/api/v1/audit?limit=1", bearer)).status, 200);
    assert.equal((await call(port, "GET", "/api/v1/accounts", bearer)).status, 403);

    assert.equal((await call(port, "POST", "/api/v1/logout", { cookie, "x-csrf-token": csrf })).status, 200);
    assert.equal((await call(port, "GET", "/api/v1/me", { cookie })).status, 401);

    // Records: who, from where, never a secret.
    const recs = board.gateway.audit.log.query({ kind: "admin", limit: 1000 }).map((r) => JSON.stringify(r));
    assert.ok(recs.some((r) => r.includes('"reason":"login"') && r.includes('"who":"owner1"') && r.includes('"remote":"127.0.0.1"')));
    assert.ok(recs.some((r) => r.includes('"reason":"forbidden"') && r.includes('"who":"aud"')));
    for (const secret of [PASSWORD, totp.secret, csrf, ...recoveryCodes]) assert.ok(!recs.some((r) => r.includes(secret)), "no secret in the log");
    assert.ok(!out.includes(PASSWORD) && !out.includes(totp.secret), "no secret on the console");

    // The console's unlock.
    input.write("unlock aud\n");
    await new Promise((r) => setTimeout(r, 200));
    assert.match(out, /aud unlocked/);
  });
});
