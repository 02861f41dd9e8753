/**
 * The Crypto port on node:crypto (OpenSSL). Every output is a plain Uint8Array the caller owns (never
 * a pooled Buffer), and every peer point is validated before use (P-256 invalid-curve attacks).
 */
import { createCipheriv, createDecipheriv, createECDH, createHash, createHmac, pbkdf2Sync } from "node:crypto";
import type { Crypto, P256KeyPair } from "../../src/ports.js";

const HASH_LEN = 32;
/** P-256 group order n (FIPS 186-4 D.1.2.3), for the private-scalar range check. */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

function copy(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function checkGcm(key: Uint8Array, nonce: Uint8Array): string {
  if (key.length !== 16 && key.length !== 32) throw new RangeError("AES-GCM key must be 16 or 32 bytes");
  if (nonce.length !== 12) throw new RangeError("AES-GCM nonce must be 12 bytes");
  return key.length === 16 ? "aes-128-gcm" : "aes-256-gcm";
}

function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return copy(createHmac("sha256", key).update(data).digest());
}

/** Big-endian bytes → bigint. */
function toBig(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

function checkScalar(privateKey: Uint8Array): void {
  if (privateKey.length !== 32) throw new Error("P-256 private key must be 32 bytes");
  const d = toBig(privateKey);
  if (d === 0n || d >= P256_N) throw new Error("P-256 private key out of range [1, n-1]");
}

function ecdhFor(privateKey: Uint8Array): ReturnType<typeof createECDH> {
  checkScalar(privateKey);
  const ecdh = createECDH("prime256v1");
  ecdh.setPrivateKey(privateKey);
  return ecdh;
}

/** Left-pads to 32 bytes (OpenSSL may drop leading zero bytes of a scalar). */
function pad32(b: Uint8Array): Uint8Array {
  if (b.length === 32) return copy(b);
  const out = new Uint8Array(32);
  out.set(b, 32 - b.length);
  return out;
}

/** The Node board's Crypto port. */
export function nodeCrypto(): Crypto {
  return {
    sha256: (data) => copy(createHash("sha256").update(data).digest()),
    hmacSha256: hmac,
    hmacSha1: (key, data) => copy(createHmac("sha1", key).update(data).digest()),
    pbkdf2Sha256: (password, salt, iterations, length) => {
      if (!Number.isInteger(iterations) || iterations < 1) throw new RangeError("PBKDF2 iterations must be a positive integer");
      if (!Number.isInteger(length) || length < 1) throw new RangeError("PBKDF2 length must be a positive integer");
      return copy(pbkdf2Sync(password, salt, iterations, length, "sha256"));
    },
    // RFC 5869 §2.2: PRK = HMAC-Hash(salt, IKM); an absent salt is HashLen zero bytes.
    hkdfExtract: (salt, ikm) => hmac(salt.length === 0 ? new Uint8Array(HASH_LEN) : salt, ikm),
    // RFC 5869 §2.3: T(i) = HMAC-Hash(PRK, T(i-1) | info | i), OKM = first L octets of T(1)|T(2)|...
    hkdfExpand: (prk, info, length) => {
      if (!Number.isInteger(length) || length < 0 || length > 255 * HASH_LEN) {
        throw new RangeError("HKDF-Expand length must be 0..8160");
      }
      const out = new Uint8Array(length);
      let t: Uint8Array = new Uint8Array(0);
      for (let i = 1, off = 0; off < length; i++, off += HASH_LEN) {
        t = copy(createHmac("sha256", prk).update(t).update(info).update(new Uint8Array([i])).digest());
        out.set(t.subarray(0, Math.min(HASH_LEN, length - off)), off);
      }
      return out;
    },
    aesGcmSeal: (key, nonce, plaintext, aad) => {
      const c = createCipheriv(checkGcm(key, nonce) as "aes-128-gcm", key, nonce, { authTagLength: 16 });
      c.setAAD(aad);
      const head = c.update(plaintext);
      const tail = c.final();
      const tag = c.getAuthTag();
      const out = new Uint8Array(head.length + tail.length + tag.length);
      out.set(head, 0);
      out.set(tail, head.length);
      out.set(tag, head.length + tail.length);
      return out;
    },
    aesGcmOpen: (key, nonce, sealed, aad) => {
      const alg = checkGcm(key, nonce) as "aes-128-gcm";
      if (sealed.length < 16) return undefined;
      const d = createDecipheriv(alg, key, nonce, { authTagLength: 16 });
      d.setAAD(aad);
      d.setAuthTag(sealed.subarray(sealed.length - 16));
      try {
        const head = d.update(sealed.subarray(0, sealed.length - 16));
        const tail = d.final();
        const out = new Uint8Array(head.length + tail.length);
        out.set(head, 0);
        out.set(tail, head.length);
        return out;
      } catch {
        return undefined;
      }
    },
    p256Generate: (): P256KeyPair => {
      const ecdh = createECDH("prime256v1");
      ecdh.generateKeys();
      return { privateKey: pad32(ecdh.getPrivateKey()), publicKey: copy(ecdh.getPublicKey(null, "uncompressed")) };
    },
    p256PublicKey: (privateKey) => copy(ecdhFor(privateKey).getPublicKey(null, "uncompressed")),
    p256Ecdh: (privateKey, peer) => {
      // The port accepts only uncompressed points (0x04 ‖ X ‖ Y); OpenSSL checks the point is on the curve.
      if (peer.length !== 65 || peer[0] !== 0x04) throw new Error("P-256 peer key must be a 65-byte uncompressed point");
      const ecdh = ecdhFor(privateKey);
      try {
        return pad32(ecdh.computeSecret(peer));
      } catch (e) {
        throw new Error(`P-256 peer key is not a valid point: ${(e as Error).message}`);
      }
    },
  };
}
