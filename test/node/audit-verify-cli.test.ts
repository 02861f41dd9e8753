/** `npm run audit:verify`: every byte of an export flipped must fail; the CLI's exit codes and messages. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { main, nodeChainCrypto } from "../../tools/audit-verify.js";
import { verifyExport } from "../../src/audit/verify.js";
import { sampleExport } from "../powerloss/support.js";

describe("audit:verify", function () {
  this.timeout(120_000);
  let dir: string;
  let exportFile: string;
  let keyFile: string;
  let lines: string[];
  let k0: Uint8Array;
  before(async () => {
    const s = await sampleExport(30);
    lines = s.lines;
    k0 = s.dev.verificationKey!;
    dir = mkdtempSync(path.join(tmpdir(), "portcullis-verify-"));
    exportFile = path.join(dir, "export.jsonl");
    keyFile = path.join(dir, "audit-verification.key");
    writeFileSync(exportFile, lines.join("\n") + "\n");
    writeFileSync(keyFile, Buffer.from(k0).toString("hex") + "\n");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("fails for every single flipped byte of the export (journald-style exhaustive tamper test)", () => {
    const bytes = Buffer.from(lines.join("\n"));
    let failures = 0;
    for (let i = 0; i < bytes.length; i++) {
      const b = Buffer.from(bytes);
      b[i] = b[i]! ^ 0x01;
      const r = verifyExport(b.toString("utf8").split("\n"), k0, nodeChainCrypto);
      if (!r.ok) failures++;
      else assert.fail(`flipping byte ${i} (${String.fromCharCode(bytes[i]!)}) still verifies`);
    }
    assert.equal(failures, bytes.length);
  });

  it("exits 0 with a one-line summary when intact, 1 naming the seq when not, 2 on bad arguments", () => {
    const ok = main([exportFile, "--key", keyFile]);
    assert.equal(ok.code, 0);
    assert.match(ok.out, /^audit-verify: intact: seq 1\.\.\d+/);
    assert.equal(ok.out.split("\n").length, 1);
    const bad = lines.slice();
    bad.splice(4, 1);
    const badFile = path.join(dir, "bad.jsonl");
    writeFileSync(badFile, bad.join("\n"));
    const r = main([badFile, "--key", keyFile]);
    assert.equal(r.code, 1);
    assert.match(r.out, /FAILED at seq 4: missing/);
    assert.match(main([exportFile]).out, /missing --key/);
    assert.equal(main([exportFile]).code, 2);
    assert.match(main(["--key", keyFile]).out, /exactly one export file/);
    assert.match(main([exportFile, "--key", exportFile]).out, /not a verification key: expected 64 hex digits/);
    assert.match(main([path.join(dir, "nope.jsonl"), "--key", keyFile]).out, /cannot read export/);
    assert.match(main([exportFile, "--kee", keyFile]).out, /unknown option --kee/);
  });

  it("runs as `npm run audit:verify` does (tsx tools/audit-verify.ts)", () => {
    const out = execFileSync(process.execPath, ["--import", "tsx", "tools/audit-verify.ts", exportFile, "--key", keyFile], { encoding: "utf8" });
    assert.match(out, /^audit-verify: intact/);
  });
});
