/**
 * "Done when": `npm run audit:verify` checks an export pulled over HTTPS from the Node board, with the
 * verification key the board wrote at first boot — before and after a restart — and names the seq of
 * a tampered line; and a checkpoint pulled over HTTPS makes an older export, replayed after it, fail.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import mqtt from "mqtt";
import { bootNodeBoard } from "../../hosts/node/board.js";
import { main } from "../../tools/audit-verify.js";

function get(port: number, target: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: target, rejectUnauthorized: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("audit export over HTTPS, verified offline", function () {
  this.timeout(60000);
  let data: string;
  const boot = () =>
    bootNodeBoard({
      configDir: path.resolve("examples/home"), dataDir: data, mqttPort: 0, httpsPort: 0, demo: false, host: "127.0.0.1",
      consoleInput: new PassThrough(), consoleOutput: new PassThrough(),
    });
  before(() => (data = mkdtempSync(path.join(tmpdir(), "portcullis-audit-https-"))));
  after(() => rmSync(data, { recursive: true, force: true }));

  it("verifies the pulled export, across a restart, and names a tampered line's seq", async () => {
    const keyFile = path.join(data, "audit-verification.key");
    const exportFile = path.join(data, "export.jsonl");
    let board = await boot();
    const token = readFileSync(path.join(data, "owner.token"), "utf8").trim();
    // Some traffic: a refused MQTT login is an audit record.
    await new Promise<void>((resolve) => {
      const c = mqtt.connect({ host: "127.0.0.1", port: board.mqttPort, clientId: "intruder", username: "intruder", password: "x", reconnectPeriod: 0 });
      c.once("error", () => (c.end(true), resolve()));
      c.once("connect", () => (c.end(true), resolve()));
    });
    let res = await get(board.httpsPort, "/api/v1/audit/export", token);
    assert.equal(res.status, 200);
    writeFileSync(exportFile, res.body);
    let r = main([exportFile, "--key", keyFile]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^audit-verify: intact: seq 1\.\./);
    await board.stop();

    board = await boot();
    res = await get(board.httpsPort, "/api/v1/audit/export", token);
    await board.stop();
    writeFileSync(exportFile, res.body);
    r = main([exportFile, "--key", keyFile]);
    assert.equal(r.code, 0, r.out);
    const lines = res.body.split("\n");
    const i = lines.findIndex((l) => l.includes('"kind":"auth"'));
    assert.ok(i > 0, "the refused login is in the export");
    lines[i] = lines[i]!.replace('"decision":"deny"', '"decision":"allow"');
    const honest = res.body;
    writeFileSync(exportFile, lines.join("\n"));
    r = main([exportFile, "--key", keyFile]);
    assert.equal(r.code, 1);
    assert.match(r.out, new RegExp(`FAILED at seq ${(JSON.parse(res.body.split("\n")[i]!) as { seq: number }).seq}:`));

    // The auditor saves a checkpoint; an export pulled before it, replayed later, then fails.
    board = await boot();
    assert.equal((await get(board.httpsPort, "/api/v1/audit/checkpoint", "pct_wrong")).status, 401);
    const cp = await get(board.httpsPort, "/api/v1/audit/checkpoint", token);
    assert.equal(cp.status, 200, cp.body);
    const saved = JSON.parse(cp.body) as { seq: number; epoch: number; mac: string; chain: string; time: number; timeSet: boolean };
    assert.match(saved.mac, /^[0-9a-f]{64}$/);
    const cpFile = path.join(data, "checkpoint.json");
    writeFileSync(cpFile, cp.body);
    res = await get(board.httpsPort, "/api/v1/audit/export", token);
    await board.stop();
    const current = path.join(data, "current.jsonl");
    writeFileSync(current, res.body);
    r = main([current, "--key", keyFile, "--checkpoint", cpFile, "--fresh-within", "10m"]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`checkpoint: seq ${saved.seq} \\(epoch ${saved.epoch}\\) matches`));
    writeFileSync(exportFile, honest);
    r = main([exportFile, "--key", keyFile, "--checkpoint", cpFile]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /before the checkpoint's seq \d+ saved earlier: an older export replayed/);
  });
});
