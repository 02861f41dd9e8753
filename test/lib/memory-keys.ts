/** An in-memory KeyStore for tests, enforcing the port's name and size rules (src/ports.ts). */
import type { KeyStore } from "../../src/ports.js";

export class MemoryKeys implements KeyStore {
  readonly map = new Map<string, Uint8Array>();

  get(name: string): Uint8Array | undefined {
    const v = this.map.get(name);
    return v ? v.slice() : undefined;
  }
  set(name: string, value: Uint8Array): void {
    if (!/^[a-z0-9._-]{1,15}$/.test(name)) throw new RangeError(`bad key name "${name}"`);
    if (value.length > 4000) throw new RangeError("value larger than 4000 bytes");
    this.map.set(name, value.slice());
  }
  delete(name: string): void {
    this.map.get(name)?.fill(0);
    this.map.delete(name);
  }
}
