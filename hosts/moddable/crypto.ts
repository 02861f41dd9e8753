/**
 * The Crypto port on the Moddable SDK's `crypt` modules: Digest SHA-256, HMAC, AES-GCM, ECDH on P-256
 * (modules/crypt/etc/curve.js over the native arith modules). HKDF (RFC 5869) is composed from HMAC.
 * The SDK's `Curve.dh` does not validate peer points, so this port checks the curve equation itself.
 */
import { BlockCipher, Curve, Digest, GCM, HMAC } from "portcullis/sdk/crypt";
import type { Crypto, P256KeyPair, Random } from "../../src/ports.js";

/** NIST P-256 domain parameters (SEC 2 §2.4.2 / FIPS 186-4 D.1.2.3). */
const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const HASH_LENGTH = 32;

/** An exact-length ArrayBuffer copy: the SDK's native code takes ArrayBuffers, not views. */
function ab(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer as ArrayBuffer;
}

function toBigInt(bytes: Uint8Array): bigint {
  let hex = "0x0";
  for (const b of bytes) hex += (b < 16 ? "0" : "") + b.toString(16);
  return BigInt(hex);
}

function mod(a: bigint): bigint {
  const r = a % P;
  return r < 0n ? r + P : r;
}

/** SEC 1 §3.2.2.1 partial validation: in range and on the curve (cofactor 1, so no subgroup check). */
function assertOnCurve(point: Uint8Array): void {
  if (point.length !== 65 || point[0] !== 0x04) throw new Error("P-256 point must be 65 bytes, uncompressed (0x04)");
  const x = toBigInt(point.subarray(1, 33));
  const y = toBigInt(point.subarray(33, 65));
  if (x >= P || y >= P) throw new Error("P-256 point coordinate out of range");
  if (mod(y * y) !== mod(x * x * x - 3n * x + B)) throw new Error("point is not on P-256");
}

function assertScalar(d: Uint8Array): void {
  if (d.length !== 32) throw new Error("P-256 private key must be 32 bytes");
  const k = toBigInt(d);
  if (k === 0n || k >= N) throw new Error("P-256 private key out of range");
}

export class ModdableCrypto implements Crypto {
  readonly #random: Random;
  #curve: Curve | undefined;

  constructor(random: Random) {
    this.#random = random;
  }

  sha256(data: Uint8Array): Uint8Array {
    const digest = new Digest("SHA256");
    digest.write(ab(data));
    return new Uint8Array(digest.close());
  }

  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
    return new Uint8Array(new HMAC(new Digest("SHA256"), ab(key)).process(ab(data)));
  }

  hmacSha1(key: Uint8Array, data: Uint8Array): Uint8Array {
    return new Uint8Array(new HMAC(new Digest("SHA1"), ab(key)).process(ab(data)));
  }

  /** RFC 8018 §5.2 over the SDK's native HMAC: T_i = U_1 ^ … ^ U_c, U_1 = PRF(P, S ‖ INT(i)), U_j = PRF(P, U_{j-1}). */
  pbkdf2Sha256(password: Uint8Array, salt: Uint8Array, iterations: number, length: number): Uint8Array {
    if (!Number.isInteger(iterations) || iterations < 1) throw new RangeError("PBKDF2 iterations must be a positive integer");
    if (!Number.isInteger(length) || length < 1) throw new RangeError("PBKDF2 length must be a positive integer");
    // RFC 2104: a key longer than the block is hashed first. Done once here, not by each of the
    // `iterations` HMAC objects (a long password would otherwise cost extra compressions per round).
    const key = ab(password.length > 64 ? this.sha256(password) : password);
    const out = new Uint8Array(length);
    for (let block = 1, done = 0; done < length; block++, done += HASH_LENGTH) {
      const first = new Uint8Array(salt.length + 4);
      first.set(salt, 0);
      new DataView(first.buffer).setUint32(salt.length, block);
      let u = new Uint8Array(new HMAC(new Digest("SHA256"), key).process(first.buffer));
      const t = u.slice();
      for (let j = 1; j < iterations; j++) {
        u = new Uint8Array(new HMAC(new Digest("SHA256"), key).process(u.buffer));
        for (let k = 0; k < HASH_LENGTH; k++) t[k] = t[k]! ^ u[k]!;
      }
      out.set(t.subarray(0, Math.min(HASH_LENGTH, length - done)), done);
    }
    return out;
  }

  hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
    return this.hmacSha256(salt.length === 0 ? new Uint8Array(HASH_LENGTH) : salt, ikm);
  }

  hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    if (!Number.isInteger(length) || length < 0 || length > 255 * HASH_LENGTH) throw new RangeError(`HKDF length ${length}`);
    const out = new Uint8Array(length);
    let t: Uint8Array = new Uint8Array(0);
    for (let i = 1, done = 0; done < length; i++) {
      // RFC 5869 §2.3: T(i) = HMAC-Hash(PRK, T(i-1) | info | i)
      const input = new Uint8Array(t.length + info.length + 1);
      input.set(t, 0);
      input.set(info, t.length);
      input[input.length - 1] = i;
      t = this.hmacSha256(prk, input);
      out.set(t.subarray(0, Math.min(HASH_LENGTH, length - done)), done);
      done += HASH_LENGTH;
    }
    return out;
  }

  aesGcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
    const gcm = this._gcm(key, nonce);
    const sealed = gcm.process(plaintext.slice(), null, ab(nonce), ab(aad), true);
    if (sealed === undefined) throw new Error("AES-GCM seal failed");
    return new Uint8Array(sealed);
  }

  aesGcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
    const gcm = this._gcm(key, nonce);
    if (sealed.length < 16) return undefined;
    const opened = gcm.process(sealed.slice(), null, ab(nonce), ab(aad), false);
    return opened === undefined ? undefined : new Uint8Array(opened);
  }

  p256Generate(): P256KeyPair {
    const d = new Uint8Array(32);
    for (;;) {
      this.#random.fill(d);
      const k = toBigInt(d);
      if (k !== 0n && k < N) break; // rejection sampling (FIPS 186-4 B.4.2); fails with probability < 2^-32
    }
    return { privateKey: d.slice(), publicKey: this.p256PublicKey(d) };
  }

  p256PublicKey(privateKey: Uint8Array): Uint8Array {
    assertScalar(privateKey);
    const point = this._p256().dh(ab(privateKey));
    if (point === undefined) throw new Error("P-256 multiplication failed");
    return new Uint8Array(point);
  }

  p256Ecdh(privateKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array {
    assertScalar(privateKey);
    assertOnCurve(peerPublicKey);
    const point = this._p256().dh(ab(privateKey), ab(peerPublicKey));
    if (point === undefined) throw new Error("P-256 ECDH failed");
    return new Uint8Array(point.slice(1, 33));
  }

  private _gcm(key: Uint8Array, nonce: Uint8Array): GCM {
    if (key.length !== 16 && key.length !== 32) throw new RangeError(`AES-GCM key must be 16 or 32 bytes, not ${key.length}`);
    if (nonce.length !== 12) throw new RangeError(`AES-GCM nonce must be 12 bytes, not ${nonce.length}`);
    return new GCM(new BlockCipher("AES", ab(key)));
  }

  /** Created on first use: no native calls at module scope (preloaded modules are frozen in flash). */
  private _p256(): Curve {
    return (this.#curve ??= new Curve("secp256r1"));
  }
}
