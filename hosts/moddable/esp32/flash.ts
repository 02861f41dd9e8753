/**
 * The audit partition on the ESP32's SPI flash through the SDK `flash` module, held to the core's NOR
 * rules by running it under `NorFlash` (src/flash/nor.ts) instead of re-implementing them.
 *
 * NorFlash erases by writing a whole sector of 0xFF through its store. On the chip that must be a real
 * erase, so this store turns an aligned, sector-sized, all-0xFF write into `Flash.erase`. That is sound:
 * NorFlash only lets an all-0xFF program reach the store when the sector is already erased (it refuses
 * to set bits), so the translation never changes what the rules allow.
 */
import Flash from "flash";
import { NorFlash, SECTOR_SIZE, type FlashStore } from "portcullis/flash/nor";
import { FLASH_BYTES_NEEDED } from "portcullis/gateway/outbound";
import { RETAINED_AREA_BYTES } from "portcullis/broker-local/retained-flash";

/** The partition name in hosts/moddable/esp32/partitions.csv. */
export const AUDIT_PARTITION = "audit";

/** A window of the partition starting at `base`. */
class PartitionStore implements FlashStore {
  readonly #flash: Flash;
  readonly #base: number;

  constructor(flash: Flash, base: number) {
    this.#flash = flash;
    this.#base = base;
  }

  read(offset: number, length: number): Uint8Array {
    return new Uint8Array(this.#flash.read(this.#base + offset, length) as ArrayBuffer);
  }

  write(offset: number, data: Uint8Array): void {
    if (offset % SECTOR_SIZE === 0 && data.length === SECTOR_SIZE && data.every((b) => b === 0xff)) {
      this.#flash.erase((this.#base + offset) / SECTOR_SIZE);
    } else {
      this.#flash.write(this.#base + offset, data.length, data);
    }
  }
}

/**
 * Opens the audit partition: the core's region and the scratch sector after it. The region is the audit
 * log, the queue slots and the retained area (FLASH_BYTES_NEEDED + RETAINED_AREA_BYTES); a partition
 * flashed before the retained area existed (FLASH_BYTES_NEEDED + one sector) keeps that layout, and
 * its retained messages then live in RAM only (src/broker-local/options.ts openRetainedArea).
 * @throws Error when the partition is missing (a build without our partitions.csv), too small, or not 4096-byte sectored.
 */
export function openAuditFlash(): { readonly flash: NorFlash; readonly scratch: NorFlash } {
  const flash = new Flash(AUDIT_PARTITION);
  if (flash.blockSize !== SECTOR_SIZE) throw new Error(`audit partition block size ${flash.blockSize}, expected ${SECTOR_SIZE}`);
  const full = FLASH_BYTES_NEEDED + RETAINED_AREA_BYTES;
  const region = flash.byteLength >= full + SECTOR_SIZE ? full : FLASH_BYTES_NEEDED;
  if (flash.byteLength < region + SECTOR_SIZE) {
    throw new Error(`audit partition is ${flash.byteLength} bytes; needs ${full + SECTOR_SIZE}`);
  }
  return {
    flash: new NorFlash({ size: region, store: new PartitionStore(flash, 0) }),
    scratch: new NorFlash({ size: SECTOR_SIZE, store: new PartitionStore(flash, region) }),
  };
}
