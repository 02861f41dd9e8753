/**
 * The Node board's HTTPS identity in `<data>/https/`: a self-signed ECDSA P-256 certificate made at
 * first boot, valid at most CERT_MAX_DAYS, and replaced — at boot and by the board's daily check —
 * when it expires within `renewDays`, is valid longer than the cap (an older build's 10-year one),
 * or its key and certificate do not match (a crash between the two writes). The caller announces a
 * replacement: the owner's pin changes.
 */
import { X509Certificate, createPrivateKey } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { CERT_MAX_DAYS } from "../../src/config.js";
import { certFingerprint, selfSigned } from "./pki.js";

const DAY = 86_400_000;

export interface Identity {
  readonly keyPem: string;
  readonly certPem: string;
  /** SHA-256 of the certificate's DER, uppercase hex with colons (as `openssl x509 -fingerprint -sha256` prints). */
  readonly fingerprint: string;
  /** Expiry, ms since the epoch. */
  readonly notAfter: number;
}

export interface CertPolicy {
  /** Validity of a new certificate in days (at most CERT_MAX_DAYS). */
  readonly validityDays?: number;
  /** Replace when it expires within this many days. */
  readonly renewDays?: number;
  readonly commonName?: string;
}

export const CERT_DEFAULTS = Object.freeze({ validityDays: CERT_MAX_DAYS, renewDays: 30, commonName: "portcullis.local" });

/** Why a stored certificate was replaced. */
export type ReplaceReason = "expiring" | "too-long" | "mismatched";

export interface LoadedIdentity {
  readonly identity: Identity;
  /** Present when a stored certificate was replaced: its fingerprint and why. */
  readonly replaced?: { readonly previous: string; readonly why: ReplaceReason };
}

function files(dataDir: string): { dir: string; key: string; cert: string } {
  const dir = path.join(dataDir, "https");
  return { dir, key: path.join(dir, "server.key"), cert: path.join(dir, "server.crt") };
}

function parse(keyPem: string, certPem: string): { identity: Identity; notBefore: number; matches: boolean } {
  const x = new X509Certificate(certPem);
  let matches = false;
  try {
    matches = x.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    matches = false;
  }
  const notAfter = Date.parse(x.validTo);
  return { identity: { keyPem, certPem, fingerprint: certFingerprint(certPem), notAfter }, notBefore: Date.parse(x.validFrom), matches };
}

/** Why `stored` must be replaced at `now`, or undefined to keep it. */
function due(stored: ReturnType<typeof parse>, renewDays: number, now: number): ReplaceReason | undefined {
  if (!stored.matches) return "mismatched";
  if (stored.identity.notAfter - now <= renewDays * DAY) return "expiring";
  if (stored.identity.notAfter - stored.notBefore > CERT_MAX_DAYS * DAY + 3600_000) return "too-long";
  return undefined;
}

async function make(dataDir: string, policy: CertPolicy, now: number): Promise<Identity> {
  const days = policy.validityDays ?? CERT_DEFAULTS.validityDays;
  if (!Number.isInteger(days) || days < 2 || days > CERT_MAX_DAYS) throw new Error(`certificate validity must be 2-${CERT_MAX_DAYS} days, got ${days}`);
  const name = policy.commonName ?? CERT_DEFAULTS.commonName;
  const made = await selfSigned(name, [name, "localhost", "127.0.0.1"], days, now);
  const f = files(dataDir);
  mkdirSync(f.dir, { recursive: true, mode: 0o700 });
  // Each file replaced whole (write, then rename); a crash between the two is caught as "mismatched".
  writeFileSync(f.key + ".new", made.keyPem, { mode: 0o600 });
  renameSync(f.key + ".new", f.key);
  writeFileSync(f.cert + ".new", made.certPem, { mode: 0o644 });
  renameSync(f.cert + ".new", f.cert);
  return { keyPem: made.keyPem, certPem: made.certPem, fingerprint: made.fingerprint, notAfter: made.cert.notAfter.getTime() };
}

/**
 * Loads the identity, making one on first boot or replacing a stored one that is due.
 * @throws Error when the policy is out of range or the files cannot be written.
 */
export async function loadOrCreateIdentity(dataDir: string, policy: CertPolicy = {}, now = Date.now()): Promise<LoadedIdentity> {
  const f = files(dataDir);
  if (!existsSync(f.key) || !existsSync(f.cert)) return { identity: await make(dataDir, policy, now) };
  let stored: ReturnType<typeof parse> | undefined;
  try {
    stored = parse(readFileSync(f.key, "utf8"), readFileSync(f.cert, "utf8"));
  } catch {
    stored = undefined; // unparseable certificate: replaced below, announced as mismatched
  }
  if (stored) {
    const why = due(stored, policy.renewDays ?? CERT_DEFAULTS.renewDays, now);
    if (why === undefined) return { identity: stored.identity };
    return { identity: await make(dataDir, policy, now), replaced: { previous: stored.identity.fingerprint, why } };
  }
  return { identity: await make(dataDir, policy, now), replaced: { previous: "unreadable", why: "mismatched" } };
}

/** The daily check: a replacement for `current` when it is due at `now`, else undefined. */
export async function renewIdentityIfDue(dataDir: string, current: Identity, policy: CertPolicy = {}, now = Date.now()): Promise<LoadedIdentity | undefined> {
  if (current.notAfter - now > (policy.renewDays ?? CERT_DEFAULTS.renewDays) * DAY) return undefined;
  return { identity: await make(dataDir, policy, now), replaced: { previous: current.fingerprint, why: "expiring" } };
}
