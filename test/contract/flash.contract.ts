/**
 * The Flash port contract (see `src/ports.ts`), as an abstract suite in the manner of
 * aedes-persistence's `abstract.js`: every implementation — RAM, file, fault-injecting, Moddable — runs it.
 */
import assert from "node:assert/strict";
import type { Flash } from "../../src/ports.js";

export function flashContract(name: string, make: () => Flash): void {
  describe(`Flash contract: ${name}`, () => {
    it("has a whole number of 4096-byte sectors and reads erased as 0xFF", () => {
      const f = make();
      assert.equal(f.sectorSize, 4096);
      assert.equal(f.size % f.sectorSize, 0);
      assert.ok(f.size >= 2 * f.sectorSize);
      f.erase(0);
      assert.ok(f.read(0, 4096).every((b) => b === 0xff));
    });

    it("programs only clear bits, and programming again with the same or fewer bits is allowed", () => {
      const f = make();
      f.erase(1);
      const base = f.sectorSize;
      f.program(base, new Uint8Array([0xf0, 0x0f, 0xaa, 0x55]));
      assert.deepEqual([...f.read(base, 4)], [0xf0, 0x0f, 0xaa, 0x55]);
      f.program(base, new Uint8Array([0xf0, 0x0f, 0xaa, 0x55]));
      f.program(base, new Uint8Array([0x00, 0x0f, 0x0a, 0x05]));
      assert.deepEqual([...f.read(base, 4)], [0x00, 0x0f, 0x0a, 0x05]);
    });

    it("refuses to set a bit without an erase, and leaves the content untouched", () => {
      const f = make();
      f.erase(0);
      f.program(0, new Uint8Array([0x0f, 0xff, 0xff, 0xff]));
      assert.throws(() => f.program(0, new Uint8Array([0xf0, 0x00, 0x00, 0x00])), /erase first/);
      assert.deepEqual([...f.read(0, 4)], [0x0f, 0xff, 0xff, 0xff]);
    });

    it("erase restores a sector to 0xFF and touches no other sector", () => {
      const f = make();
      f.erase(0);
      f.erase(1);
      f.program(0, new Uint8Array(4));
      f.program(f.sectorSize, new Uint8Array(4));
      f.erase(0);
      assert.ok(f.read(0, 4).every((b) => b === 0xff));
      assert.deepEqual([...f.read(f.sectorSize, 4)], [0, 0, 0, 0]);
    });

    it("rejects misaligned programs and out-of-range access", () => {
      const f = make();
      f.erase(0);
      if (f.programSize > 1) assert.throws(() => f.program(1, new Uint8Array(f.programSize)));
      assert.throws(() => f.read(f.size - 2, 4));
      assert.throws(() => f.program(f.size, new Uint8Array(4)));
      assert.throws(() => f.erase(f.size / f.sectorSize));
      assert.throws(() => f.erase(-1));
    });

    it("reads return copies the caller may modify", () => {
      const f = make();
      f.erase(0);
      const a = f.read(0, 8);
      a[0] = 0;
      assert.equal(f.read(0, 1)[0], 0xff);
    });

    it("durable(), where present, resolves after programs and erases and leaves the content as it was", async () => {
      const f = make();
      if (!f.durable) return;
      f.erase(0);
      f.program(0, new Uint8Array([1, 2, 3, 4]));
      await Promise.all([f.durable(), f.durable()]);
      await f.durable();
      assert.deepEqual([...f.read(0, 4)], [1, 2, 3, 4]);
      assert.equal(f.read(4, 1)[0], 0xff);
    });
  });
}
