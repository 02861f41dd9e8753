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

/** The partition name in hosts/moddable/esp32/partitions.csv. */
export const AUDIT_PARTITION = "audit";

class PartitionStore implements FlashStore {
  readonly #flash: Flash;

  constructor(flash: Flash) {
    this.#flash = flash;
  }

  read(offset: number, length: number): Uint8Array {
    return new Uint8Array(this.#flash.read(offset, length) as ArrayBuffer);
  }

  write(offset: number, data: Uint8Array): void {
    if (offset % SECTOR_SIZE === 0 && data.length === SECTOR_SIZE && data.every((b) => b === 0xff)) {
      this.#flash.erase(offset / SECTOR_SIZE);
    } else {
      this.#flash.write(offset, data.length, data);
    }
  }
}

/**
 * Opens the audit partition.
 * @throws Error when the partition is missing (a build without our partitions.csv) or its block size is not 4096.
 */
export function openAuditFlash(): NorFlash {
  const flash = new Flash(AUDIT_PARTITION);
  if (flash.blockSize !== SECTOR_SIZE) throw new Error(`audit partition block size ${flash.blockSize}, expected ${SECTOR_SIZE}`);
  return new NorFlash({ size: flash.byteLength, store: new PartitionStore(flash) });
}
