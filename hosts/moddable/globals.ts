/**
 * TextEncoder and TextDecoder as globals for the core (src/globals.d.ts), in plain JavaScript over
 * utf8.ts. The SDK's text/encoder and text/decoder are native classes, and src/util/bytes.ts constructs both at module scope, which XS cannot do while
 * preloading (native calls are impossible at build time: documentation/xs/preload.md). This module is
 * first in the manifest's preload list so the globals exist before any core module is evaluated.
 */
import { utf8Decode, utf8Encode } from "portcullis/moddable/utf8";

const REPLACEMENT = "\ufffd";

class Utf8Encoder {
  get encoding(): string {
    return "utf-8";
  }
  encode(input = ""): Uint8Array {
    return utf8Encode(input);
  }
}

class Utf8Decoder {
  readonly #fatal: boolean;

  /** @throws RangeError for any label but UTF-8 (the only encoding the core uses). */
  constructor(label = "utf-8", options: { fatal?: boolean } = {}) {
    if (!/^utf-?8$/i.test(label)) throw new RangeError(`unsupported encoding ${label}`);
    this.#fatal = options.fatal === true;
  }

  get encoding(): string {
    return "utf-8";
  }

  /** @throws TypeError on malformed UTF-8 when constructed with `fatal: true` (WHATWG Encoding §4.2). */
  decode(input: Uint8Array = new Uint8Array(0)): string {
    const strict = utf8Decode(input);
    if (strict !== undefined) return strict;
    if (this.#fatal) throw new TypeError("invalid UTF-8");
    return lossy(input);
  }
}

/** Replaces each maximal invalid prefix with U+FFFD, one byte at a time (simpler than WHATWG's rule, never wrong for valid text). */
function lossy(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    const n = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 ? 2 : 0;
    const piece = n > 0 && i + n <= bytes.length ? utf8Decode(bytes.subarray(i, i + n)) : undefined;
    if (piece === undefined) {
      out += REPLACEMENT;
      i++;
    } else {
      out += piece;
      i += n;
    }
  }
  return out;
}

const g = globalThis as unknown as { TextEncoder?: unknown; TextDecoder?: unknown };
g.TextEncoder ??= Utf8Encoder;
g.TextDecoder ??= Utf8Decoder;

export { Utf8Decoder, Utf8Encoder };
