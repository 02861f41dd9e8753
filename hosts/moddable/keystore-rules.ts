/** The KeyStore port's naming and size rules (src/ports.ts), shared by the ESP32 and lin stores. */

/** NVS keys are at most 15 characters (ESP-IDF NVS_KEY_NAME_MAX_SIZE - 1). */
export const MAX_KEY_NAME = 15;
/** NVS blob values above this are refused rather than split (the SDK preference module's limit). */
export const MAX_KEY_VALUE = 4000;
/** The NVS namespace (also at most 15 characters). */
export const KEY_DOMAIN = "portcullis";

const NAME = /^[a-z0-9._-]{1,15}$/;

/** @throws RangeError on a bad name. */
export function checkName(name: string): void {
  if (!NAME.test(name)) throw new RangeError(`key name "${name}" must be 1-${MAX_KEY_NAME} characters of [a-z0-9._-]`);
}

/** @throws RangeError on a bad name or an oversized value. */
export function checkEntry(name: string, value: Uint8Array): void {
  checkName(name);
  if (value.length > MAX_KEY_VALUE) throw new RangeError(`value for "${name}" is ${value.length} bytes; at most ${MAX_KEY_VALUE}`);
}
