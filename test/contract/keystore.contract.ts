/** The KeyStore port contract (src/ports.ts), run against every implementation. */
import assert from "node:assert/strict";
import type { KeyStore } from "../../src/ports.js";

export function keyStoreContract(name: string, make: () => KeyStore): void {
  describe(`KeyStore contract: ${name}`, () => {
    it("stores, returns and deletes values", () => {
      const k = make();
      assert.equal(k.get("absent"), undefined);
      k.set("a.b-c_1", new Uint8Array([1, 2, 3]));
      assert.deepEqual([...(k.get("a.b-c_1") ?? [])], [1, 2, 3]);
      k.set("a.b-c_1", new Uint8Array([9]));
      assert.deepEqual([...(k.get("a.b-c_1") ?? [])], [9]);
      k.delete("a.b-c_1");
      assert.equal(k.get("a.b-c_1"), undefined);
      k.delete("a.b-c_1");
    });
    it("keeps empty values apart from absent ones", () => {
      const k = make();
      k.set("empty", new Uint8Array(0));
      assert.deepEqual(k.get("empty"), new Uint8Array(0));
    });
    it("refuses bad names and oversized values (NVS limits: 15 characters, 4000 bytes)", () => {
      const k = make();
      assert.throws(() => k.set("sixteen-chars-xx", new Uint8Array(1)), RangeError);
      assert.throws(() => k.set("", new Uint8Array(1)), RangeError);
      assert.throws(() => k.set("Upper", new Uint8Array(1)), RangeError);
      assert.throws(() => k.set("a/b", new Uint8Array(1)), RangeError);
      assert.throws(() => k.set("big", new Uint8Array(4001)), RangeError);
      k.set("max", new Uint8Array(4000));
      assert.equal(k.get("max")?.length, 4000);
    });
    it("returns copies: changing a returned value does not change the store", () => {
      const k = make();
      k.set("copy", new Uint8Array([5]));
      const v = k.get("copy")!;
      v[0] = 6;
      assert.deepEqual([...(k.get("copy") ?? [])], [5]);
    });
  });
}
