/** The audit log on the Node board's file-backed flash and key store: contract, unclean stops, power cuts. */
import assert from "node:assert/strict";
import { linkSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { flashContract } from "../contract/flash.contract.js";
import { NorFlash } from "../../src/flash/nor.js";
import { FaultyFlash, isPowerCut } from "../lib/faulty-flash.js";
import { FileStore } from "../../hosts/node/flash-file.js";
import { FileKeyStore } from "../../hosts/node/keys.js";
import { FlashAuditLog } from "../../src/audit/log.js";
import { verifyExport } from "../../src/audit/verify.js";
import { nobleCrypto, seededRandom } from "../lib/noble-crypto.js";
import { FakeClock } from "../lib/fake-clock.js";
import type { Flash, KeyStore } from "../../src/ports.js";

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), "portcullis-audit-"));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const SIZE = 16 * 4096;
const fileFlash = (file: string) => new NorFlash({ size: SIZE, store: new FileStore(file, SIZE) });

flashContract("NorFlash over a file image (audit)", () => fileFlash(path.join(tmp(), "flash.img")));
flashContract("FaultyFlash over a file image", () => new FaultyFlash(fileFlash(path.join(tmp(), "flash.img"))));

function open(flash: Flash, keys: KeyStore, clock: FakeClock, got: { k0?: Uint8Array }) {
  const random = seededRandom("file");
  return FlashAuditLog.open({
    flash, crypto: nobleCrypto(random), random, keys, clock, timers: clock,
    options: { onVerificationKey: (k) => (got.k0 = k) },
  });
}

describe("audit log on the Node board's files", () => {
  it("survives an unclean stop and a power cut on the file image, continuing the sequence", async () => {
    const dir = tmp();
    const file = path.join(dir, "flash.img");
    const keys = new FileKeyStore(path.join(dir, "keys"));
    const clock = new FakeClock();
    const got: { k0?: Uint8Array } = {};
    const first = await open(fileFlash(file), keys, clock, got);
    for (let i = 0; i < 30; i++) await first.append({ kind: "admin", decision: "info", detail: { i } });
    // No close(): the process was killed. Then a power cut in the middle of the next boot's writes.
    const faulty = new FaultyFlash(fileFlash(file), { cutAt: 3, tear: "bits" });
    const second = await open(faulty, keys, clock, got);
    for (let i = 30; i < 40; i++) {
      await second.append({ kind: "admin", decision: "info", detail: { i } }).catch((e: unknown) => assert.ok(isPowerCut(e) || faulty.dead, String(e)));
    }
    const third = await open(fileFlash(file), keys, clock, got);
    const admin = third.query({ kind: "admin" }).map((r) => r.detail!.i);
    assert.deepEqual(admin.slice(0, 30), Array.from({ length: 30 }, (_, i) => i));
    const r = verifyExport(third.exportJsonl(), got.k0!, nobleCrypto(seededRandom("v")));
    assert.ok(r.ok, r.message);
  });

  it("a replaced key's old file content is overwritten (forward security of the sealing key)", () => {
    const dir = path.join(tmp(), "keys");
    const keys = new FileKeyStore(dir);
    keys.set("audit.seal", new Uint8Array(40).fill(0xab));
    // A hard link keeps the old inode reachable, as a forensic look at freed blocks would.
    linkSync(path.join(dir, "audit.seal"), path.join(dir, "old-inode"));
    keys.set("audit.seal", new Uint8Array(40).fill(0xcd));
    assert.ok(readFileSync(path.join(dir, "old-inode")).every((b) => b === 0));
    assert.deepEqual([...keys.get("audit.seal")!], new Array(40).fill(0xcd));
  });
});
