/** The Node board's file-backed ports under the same contract suites as every other implementation. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { keyStoreContract } from "../contract/keystore.contract.js";
import { NorFlash } from "../../src/flash/nor.js";
import { FileStore } from "../../hosts/node/flash-file.js";
import { FileKeyStore } from "../../hosts/node/keys.js";

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), "portcullis-board-"));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// The flash contract over the file image runs in audit-flash-file.test.ts.
keyStoreContract("FileKeyStore", () => new FileKeyStore(path.join(tmp(), "keys")));

describe("Node board files", () => {
  it("a flash image keeps its bytes across reopen, and a size mismatch is refused", () => {
    const file = path.join(tmp(), "flash.img");
    const a = new NorFlash({ size: 16384, store: new FileStore(file, 16384) });
    a.erase(1);
    a.program(4096, new Uint8Array([1, 2, 3, 4]));
    const b = new NorFlash({ size: 16384, store: new FileStore(file, 16384) });
    assert.deepEqual([...b.read(4096, 4)], [1, 2, 3, 4]);
    assert.ok(b.read(0, 4096).every((x) => x === 0xff));
    assert.throws(() => new FileStore(file, 32768), /expected 32768/);
  });

  it("key files are private (0600) and a deleted key's file is gone", () => {
    const dir = path.join(tmp(), "keys");
    const k = new FileKeyStore(dir);
    k.set("secret", new Uint8Array([7, 7]));
    assert.equal(statSync(path.join(dir, "secret")).mode & 0o777, 0o600);
    k.delete("secret");
    assert.throws(() => statSync(path.join(dir, "secret")));
  });

  it("a key written by another process is read back as written", () => {
    const dir = path.join(tmp(), "keys");
    const k = new FileKeyStore(dir);
    writeFileSync(path.join(dir, "raw"), Buffer.from([1, 2]));
    assert.deepEqual([...(k.get("raw") ?? [])], [1, 2]);
  });
});
