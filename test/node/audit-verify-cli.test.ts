/**
 * `npm run audit:verify`: every byte of an export flipped must fail; the CLI's exit codes and
 * messages; `--checkpoint` and `--fresh-within` pass and fail; bad arguments say what to fix (exit 2).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { main, nodeChainCrypto } from "../../tools/audit-verify.js";
import { verifyExport } from "../../src/audit/verify.js";
import { ramFlash } from "../../src/flash/nor.js";
import { newDevice, openLog, sampleExport } from "../powerloss/support.js";

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

  it("exits 0 saying what it vouches for when intact, 1 naming the seq when not, 2 on bad arguments", () => {
    const ok = main([exportFile, "--key", keyFile]);
    assert.equal(ok.code, 0);
    assert.match(ok.out, /^audit-verify: intact: seq 1\.\.\d+, \d+ records, \d+ seals, epochs 0\.\.\d+/);
    const said = ok.out.split("\n");
    assert.equal(said.length, 3, ok.out);
    assert.match(said[1]!, /^ {2}head: the log's first record \(seq 1\)$/);
    assert.match(said[2]!, /^ {2}tail: the device's newest seal at export time \(seq \d+, closing epoch \d+\), sealed at 2026-/);
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

  it("--checkpoint: passes for the current export, fails for an older one replayed; --fresh-within passes and fails", async () => {
    const dev = newDevice();
    const log = await openLog(ramFlash(32 * 4096), dev, { sealEveryRecords: 10 });
    const add = async (n: number) => {
      for (let i = 0; i < n; i++) (await log.append({ kind: "admin", decision: "info", detail: { i } }), dev.clock.tick(1000));
    };
    await add(15);
    const older = path.join(dir, "older.jsonl");
    writeFileSync(older, log.exportJsonl().join("\n") + "\n");
    await add(12);
    const cpFile = path.join(dir, "checkpoint.json");
    writeFileSync(cpFile, JSON.stringify(log.checkpoint()));
    const current = path.join(dir, "current.jsonl");
    writeFileSync(current, log.exportJsonl().join("\n") + "\n");
    const key = path.join(dir, "k2.key");
    writeFileSync(key, Buffer.from(dev.verificationKey!).toString("hex"));
    const sealedAt = dev.clock.now();

    const replay = main([older, "--key", key, "--checkpoint", cpFile]);
    assert.equal(replay.code, 1, replay.out);
    assert.match(replay.out, /^audit-verify: FAILED at seq \d+: the export ends at seq \d+, before the checkpoint's seq \d+ saved earlier: an older export replayed, or its tail cut$/);
    const good = main([current, "--key", key, `--checkpoint=${cpFile}`, "--fresh-within", "15m"], sealedAt + 60_000);
    assert.equal(good.code, 0, good.out);
    assert.match(good.out, /\n {2}checkpoint: seq \d+ \(epoch \d+\) matches the export's chain\n {2}fresh: the newest seal is 1\.0 min old/);
    const stale = main([current, "--key", key, "--fresh-within", "1h"], sealedAt + 2 * 3_600_000);
    assert.equal(stale.code, 1);
    assert.match(stale.out, /FAILED: the newest seal \(seq \d+, .*\) is 2\.0 h old, more than the 1\.0 h allowed/);
    // Another device's checkpoint: its MAC does not verify under this key.
    writeFileSync(path.join(dir, "foreign.json"), JSON.stringify({ ...log.checkpoint(), mac: "00".repeat(32) }));
    assert.match(main([current, "--key", key, "--checkpoint", path.join(dir, "foreign.json")]).out, /checkpoint's MAC does not verify/);
  });

  it("bad arguments exit 2 saying what was wrong and how to fix it", () => {
    const cases: [string[], RegExp][] = [
      [[exportFile, "--key", keyFile, "--fresh-within", "10"], /--fresh-within needs a duration such as 30m, 2h or 1d \(got "10"\)/],
      [[exportFile, "--key", keyFile, "--fresh-within"], /--fresh-within needs a value/],
      [[exportFile, "--key", keyFile, "--checkpoint", "--fresh-within", "1h"], /--checkpoint needs a value/],
      [[exportFile, "--key", keyFile, "--checkpoint", path.join(dir, "none.json")], /cannot use checkpoint: .*ENOENT.*save the body of GET \/api\/v1\/audit\/checkpoint/],
      [[exportFile, "--key", keyFile, "--checkpoint", keyFile], /cannot use checkpoint: .*JSON/],
      [[exportFile, "--key", keyFile, "--checkpoint", exportFile], /cannot use checkpoint/],
    ];
    writeFileSync(path.join(dir, "not-cp.json"), JSON.stringify({ format: "portcullis-audit-checkpoint", seq: -1 }));
    cases.push([[exportFile, "--key", keyFile, "--checkpoint", path.join(dir, "not-cp.json")], /not-cp\.json is not a checkpoint: seq must be a sequence number/]);
    for (const [args, want] of cases) {
      const r = main(args);
      assert.equal(r.code, 2, `${args.join(" ")} → ${r.out}`);
      assert.match(r.out, want);
      if (!/cannot use/.test(r.out)) assert.match(r.out, /\nusage: npm run audit:verify/);
    }
    assert.equal(main(["--help"]).code, 0);
  });

  it("runs as `npm run audit:verify` does (tsx tools/audit-verify.ts)", () => {
    const out = execFileSync(process.execPath, ["--import", "tsx", "tools/audit-verify.ts", exportFile, "--key", keyFile], { encoding: "utf8" });
    assert.match(out, /^audit-verify: intact/);
  });
});
