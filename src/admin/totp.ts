/**
 * Time-based one-time passwords: HOTP (RFC 4226) and TOTP (RFC 6238) with HMAC-SHA1, 6 digits,
 * 30-second steps, one step of drift either way — what authenticator apps do by default. The HMAC
 * comes from the Crypto port; this file only does the counter, the dynamic truncation and the
 * bookkeeping that refuses a code used before (the caller keeps the last accepted step).
 */
import type { Crypto } from "../ports.js";
import { constantTimeEqual, utf8 } from "../util/bytes.js";

export const TOTP = Object.freeze({ stepS: 30, digits: 6, window: 1, secretBytes: 20 });

const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 §6 base32, upper case, without padding (as otpauth:// URIs carry secrets). */
export function base32Encode(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}

/**
 * RFC 4648 base32, case-insensitive, padding and spaces ignored.
 * @throws Error on a character outside the alphabet.
 */
export function base32Decode(text: string): Uint8Array {
  const clean = text.replace(/[\s=]/g, "").toUpperCase();
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of clean) {
    const v = B32.indexOf(ch);
    if (v < 0) throw new Error(`"${ch}" is not a base32 character`);
    value = ((value << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Uint8Array.from(out);
}

/** HOTP (RFC 4226 §5.3): HMAC-SHA1 over the 8-byte big-endian counter, dynamically truncated to `digits`. */
export function hotp(crypto: Crypto, key: Uint8Array, counter: number, digits: number = TOTP.digits): string {
  if (!Number.isSafeInteger(counter) || counter < 0) throw new RangeError("HOTP counter must be a non-negative safe integer");
  if (!Number.isInteger(digits) || digits < 6 || digits > 8) throw new RangeError("HOTP digits must be 6, 7 or 8");
  const msg = new Uint8Array(8);
  const view = new DataView(msg.buffer);
  view.setUint32(0, Math.floor(counter / 0x1_0000_0000));
  view.setUint32(4, counter >>> 0);
  const mac = crypto.hmacSha1(key, msg);
  const offset = mac[19]! & 0x0f;
  const binary = ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16) | (mac[offset + 2]! << 8) | mac[offset + 3]!;
  return String(binary % 10 ** digits).padStart(digits, "0");
}

/** The TOTP step (RFC 6238 §4.2, T0 = 0) of a wall-clock time in ms. */
export function totpStep(timeMs: number, stepS: number = TOTP.stepS): number {
  return Math.floor(timeMs / 1000 / stepS);
}

/** The TOTP code at `timeMs`. */
export function totpAt(crypto: Crypto, key: Uint8Array, timeMs: number, digits: number = TOTP.digits, stepS: number = TOTP.stepS): string {
  return hotp(crypto, key, totpStep(timeMs, stepS), digits);
}

/**
 * The step `code` matches at `timeMs` (± {@link TOTP.window} steps), if that step is later than
 * `lastStep` (a code, or an earlier one, already used is refused: RFC 6238 §5.2). Undefined otherwise.
 * Every candidate is computed and compared in constant time.
 */
export function verifyTotp(crypto: Crypto, key: Uint8Array, code: string, timeMs: number, lastStep: number): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const now = totpStep(timeMs);
  let found: number | undefined;
  for (let step = now - TOTP.window; step <= now + TOTP.window; step++) {
    if (step < 0) continue;
    const ok = constantTimeEqual(utf8(hotp(crypto, key, step)), utf8(code));
    if (ok && step > lastStep && found === undefined) found = step;
  }
  return found;
}

/** The key URI authenticator apps read (Google Authenticator's `otpauth://totp/` format). */
export function otpauthUri(issuer: string, account: string, secret: Uint8Array): string {
  const label = encodeURIComponent(issuer) + ":" + encodeURIComponent(account);
  return `otpauth://totp/${label}?secret=${base32Encode(secret)}&issuer=${encodeURIComponent(issuer)}&algorithm=SHA1&digits=${TOTP.digits}&period=${TOTP.stepS}`;
}
