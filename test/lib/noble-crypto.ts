/**
 * The Crypto and Random ports on `@noble/*`: pure JavaScript, so the core's tests run unchanged on
 * Node and inside XS (xsnap). The deterministic Random is for tests only and clearly so: it is seeded
 * and must never reach a board.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { hmac } from "@noble/hashes/hmac.js";
import { pbkdf2 } from "@noble/hashes/pbkdf2.js";
import { sha1 } from "@noble/hashes/legacy.js";
import { extract, expand } from "@noble/hashes/hkdf.js";
import { gcm } from "@noble/ciphers/aes.js";
import { p256 } from "@noble/curves/nist.js";
import type { Crypto, P256KeyPair, Random } from "../../src/ports.js";

function checkGcm(key: Uint8Array, nonce: Uint8Array): void {
  if (key.length !== 16 && key.length !== 32) throw new RangeError("AES-GCM key must be 16 or 32 bytes");
  if (nonce.length !== 12) throw new RangeError("AES-GCM nonce must be 12 bytes");
}

/** A Crypto port on noble; randomness for key generation comes from `random`. */
export function nobleCrypto(random: Random): Crypto {
  return {
    sha256: (data) => sha256(data),
    hmacSha256: (key, data) => hmac(sha256, key, data),
    hmacSha1: (key, data) => hmac(sha1, key, data),
    pbkdf2Sha256: (password, salt, iterations, length) => {
      if (!Number.isInteger(iterations) || iterations < 1) throw new RangeError("PBKDF2 iterations must be a positive integer");
      if (!Number.isInteger(length) || length < 1) throw new RangeError("PBKDF2 length must be a positive integer");
      return pbkdf2(sha256, password, salt, { c: iterations, dkLen: length });
    },
    hkdfExtract: (salt, ikm) => extract(sha256, ikm, salt.length === 0 ? new Uint8Array(32) : salt),
    hkdfExpand: (prk, info, length) => {
      if (length > 255 * 32) throw new RangeError("HKDF-Expand length too large");
      return expand(sha256, prk, info, length);
    },
    aesGcmSeal: (key, nonce, plaintext, aad) => {
      checkGcm(key, nonce);
      return gcm(key, nonce, aad).encrypt(plaintext);
    },
    aesGcmOpen: (key, nonce, sealed, aad) => {
      checkGcm(key, nonce);
      try {
        return gcm(key, nonce, aad).decrypt(sealed);
      } catch {
        return undefined;
      }
    },
    p256Generate: (): P256KeyPair => {
      const seed = new Uint8Array(48);
      random.fill(seed);
      const privateKey = p256.utils.randomSecretKey(seed);
      return { privateKey, publicKey: p256.getPublicKey(privateKey, false) };
    },
    p256PublicKey: (privateKey) => p256.getPublicKey(privateKey, false),
    p256Ecdh: (privateKey, peer) => p256.getSharedSecret(privateKey, peer, true).subarray(1),
  };
}

/**
 * TEST ONLY: a deterministic random source (SHA-256 in counter mode over a seed). Reproducible
 * property-test runs need it; a board must use its hardware or OS source.
 */
export function seededRandom(seed = "portcullis-test"): Random {
  const s = new TextEncoder().encode(seed);
  let counter = 0;
  return {
    fill(bytes) {
      for (let off = 0; off < bytes.length; off += 32) {
        const block = new Uint8Array(s.length + 4);
        block.set(s);
        new DataView(block.buffer).setUint32(s.length, counter++);
        bytes.set(sha256(block).subarray(0, Math.min(32, bytes.length - off)), off);
      }
    },
  };
}
