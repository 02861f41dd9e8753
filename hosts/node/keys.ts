/**
 * The KeyStore port on the Node board: one file per key in `<data>/keys/` (mode 0600), written to a
 * temporary file, fsync'ed and renamed into place, so a key is either the old or the new value after
 * a crash. The replaced file's content is then overwritten with zeros through a handle kept open
 * across the rename (an evolved audit sealing key must not linger: forward security), and deleting
 * overwrites before unlinking. Best effort on journaling or copy-on-write file systems.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import path from "node:path";
import type { KeyStore } from "../../src/ports.js";

const NAME = /^[a-z0-9._-]{1,15}$/;
export const MAX_VALUE_BYTES = 4000;

function check(name: string): void {
  if (!NAME.test(name) || name === "." || name === "..") throw new RangeError(`key name "${name}" must be 1-15 of [a-z0-9._-]`);
}

export class FileKeyStore implements KeyStore {
  readonly #dir: string;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.#dir = dir;
  }

  get(name: string): Uint8Array | undefined {
    check(name);
    const file = path.join(this.#dir, name);
    return existsSync(file) ? new Uint8Array(readFileSync(file)) : undefined;
  }

  set(name: string, value: Uint8Array): void {
    check(name);
    if (value.length > MAX_VALUE_BYTES) throw new RangeError(`key "${name}": ${value.length} bytes is over the ${MAX_VALUE_BYTES}-byte limit`);
    const file = path.join(this.#dir, name);
    // "~" is outside the name alphabet: the temporary file can never be another key.
    const tmp = `${file}~tmp`;
    const fd = openSync(tmp, "w", 0o600);
    try {
      writeSync(fd, value);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    const old = existsSync(file) ? openSync(file, "r+") : undefined;
    try {
      renameSync(tmp, file);
      const dfd = openSync(this.#dir, "r");
      try {
        fsyncSync(dfd);
      } finally {
        closeSync(dfd);
      }
      if (old !== undefined) {
        const size = fstatSync(old).size;
        if (size > 0) writeSync(old, new Uint8Array(size), 0, size, 0);
        fsyncSync(old);
      }
    } finally {
      if (old !== undefined) closeSync(old);
    }
  }

  delete(name: string): void {
    check(name);
    const file = path.join(this.#dir, name);
    if (!existsSync(file)) return;
    const fd = openSync(file, "r+");
    try {
      writeSync(fd, new Uint8Array(statSync(file).size));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    unlinkSync(file);
  }
}
