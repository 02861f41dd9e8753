/**
 * A FlashStore backed by a file (the Node board's flash image). Writes go straight to the file (the
 * kernel's page cache), so a program or erase survives a killed process — the simulator's power cut —
 * as soon as it returns; `sync()` fsyncs them for the host's own power, and the ring calls it only at
 * acknowledgement points (a group commit), not once per program (issue #14: one fsync per program was
 * three quarters of the gateway's CPU samples). The NOR rules live in `src/flash/nor.ts`.
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

  #dirty = false;

  write(offset: number, data: Uint8Array): void {
    let done = 0;
    while (done < data.length) done += writeSync(this.#fd, data, done, data.length - done, offset + done);
    this.#dirty = true;
  }

  sync(): void {
    if (!this.#dirty) return;
    fsyncSync(this.#fd);
    this.#dirty = false;
  }

  close(): void {
    this.sync();
    closeSync(this.#fd);
  }
}
