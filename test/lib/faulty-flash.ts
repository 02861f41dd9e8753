/**
 * Fault injection for any {@link Flash}, after littlefs's `lfs_emubd`: cut the power after N mutating
 * operations (the cut one may be torn) and wear sectors out. Test-only (it is not in the firmware
 * preload): used by the power-loss runner and the flash contract suite; it runs in XS as well as on Node.
 */
import type { Flash } from "../../src/ports.js";
import { ErrorCode, PortcullisError } from "../../src/errors.js";

export type TearMode =
  /** The cut operation does not happen at all. */
  | "none"
  /** A program writes only its first half (rounded to the program size); an erase leaves the sector's first half erased (0xFF), the rest as before. */
  | "half"
  /**
   * A program clears only some of the bits it should (every other byte); an erase stops part way, as
   * NOR cells do: across the whole sector a scattered half of the bytes reads 0xFF, a quarter has only
   * some bits set, a quarter is unchanged (a deterministic pattern per sector).
   */
  | "bits";

export interface FaultyFlashOptions {
  /** Cut the power at this mutating operation (1 = the first program or erase). 0 or absent: never. */
  readonly cutAt?: number;
  readonly tear?: TearMode;
  /** An erase count past which a sector no longer erases (wear-out). */
  readonly enduranceLimit?: number;
}

/** Thrown (with code `power-cut`) by the operation the power failed in, and every call after it. */
export function isPowerCut(e: unknown): boolean {
  return e instanceof PortcullisError && e.code === ErrorCode.PowerCut;
}

/**
 * What a sector reads after an erase cut short (an erase only sets bits). "half": the first half
 * erased, the second as before. "bits": a pattern over the whole sector (xorshift32 seeded by the
 * sector number), so headers, frames and padding are all hit.
 */
export function tornErase(old: Uint8Array, tear: "half" | "bits", sector: number): Uint8Array {
  const out = old.slice();
  if (tear === "half") {
    out.fill(0xff, 0, old.length / 2);
    return out;
  }
  let x = (0x9e3779b9 ^ (sector * 0x85ebca6b)) >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const r = x & 3;
    if (r < 2) out[i] = 0xff;
    else if (r === 2) out[i] = out[i]! | ((x >>> 8) & 0xff);
  }
  return out;
}

export class FaultyFlash implements Flash {
  readonly size: number;
  readonly sectorSize: number;
  readonly programSize: number;
  /** Mutating operations performed (or attempted, for the one cut). */
  operations = 0;
  #dead = false;
  readonly #inner: Flash;
  readonly #cutAt: number;
  readonly #tear: TearMode;
  readonly #endurance: number;
  readonly #erases: Map<number, number> = new Map();

  /** The inner flash's `durable()`, when it has one; refused once the power is cut. */
  readonly durable?: () => Promise<void>;

  constructor(inner: Flash, options: FaultyFlashOptions = {}) {
    this.#inner = inner;
    if (inner.durable) {
      this.durable = () => {
        if (this.#dead) return Promise.reject(new PortcullisError(ErrorCode.PowerCut, "power is cut"));
        return inner.durable!();
      };
    }
    this.size = inner.size;
    this.sectorSize = inner.sectorSize;
    this.programSize = inner.programSize;
    this.#cutAt = options.cutAt ?? 0;
    this.#tear = options.tear ?? "none";
    this.#endurance = options.enduranceLimit ?? Infinity;
  }

  /** True once the power has been cut. */
  get dead(): boolean {
    return this.#dead;
  }

  /** Cuts the power from outside (a fault elsewhere on the same rail, such as the key store). */
  kill(): void {
    this.#dead = true;
  }

  read(offset: number, length: number): Uint8Array {
    this.#alive();
    return this.#inner.read(offset, length);
  }

  program(offset: number, data: Uint8Array): void {
    this.#alive();
    if (this.#cuts()) {
      if (this.#tear === "half") {
        const half = Math.floor(data.length / 2 / this.programSize) * this.programSize;
        if (half > 0) this.#inner.program(offset, data.subarray(0, half));
      } else if (this.#tear === "bits") {
        // Clear only the bits of every other byte: a program interrupted mid-page.
        const current = this.#inner.read(offset, data.length);
        const torn = current.slice();
        for (let i = 0; i < data.length; i += 2) torn[i] = current[i]! & data[i]!;
        this.#inner.program(offset, torn);
      }
      this.#die();
    }
    this.#inner.program(offset, data);
  }

  erase(sector: number): void {
    this.#alive();
    if (this.#cuts()) {
      if (this.#tear !== "none") {
        const old = this.#inner.read(sector * this.sectorSize, this.sectorSize);
        this.#inner.erase(sector);
        this.#inner.program(sector * this.sectorSize, tornErase(old, this.#tear, sector));
      }
      this.#die();
    }
    const n = (this.#erases.get(sector) ?? 0) + 1;
    this.#erases.set(sector, n);
    if (n > this.#endurance) {
      throw new PortcullisError(ErrorCode.FlashRule, `sector ${sector} worn out after ${this.#endurance} erases`);
    }
    this.#inner.erase(sector);
  }

  #cuts(): boolean {
    this.operations++;
    return this.#cutAt > 0 && this.operations === this.#cutAt;
  }

  #die(): never {
    this.#dead = true;
    throw new PortcullisError(ErrorCode.PowerCut, `power cut at operation ${this.operations}`);
  }

  #alive(): void {
    if (this.#dead) throw new PortcullisError(ErrorCode.PowerCut, "power is off");
  }
}
