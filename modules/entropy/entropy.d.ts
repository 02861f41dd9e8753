/** portcullis/entropy: secure random bytes from the platform (ESP32 esp_fill_random, Linux getrandom). */
declare module "portcullis/entropy" {
  /**
   * Fills `bytes` in place with cryptographically secure random bytes.
   * @throws Error when the platform has no secure source (never falls back to a weak one).
   */
  export function fill(bytes: ArrayBuffer | ArrayBufferView): void;
}
