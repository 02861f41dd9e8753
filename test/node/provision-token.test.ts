/**
 * tools/provision.ts writes a generated owner token beside the output the user named (mode 0600),
 * never into the current directory, never over an existing token, and never prints it (issue #13).
 * Spawns the real tool from a temporary working directory.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ownerTokenPath } from "../../tools/provision.js";

const root = process.cwd();
const tool = path.join(root, "tools/provision.ts");
const tsx = path.join(root, "node_modules/.bin/tsx");

describe("tools/provision.ts: where the owner token goes", function () {
  this.timeout(60000);
  let cwd: string;
  let out: string;
  let pass: string;
  beforeEach(() => {
    cwd = mkdtempSync(path.join(tmpdir(), "provision-cwd-"));
    out = mkdtempSync(path.join(tmpdir(), "provision-out-"));
    pass = path.join(out, "wifi.pass");
    writeFileSync(pass, "correct horse battery\n");
  });
  afterEach(() => {
    rmSync(cwd, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  });
  const run = (...args: string[]) =>
    spawnSync(tsx, [tool, "--ssid", "HomeNet", "--password-file", pass, "--config", path.join(root, "examples/home"), ...args], { cwd, encoding: "utf8" });

  it("--nvs-csv: owner.token beside the CSV, mode 0600, nothing in the working directory, not printed", () => {
    const r = run("--nvs-csv", path.join(out, "board.csv"));
    assert.equal(r.status, 0, r.stderr);
    const file = path.join(out, "owner.token");
    const token = readFileSync(file, "utf8").trim();
    assert.match(token, /^pct_[A-Za-z0-9_-]{43}$/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(cwd), [], "nothing is written to the current directory");
    assert.ok(!(r.stdout + r.stderr).includes(token.slice(4, 14)), "the token is not printed");
    assert.match(r.stdout, new RegExp(`owner token written to ${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
  });

  it("refuses to overwrite an existing token and writes no provisioning data then", () => {
    writeFileSync(path.join(out, "owner.token"), "pct_old\n", { mode: 0o600 });
    const r = run("--nvs-csv", path.join(out, "board.csv"));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /owner\.token exists; pass --owner-token-file/);
    assert.equal(readFileSync(path.join(out, "owner.token"), "utf8"), "pct_old\n", "the old token is kept");
    assert.equal(existsSync(path.join(out, "board.csv")), false, "no data for a token nobody holds");
  });

  it("--lin-dir: owner.token in the folder holding the key directory (not among the keys); --owner-token-out wins", () => {
    mkdirSync(path.join(out, "data"));
    const r = run("--lin-dir", path.join(out, "data", "keys"));
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(path.join(out, "data", "owner.token")));
    assert.ok(!readdirSync(path.join(out, "data", "keys")).includes("owner.token"));
    assert.deepEqual(readdirSync(cwd), []);
    assert.equal(ownerTokenPath({ tokenOut: "/x/t", nvsCsv: "/y/b.csv" }), "/x/t");
    assert.throws(() => ownerTokenPath({}), /no output named/);
  });
});
