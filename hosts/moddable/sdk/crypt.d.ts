/**
 * Typings for the Moddable SDK crypto modules (`crypt`, `hmac`, `gcm`, `curve`; modules/crypt), which
 * @moddable/typings lacks or types only in part. Re-exported by portcullis/sdk/crypt (crypt.js).
 * Source: modules/crypt/digest/modCrypt.c, modules/crypt/etc/{hmac,gcm,curve}.js in the SDK.
 */
declare module "portcullis/sdk/crypt" {
  /** A hash (FIPS 180-4 for the SHA family). */
  export class Digest {
    constructor(type: "MD5" | "SHA1" | "SHA224" | "SHA256" | "SHA384" | "SHA512");
    /** Adds data (any byte buffer or string). */
    write(data: ArrayBuffer | ArrayBufferView | string): void;
    /** The digest; the object must be reset before reuse. */
    close(): ArrayBuffer;
    reset(): void;
    readonly blockSize: number;
    readonly outputSize: number;
  }
  /** A block cipher keyed once; `encrypt` of one block. Keys must be ArrayBuffers. */
  export class BlockCipher {
    constructor(name: "AES" | "DES" | "TDES", key: ArrayBuffer);
    encrypt(block: ArrayBuffer, out?: ArrayBuffer): ArrayBuffer;
    decrypt(block: ArrayBuffer, out?: ArrayBuffer): ArrayBuffer;
    readonly blockSize: number;
  }
  /** HMAC (RFC 2104) over a Digest. */
  export class HMAC {
    constructor(digest: Digest, key: ArrayBuffer | ArrayBufferView, bitLength?: number);
    /** MAC of the concatenated items. */
    process(...items: Array<ArrayBuffer | ArrayBufferView>): ArrayBuffer;
  }
  /** AES-GCM (NIST SP 800-38D) over a BlockCipher. */
  export class GCM {
    constructor(cipher: BlockCipher, tagLength?: number);
    /**
     * encrypt = true: returns ciphertext ‖ tag. encrypt = false: `data` is ciphertext ‖ tag; returns the
     * plaintext, or undefined when the tag does not verify. `iv` and `aad` must be ArrayBuffers.
     */
    process(data: Uint8Array, out: Uint8Array | null, iv: ArrayBuffer, aad: ArrayBuffer, encrypt: boolean): ArrayBuffer | undefined;
  }
  /** Elliptic-curve Diffie-Hellman on a named curve. */
  export class Curve {
    constructor(name: "secp256r1" | "secp384r1");
    /**
     * x × P (or x × G when P is absent) as an uncompressed point 0x04‖X‖Y. Returns undefined for a P of the
     * wrong length. It does not check that P is on the curve: callers must.
     */
    dh(x: ArrayBuffer, P?: ArrayBuffer): ArrayBuffer | undefined;
    /** The X coordinate of an uncompressed point. */
    Z(P: ArrayBuffer): ArrayBuffer;
    readonly orderSize: number;
  }
}
