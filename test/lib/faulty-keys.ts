/**
 * Fault injection for a {@link KeyStore}, the partner of FaultyFlash: cut the power at the N-th set or
 * delete. NVS-like stores replace an entry atomically, so a cut write either did not happen ("lost")
 * or happened just before the power went ("done"). Linked to a FaultyFlash, one power serves both: a
 * cut in either kills the other. Test-only; portable (runs in XS).
 */
import type { KeyStore } from "../../src/ports.js";
import { ErrorCode, PortcullisError } from "../../src/errors.js";

export type KeyTear = "lost" | "done";

export interface FaultyKeyStoreOptions {
  /** Cut the power at this mutating call (1 = the first set or delete). 0 or absent: never. */
  readonly cutAt?: number;
  readonly tear?: KeyTear;
  /** The flash on the same power rail (anything with `dead` and `kill()`). */
  readonly power?: { readonly dead: boolean; kill(): void };
}

export class FaultyKeyStore implements KeyStore {
  /** Mutating calls performed (or attempted, for the one cut). */
  operations = 0;
  readonly #inner: KeyStore;
  readonly #o: FaultyKeyStoreOptions;
  #dead = false;

  constructor(inner: KeyStore, options: FaultyKeyStoreOptions = {}) {
    this.#inner = inner;
    this.#o = options;
  }

  get dead(): boolean {
    return this.#dead || (this.#o.power?.dead ?? false);
  }

  get(name: string): Uint8Array | undefined {
    this.#alive();
    return this.#inner.get(name);
  }

  set(name: string, value: Uint8Array): void {
    this.#mutate(() => this.#inner.set(name, value));
  }

  delete(name: string): void {
    this.#mutate(() => this.#inner.delete(name));
  }

  #mutate(op: () => void): void {
    this.#alive();
    this.operations++;
    const cut = (this.#o.cutAt ?? 0) > 0 && this.operations === this.#o.cutAt;
    if (!cut) return op();
    if (this.#o.tear === "done") op();
    this.#dead = true;
    this.#o.power?.kill();
    throw new PortcullisError(ErrorCode.PowerCut, `power cut at key-store write ${this.operations}`);
  }

  #alive(): void {
    if (this.dead) throw new PortcullisError(ErrorCode.PowerCut, "power is off");
  }
}
