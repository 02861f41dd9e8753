/**
 * SubjectPublicKeyInfo extraction from an X.509 certificate (RFC 5280 §4.1) for RFC 7469-style pins:
 * pin = base64(SHA-256(DER of subjectPublicKeyInfo)). Pure TypeScript with no platform imports, so the
 * Node tests check it against node:crypto.
 */

/** One DER TLV: where its value starts and ends. */
interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly valueStart: number;
  readonly end: number;
}

/** @throws Error on malformed DER (X.690 §8.1: definite lengths only). */
function readTlv(der: Uint8Array, at: number, limit: number): Tlv {
  if (at + 2 > limit) throw new Error("DER truncated");
  const tag = der[at]!;
  let length = der[at + 1]!;
  let valueStart = at + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 3 || valueStart + count > limit) throw new Error("DER length unsupported");
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[valueStart + i]!;
    valueStart += count;
  }
  const end = valueStart + length;
  if (end > limit) throw new Error("DER truncated");
  return { tag, start: at, valueStart, end };
}

/**
 * The DER bytes of the certificate's subjectPublicKeyInfo.
 * @throws Error when the certificate is not well-formed DER.
 */
export function spkiOf(certificate: Uint8Array): Uint8Array {
  const cert = readTlv(certificate, 0, certificate.length);
  if (cert.tag !== 0x30) throw new Error("certificate is not a SEQUENCE");
  const tbs = readTlv(certificate, cert.valueStart, cert.end);
  if (tbs.tag !== 0x30) throw new Error("tbsCertificate is not a SEQUENCE");
  let at = tbs.valueStart;
  let field = readTlv(certificate, at, tbs.end);
  if (field.tag === 0xa0) field = readTlv(certificate, (at = field.end), tbs.end); // [0] version
  // serialNumber, signature, issuer, validity, subject, then subjectPublicKeyInfo (RFC 5280 §4.1)
  for (let i = 0; i < 5; i++) field = readTlv(certificate, (at = field.end), tbs.end);
  if (field.tag !== 0x30) throw new Error("subjectPublicKeyInfo is not a SEQUENCE");
  return certificate.slice(field.start, field.end);
}

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Standard base64 with padding (RFC 4648 §4). */
export function base64(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += BASE64[(n >> 18) & 63]! + BASE64[(n >> 12) & 63]!;
    out += i + 1 < bytes.length ? BASE64[(n >> 6) & 63]! : "=";
    out += i + 2 < bytes.length ? BASE64[n & 63]! : "=";
  }
  return out;
}

/** True when the certificate's SPKI digest is one of `pins` (base64 SHA-256). */
export function matchesPin(certificate: Uint8Array, pins: readonly string[], sha256: (data: Uint8Array) => Uint8Array): boolean {
  const pin = base64(sha256(spkiOf(certificate)));
  return pins.includes(pin);
}
