/**
 * A FlashStore backed by a file (the Node board's flash image). Writes go straight to the file and are
 * fsync'ed before returning, so "durable when program/erase returns" holds across a killed process.
 * The NOR rules live in `src/flash/nor.ts`; this file only keeps the bytes.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from "node:fs";
import type { FlashStore } from "../../src/flash/nor.js";

export class FileStore implements FlashStore {
  readonly #fd: number;
  readonly #size: number;

  /**
   * Opens (or creates, erased to 0xFF) a flash image of `size` bytes.
   * @throws Error when an existing image has another size (a different chip: refuse, never truncate).
   */
  constructor(path: string, size: number) {
    const fresh = !existsSync(path);
    this.#fd = openSync(path, fresh ? "w+" : "r+", 0o600);
    this.#size = size;
    if (fresh) {
      ftruncateSync(this.#fd, 0);
      const erased = Buffer.alloc(64 * 1024, 0xff);
      for (let off = 0; off < size; off += erased.length) writeSync(this.#fd, erased, 0, Math.min(erased.length, size - off), off);
      fsyncSync(this.#fd);
    } else {
      const actual = fstatSync(this.#fd).size;
      if (actual !== size) {
        closeSync(this.#fd);
        throw new Error(`flash image ${path} is ${actual} bytes, expected ${size}: use another --data folder or the matching flash size`);
      }
    }
  }

  read(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.#fd, out, done, length - done, offset + done);
      if (n === 0) throw new Error(`flash image read past its end at ${offset + done}`);
      done += n;
    }
    return out;
  }

  write(offset: number, data: Uint8Array): void {
    let done = 0;
    while (done < data.length) done += writeSync(this.#fd, data, done, data.length - done, offset + done);
    fsyncSync(this.#fd);
  }

  close(): void {
    closeSync(this.#fd);
  }
}
