/**
 * The firmware's HTTPS identity in the KeyStore: a P-256 key and self-signed certificate valid at most
 * 825 days, made on first boot and replaced when due — at boot, and by main.ts's checks once the clock
 * is trusted. A replacement is staged and then copied over, so power loss at any step leaves the old or
 * the new pair whole. Owners pin the SHA-256 fingerprint, which the console prints at boot and on every
 * replacement. The native generator is handed in (modules/tls-server on the device, a fake in tests).
 */
import type { Clock, Crypto, KeyStore } from "../../src/ports.js";

/** The longest validity made or kept: src/config.ts CERT_MAX_DAYS and TLS_PUMP_CERT_MAX_DAYS (tested equal). */
export const CERT_MAX_DAYS = 825;
/** Certificate policy defaults: a new certificate is valid this long, and replaced this close to expiry. */
export const CERT_VALIDITY_DAYS = CERT_MAX_DAYS;
export const CERT_RENEW_DAYS = 30;
/** Before SNTP the board's clock guesses; a certificate never starts before this (2026-01-01). */
const CERT_FLOOR_MS = 1_767_225_600_000; // Date.UTC(2026, 0, 1), a literal for the preload
const DAY = 86_400_000;

const KEY_NAME = "tls.key";
const CERT_NAME = "tls.crt";
const UNTIL_NAME = "tls.until";
/** A replacement is staged under these names first, then copied over (see commitStaged). */
export const STAGED = Object.freeze([[KEY_NAME, "tls.key.new"], [CERT_NAME, "tls.crt.new"], [UNTIL_NAME, "tls.until.new"]] as const);

/** What the board's TLS module offers: modules/tls-server's TLSIdentity on the device. */
export interface TlsNative<I> {
  /** A fresh key and certificate, valid between two "YYYYMMDDhhmmss" UTC stamps. @throws Error on failure. */
  generate(commonName: string, notBefore: string, notAfter: string): { key: ArrayBuffer; certificate: ArrayBuffer };
  /** Parses a pair for serving. @throws Error when it is corrupt or mismatched. */
  open(certificate: Uint8Array, key: Uint8Array): I;
}

export interface IdentityContext<I> {
  readonly keys: KeyStore;
  readonly crypto: Crypto;
  readonly clock: Clock;
  readonly native: TlsNative<I>;
  readonly commonName: string;
  readonly policy?: CertPolicy;
}

export interface ServerIdentity<I = unknown> {
  readonly identity: I;
  /** SHA-256 of the certificate DER, hex with colons (as `openssl x509 -fingerprint -sha256` prints it). */
  readonly fingerprint: string;
  /** Expiry, ms since the epoch; 0 for a certificate from a build that did not record it. */
  readonly notAfter: number;
  /** Present when the stored certificate was replaced: its fingerprint and why. */
  readonly replaced?: { readonly previous: string; readonly why: "expiring" | "too-long" };
}

export interface CertPolicy {
  readonly validityDays?: number;
  readonly renewDays?: number;
}

function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, "").slice(0, 14);
}

function fingerprintOf(crypto: Crypto, certificate: Uint8Array): string {
  return Array.from(crypto.sha256(certificate), (b) => (b < 16 ? "0" : "") + b.toString(16).toUpperCase()).join(":");
}

function untilBytes(ms: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, ms);
  return out;
}

/** Copies a complete staged replacement over the live entries (idempotent), or drops a partial one. */
function commitStaged(keys: KeyStore): void {
  const staged = STAGED.map(([, name]) => keys.get(name));
  if (staged.every((v) => v !== undefined)) STAGED.forEach(([live], i) => keys.set(live, staged[i]!));
  for (const [, name] of STAGED) keys.delete(name);
}

/** A fresh identity staged and committed; power loss at any step leaves the old or the new pair whole. */
function make<I>(c: IdentityContext<I>): { key: Uint8Array; certificate: Uint8Array; notAfter: number } {
  const { keys, clock } = c;
  const days = c.policy?.validityDays ?? CERT_VALIDITY_DAYS;
  if (!Number.isInteger(days) || days < 2 || days > CERT_MAX_DAYS) throw new Error(`certificate validity must be 2-${CERT_MAX_DAYS} days`);
  const from = Math.max(clock.now(), CERT_FLOOR_MS);
  const notAfter = from + days * DAY;
  const made = c.native.generate(c.commonName, stamp(from), stamp(notAfter));
  const key = new Uint8Array(made.key);
  const certificate = new Uint8Array(made.certificate);
  keys.set("tls.key.new", key);
  keys.set("tls.crt.new", certificate);
  keys.set("tls.until.new", untilBytes(notAfter));
  commitStaged(keys);
  return { key, certificate, notAfter: Math.floor(notAfter / 1000) * 1000 };
}

/** Why the stored certificate must go at boot, or undefined to keep it. */
function due(clock: Clock, notAfter: number, renewDays: number): "expiring" | "too-long" | undefined {
  if (notAfter === 0) return "too-long"; // an older build's 2025-2049 certificate
  return clock.isSet() && notAfter - clock.now() <= renewDays * DAY ? "expiring" : undefined;
}

function open<I>(c: IdentityContext<I>, key: Uint8Array, certificate: Uint8Array, notAfter: number): ServerIdentity<I> {
  const identity = c.native.open(certificate, key);
  key.fill(0);
  return { identity, fingerprint: fingerprintOf(c.crypto, certificate), notAfter };
}

/**
 * Loads the HTTPS identity, generating one on first boot and replacing a stored one that is due.
 * @throws Error when the stored pair is corrupt (refuse rather than silently replace the owner's pin).
 */
export function loadServerIdentity<I>(c: IdentityContext<I>): ServerIdentity<I> {
  const { keys } = c;
  commitStaged(keys); // finish (or drop) a replacement cut short by power loss
  const key = keys.get(KEY_NAME);
  const certificate = keys.get(CERT_NAME);
  if (key === undefined || certificate === undefined) {
    const made = make(c);
    return open(c, made.key, made.certificate, made.notAfter);
  }
  const until = keys.get(UNTIL_NAME);
  const notAfter = until?.length === 8 ? new DataView(until.buffer, until.byteOffset, 8).getFloat64(0) : 0;
  const why = due(c.clock, notAfter, c.policy?.renewDays ?? CERT_RENEW_DAYS);
  if (why === undefined) return open(c, key, certificate, notAfter);
  const previous = fingerprintOf(c.crypto, certificate);
  key.fill(0);
  const made = make(c);
  return { ...open(c, made.key, made.certificate, made.notAfter), replaced: { previous, why } };
}

/** The daily check: a replacement when the clock is trusted and `current` expires within renewDays. */
export function renewServerIdentityIfDue<I>(c: IdentityContext<I>, current: ServerIdentity<I>): ServerIdentity<I> | undefined {
  if (due(c.clock, current.notAfter, c.policy?.renewDays ?? CERT_RENEW_DAYS) === undefined) return undefined;
  const made = make(c);
  return { ...open(c, made.key, made.certificate, made.notAfter), replaced: { previous: current.fingerprint, why: "expiring" } };
}
