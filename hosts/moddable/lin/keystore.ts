/**
 * The KeyStore port on `lin`: one file per key under `<dataDir>keys/`, replaced atomically (write a
 * temporary file, then rename), and overwritten with zeros before deletion.
 */
import { Directory, File } from "file";
import config from "mc/config";
import type { KeyStore } from "../../../src/ports.js";
import { checkEntry, checkName } from "portcullis/moddable/keystore-rules";

export class FileKeyStore implements KeyStore {
  readonly #dir: string;

  /** `dir` ends with "/" and exists or can be created. */
  constructor(dir: string) {
    this.#dir = dir;
    try {
      Directory.create(dir);
    } catch {
      // already there
    }
  }

  get(name: string): Uint8Array | undefined {
    checkName(name);
    const path = this.#dir + name;
    if (!File.exists(path)) return undefined;
    const file = new File(path);
    try {
      // The SDK's File.read throws "read past end of file" at length 0: an empty value is not an absent one.
      if (file.length === 0) return new Uint8Array(0);
      return new Uint8Array(file.read(ArrayBuffer));
    } finally {
      file.close();
    }
  }

  set(name: string, value: Uint8Array): void {
    checkEntry(name, value);
    const temporary = `${this.#dir}${name}.new`;
    if (File.exists(temporary)) File.delete(temporary);
    const file = new File(temporary, true);
    file.write(value.slice().buffer as ArrayBuffer);
    file.close();
    if (!File.rename(temporary, name)) throw new Error(`could not store key ${name}`);
  }

  delete(name: string): void {
    checkName(name);
    const path = this.#dir + name;
    if (!File.exists(path)) return;
    const file = new File(path, true);
    file.write(new ArrayBuffer(file.length));
    file.close();
    File.delete(path);
  }
}

/** Opens the key store under `config.portcullis.dataDir` (manifest.json). */
export function openKeyStore(): KeyStore {
  const { dataDir } = (config as unknown as { portcullis: { dataDir: string } }).portcullis;
  return new FileKeyStore(`${dataDir}keys/`);
}
