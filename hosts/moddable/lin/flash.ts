/**
 * The audit "partition" on the Moddable `lin` build, which has no raw flash: a file of erased bytes
 * (0xFF) under the data directory, held to the NOR rules by `NorFlash` (src/flash/nor.ts).
 * Writes are flushed to the kernel (the SDK file module calls fflush) but not fsync'd: this is a
 * simulator; power-loss behaviour is tested with FaultyFlash, not with this file.
 */
import { Directory, File } from "file";
import config from "mc/config";
import { NorFlash, SECTOR_SIZE, type FlashStore } from "portcullis/flash/nor";

/** Same size as the ESP32 audit partition (hosts/moddable/esp32/partitions.csv). */
export const AUDIT_FLASH_BYTES = 1024 * 1024;

class FileStore implements FlashStore {
  readonly #file: File;

  constructor(file: File) {
    this.#file = file;
  }

  read(offset: number, length: number): Uint8Array {
    this.#file.position = offset;
    return new Uint8Array(this.#file.read(ArrayBuffer, length));
  }

  write(offset: number, data: Uint8Array): void {
    this.#file.position = offset;
    this.#file.write(data.slice().buffer);
  }
}

/** The image path: `config.portcullis.dataDir` (set in manifest.json; /tmp/portcullis/ by default). */
export function auditImagePath(): string {
  return `${(config as unknown as { portcullis: { dataDir: string } }).portcullis.dataDir}audit.flash`;
}

/**
 * Opens (creating, all erased) the file-backed audit flash.
 * @throws Error when the file cannot be created, or exists with another size (refuse rather than guess).
 */
export function openAuditFlash(): NorFlash {
  const path = auditImagePath();
  try {
    Directory.create(path.slice(0, path.lastIndexOf("/") + 1));
  } catch {
    // already there
  }
  if (!File.exists(path)) {
    const file = new File(path, true);
    const erased = new Uint8Array(SECTOR_SIZE).fill(0xff).buffer;
    for (let i = 0; i < AUDIT_FLASH_BYTES / SECTOR_SIZE; i++) file.write(erased);
    file.close();
  }
  const file = new File(path, true);
  const length = file.length;
  if (length !== AUDIT_FLASH_BYTES) {
    file.close();
    throw new Error(`${path} is ${length} bytes, expected ${AUDIT_FLASH_BYTES}`);
  }
  return new NorFlash({ size: AUDIT_FLASH_BYTES, store: new FileStore(file) });
}
