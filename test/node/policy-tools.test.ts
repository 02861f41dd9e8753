/** contract:check and mud2contract as the owner runs them: real processes, real files. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const tsx = path.join(root, "node_modules/.bin/tsx");
function run(tool: string, ...args: string[]) {
  const r = spawnSync(tsx, [path.join(root, "tools", tool), ...args], { cwd: root, encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe("policy tools", function () {
  this.timeout(60000);
  let dir = "";
  before(() => (dir = mkdtempSync(path.join(tmpdir(), "portcullis-policy-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("contract:check passes the example home and the valid fixtures", () => {
    const r = run("contract-check.ts", "examples/home/contracts", "test/fixtures/contracts/valid");
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /^4 contract\(s\) valid$/m);
  });

  it("contract:check prints file: /path: message per error and exits non-zero", () => {
    const r = run("contract-check.ts", "test/fixtures/contracts/invalid/unknown-class.json", "test/fixtures/contracts/invalid/key-with-none.json");
    assert.equal(r.code, 1);
    assert.deepEqual(r.out.trim().split("\n"), [
      'test/fixtures/contracts/invalid/unknown-class.json: /flows/0/fields/2/class: unknown data class "locaton"',
      'test/fixtures/contracts/invalid/key-with-none.json: /destinations/0/publicKey: not allowed when encryption is "none"',
      'test/fixtures/contracts/invalid/key-with-none.json: /destinations/0/keyId: not allowed when encryption is "none"',
      "2 of 2 contract(s) invalid",
    ]);
  });

  it("contract:check explains bad arguments", () => {
    assert.equal(run("contract-check.ts").code, 2);
    const r = run("contract-check.ts", "no/such/file.json");
    assert.equal(r.code, 2);
    assert.match(r.err, /no\/such\/file\.json: cannot read \(ENOENT\)/);
    assert.match(r.err, /usage:/);
  });

  it("mud2contract drafts a contract that fails only on the TODO parts it lists, and passes once filled", () => {
    const r = run("mud2contract.ts", "examples/mud/thermostat.mud.json");
    assert.equal(r.code, 0, r.err);
    const draft = JSON.parse(r.out);
    assert.equal(draft.destinations[0].host, "mqtt.thermocloud.example");
    assert.equal(draft.destinations[0].port, 8883);
    assert.equal(draft.destinations.length, 1, "the :443 HTTPS ACE is not converted");
    assert.match(r.err, /firmware\.thermocloud\.example:443/);
    const listed = [...r.err.matchAll(/^ {2}TODO (\S+):/gm)].map((m) => m[1]).sort();
    const draftFile = path.join(dir, "draft.json");
    writeFileSync(draftFile, r.out);
    const check = run("contract-check.ts", draftFile);
    assert.equal(check.code, 1);
    const failing = [...check.out.matchAll(/^.*?draft\.json: (\S+): /gm)].map((m) => m[1]).sort();
    assert.deepEqual(failing, listed, "contract:check fails exactly on the parts mud2contract listed");
    for (const p of ["/purpose", "/flows/0/fields/0/class", "/terms/retentionDays", "/destinations/0/publicKey"]) assert.ok(listed.includes(p), p);

    // The owner fills in what MUD cannot say.
    draft.purpose = "Remote thermostat app: temperature and set point.";
    draft.destinations[0].encryption = "none";
    delete draft.destinations[0].publicKey;
    delete draft.destinations[0].keyId;
    Object.assign(draft.flows[0], { devices: ["thermostat-hall"], topics: ["home/thermostat-hall/telemetry"], fields: [{ path: "/temperature_c", class: "environment" }] });
    draft.terms.consent = { environment: false };
    Object.assign(draft.terms, { retentionDays: 90, sla: { uptimePercent: 99.9, maxLatencyMs: 2000 }, exit: { exportFormat: "json", deletionDays: 14 } });
    const filled = path.join(dir, "filled.json");
    writeFileSync(filled, JSON.stringify(draft, null, 2));
    const ok = run("contract-check.ts", filled);
    assert.equal(ok.code, 0, ok.out);
  });

  it("mud2contract explains bad arguments and input", () => {
    const none = run("mud2contract.ts");
    assert.equal(none.code, 2);
    assert.match(none.err, /usage: npm run mud2contract -- <mud\.json>/);
    const notMud = path.join(dir, "x.json");
    writeFileSync(notMud, '{"hello":1}');
    const r = run("mud2contract.ts", notMud);
    assert.equal(r.code, 2);
    assert.match(r.err, /not a MUD file: no "ietf-mud:mud" object/);
    assert.equal(r.out, "");
    const broken = path.join(dir, "y.json");
    writeFileSync(broken, "{");
    assert.match(run("mud2contract.ts", broken).err, /not valid JSON/);
  });
});
