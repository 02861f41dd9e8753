/**
 * NOR flash rules, written once and used by every board that has no raw flash of its own (the Node
 * simulator's file image, the Moddable `lin` build, the in-memory test flash). Modelled on
 * DeviceScript's `runtime/posix/flash.c` and littlefs's `bd/lfs_emubd`: what would break on the chip
 * breaks here first.
 */
import type { Flash } from "../ports.js";
import { ErrorCode, PortcullisError } from "../errors.js";
import { meter } from "../util/meter.js";

/** Where the bytes of an emulated flash live. `write` replaces bytes as given (the rules are above it). */
export interface FlashStore {
  read(offset: number, length: number): Uint8Array;
  write(offset: number, data: Uint8Array): void;
  /** Optional: make every write so far survive the host's power (see the Flash port's `sync`). */
  sync?(): void;
  /** Optional: the asynchronous form (see the Flash port's `durable`). */
  durable?(): Promise<void>;
}

export const SECTOR_SIZE = 4096;
export const PROGRAM_SIZE = 4;

/** Raised for every broken rule; the flash content is left untouched. */
function rule(message: string): PortcullisError {
  return new PortcullisError(ErrorCode.FlashRule, message);
}

export interface NorFlashOptions {
  /** Bytes; a positive multiple of the sector size. */
  readonly size: number;
  readonly store: FlashStore;
  readonly sectorSize?: number;
  readonly programSize?: number;
}

/** A {@link Flash} that enforces NOR rules over a {@link FlashStore}, and counts operations and wear. */
export class NorFlash implements Flash {
  readonly size: number;
  readonly sectorSize: number;
  readonly programSize: number;
  /** Erase count per sector (wear), for benchmarks and wear-levelling tests. */
  readonly eraseCounts: Uint32Array;
  /** Operation counters. */
  programs = 0;
  erases = 0;
  /** Acknowledgement points the ring asked for (each one fsync on a file store). */
  syncs = 0;
  bytesProgrammed = 0;
  /** Present only when the store has one (a file): the Flash port's `durable`. */
  readonly durable?: () => Promise<void>;
  /** durable() calls the ring made (a file store shares one fdatasync among those of a turn). */
  durables = 0;
  readonly #store: FlashStore;

  constructor(options: NorFlashOptions) {
    const sectorSize = options.sectorSize ?? SECTOR_SIZE;
    const programSize = options.programSize ?? PROGRAM_SIZE;
    if (!(sectorSize > 0) || sectorSize % programSize !== 0) throw new RangeError("bad sectorSize");
    if (!(options.size > 0) || options.size % sectorSize !== 0) {
      throw new RangeError(`flash size ${options.size} must be a positive multiple of ${sectorSize}`);
    }
    this.size = options.size;
    this.sectorSize = sectorSize;
    this.programSize = programSize;
    this.#store = options.store;
    const store = options.store;
    if (store.durable) {
      this.durable = () => {
        this.durables++;
        return store.durable!();
      };
    }
    this.eraseCounts = new Uint32Array(options.size / sectorSize);
  }

  read(offset: number, length: number): Uint8Array {
    this._range(offset, length);
    const span = meter.start();
    const out = this.#store.read(offset, length);
    meter.stop("flash", span);
    return out;
  }

  program(offset: number, data: Uint8Array): void {
    const span = meter.start();
    try {
      this._program(offset, data);
    } finally {
      meter.stop("flash", span);
    }
  }

  private _program(offset: number, data: Uint8Array): void {
    this._range(offset, data.length);
    if (offset % this.programSize !== 0 || data.length % this.programSize !== 0) {
      throw rule(`program at ${offset} of ${data.length} bytes is not aligned to ${this.programSize}`);
    }
    const current = this.#store.read(offset, data.length);
    for (let i = 0; i < data.length; i++) {
      const want = data[i]!;
      if ((current[i]! & want) !== want) {
        throw rule(`program would set bits at ${offset + i} (0x${current[i]!.toString(16)} -> 0x${want.toString(16)}): erase first`);
      }
    }
    this.#store.write(offset, data);
    this.programs++;
    this.bytesProgrammed += data.length;
  }

  erase(sector: number): void {
    if (!Number.isInteger(sector) || sector < 0 || sector >= this.eraseCounts.length) {
      throw rule(`erase of sector ${sector} outside 0..${this.eraseCounts.length - 1}`);
    }
    const span = meter.start();
    this.#store.write(sector * this.sectorSize, new Uint8Array(this.sectorSize).fill(0xff));
    meter.stop("flash", span);
    this.eraseCounts[sector]!++;
    this.erases++;
  }

  /** The store's sync, when it has one (a file); RAM and chip stores need none. */
  sync(): void {
    this.#store.sync?.();
    this.syncs++;
  }

  private _range(offset: number, length: number): void {
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw rule(`access ${offset}+${length} outside 0..${this.size}`);
    }
  }
}

/** An in-memory store, erased (all 0xFF) at creation. */
export class RamStore implements FlashStore {
  readonly bytes: Uint8Array;
  constructor(size: number) {
    this.bytes = new Uint8Array(size).fill(0xff);
  }
  read(offset: number, length: number): Uint8Array {
    return this.bytes.slice(offset, offset + length);
  }
  write(offset: number, data: Uint8Array): void {
    this.bytes.set(data, offset);
  }
}

/** A new erased in-memory NOR flash. */
export function ramFlash(size: number): NorFlash {
  return new NorFlash({ size, store: new RamStore(size) });
}
