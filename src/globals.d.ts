/**
 * The few globals beyond ES2022 that the core uses, present on every board: Node has them, xsnap has
 * them, and the firmware's manifest includes Moddable's `text/encoder` and `text/decoder` modules,
 * which install them as globals. Nothing else may be added here (see test/node/portability.test.ts).
 */
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean });
  decode(input?: Uint8Array): string;
}
