/**
 * The audit "partition" on the Moddable `lin` build, which has no raw flash: a file of erased bytes
 * (0xFF) under the data directory, held to the NOR rules by `NorFlash` (src/flash/nor.ts), laid out as
 * on the ESP32 (the core's region with the retained area, then one scratch sector for the boot self-test).
 * Writes are flushed to the kernel (the SDK file module calls fflush) but not fsync'd: this is a
 * simulator; power-loss behaviour is tested with FaultyFlash, not with this file.
 */
import { Directory, File } from "file";
import config from "mc/config";
import { NorFlash, SECTOR_SIZE, type FlashStore } from "portcullis/flash/nor";
import { FLASH_BYTES_NEEDED } from "portcullis/gateway/outbound";
import { RETAINED_AREA_BYTES } from "portcullis/broker-local/retained-flash";

/**
 * The image size: the core's region (audit log, queue slots, retained area) plus the scratch sector, as
 * hosts/moddable/esp32/partitions.csv. An image made before the retained area existed
 * (`LEGACY_IMAGE_BYTES`) keeps its layout; its retained messages then live in RAM only.
 */
export const IMAGE_BYTES = FLASH_BYTES_NEEDED + RETAINED_AREA_BYTES + SECTOR_SIZE;
export const LEGACY_IMAGE_BYTES = FLASH_BYTES_NEEDED + SECTOR_SIZE;

class FileStore implements FlashStore {
  readonly #file: File;
  readonly #base: number;

  constructor(file: File, base: number) {
    this.#file = file;
    this.#base = base;
  }

  read(offset: number, length: number): Uint8Array {
    this.#file.position = this.#base + offset;
    return new Uint8Array(this.#file.read(ArrayBuffer, length));
  }

  write(offset: number, data: Uint8Array): void {
    this.#file.position = this.#base + offset;
    this.#file.write(data.slice().buffer as ArrayBuffer);
  }
}

/** The image path: `config.portcullis.dataDir` (set in manifest.json; /tmp/portcullis/ by default). */
export function auditImagePath(): string {
  return `${(config as unknown as { portcullis: { dataDir: string } }).portcullis.dataDir}flash.img`;
}

/**
 * Opens (creating, all erased) the file-backed flash.
 * @throws Error when the file cannot be created, or exists with another size (refuse rather than guess).
 */
export function openAuditFlash(): { readonly flash: NorFlash; readonly scratch: NorFlash } {
  const path = auditImagePath();
  try {
    Directory.create(path.slice(0, path.lastIndexOf("/") + 1));
  } catch {
    // already there
  }
  if (!File.exists(path)) {
    const file = new File(path, true);
    const erased = new Uint8Array(SECTOR_SIZE).fill(0xff).buffer;
    for (let i = 0; i < IMAGE_BYTES / SECTOR_SIZE; i++) file.write(erased);
    file.close();
  }
  const file = new File(path, true);
  const length = file.length;
  if (length !== IMAGE_BYTES && length !== LEGACY_IMAGE_BYTES) {
    file.close();
    throw new Error(`${path} is ${length} bytes, expected ${IMAGE_BYTES} (or ${LEGACY_IMAGE_BYTES}, made before the retained area)`);
  }
  const region = length - SECTOR_SIZE;
  return {
    flash: new NorFlash({ size: region, store: new FileStore(file, 0) }),
    scratch: new NorFlash({ size: SECTOR_SIZE, store: new FileStore(file, region) }),
  };
}
