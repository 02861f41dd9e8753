/**
 * Admin accounts, kept in the KeyStore (NVS on the ESP32): one key per account (`acct.<name>`) and
 * an index (`acct-index`). A password is stored only as PBKDF2-HMAC-SHA256(password, 16-byte
 * random salt, iterations) — never in clear, never logged. The TOTP secret is stored as is (the
 * device must compute codes; NVS encryption protects it on the chip), recovery codes only as
 * HMAC-SHA256(TOTP secret, code). The lockout flag persists, so a reboot does not lift a lockout.
 */
import type { Crypto, KeyStore, Random } from "../ports.js";
import type { Role } from "./routes.js";
import { ROLES } from "./routes.js";
import { constantTimeEqual, fromBase64, fromUtf8, toBase64, utf8 } from "../util/bytes.js";
import { base32Encode, otpauthUri, TOTP } from "./totp.js";

/**
 * PBKDF2 rounds for new passwords: about 0.6 s of login on the ESP32 by the estimate in DESIGN.md
 * "Admin accounts, MFA and sessions" (xsnap figures measured, the chip's scaled, not measured). Each
 * account keeps the count it was hashed with, so changing this only affects new or changed passwords.
 */
export const PBKDF2_ITERATIONS = 4096;
export const MAX_ACCOUNTS = 8;
export const RECOVERY_CODES = 10;
/** Account names: a lower-case letter, then up to 9 of [a-z0-9_-] (the KeyStore key is `acct.<name>`). */
export const ACCOUNT_NAME = /^[a-z][a-z0-9_-]{0,9}$/;
export const PASSWORD_MIN = 10;
export const PASSWORD_MAX = 128;

const INDEX_KEY = "acct-index";
const key = (name: string): string => `acct.${name}`;

export interface Account {
  readonly name: string;
  readonly role: Role;
  readonly salt: Uint8Array;
  readonly hash: Uint8Array;
  readonly iterations: number;
  /** TOTP secret, once enrolled. */
  readonly totp?: Uint8Array;
  /** The last TOTP step accepted (a code of this step or earlier is refused). */
  readonly lastStep: number;
  /** HMAC-SHA256(totp secret, code) of the unused recovery codes. */
  readonly recovery: readonly Uint8Array[];
  readonly locked: boolean;
}

/** What enrolment hands the person once: the key URI (the page renders the QR) and the recovery codes. */
export interface Enrolment {
  readonly secret: string;
  readonly uri: string;
  readonly recoveryCodes: readonly string[];
}

/** Whether a role must present a TOTP code at login (owner and installer). */
export function needsTotp(role: Role): boolean {
  return role === "owner" || role === "installer";
}

/** Why a password is not acceptable, or undefined. */
export function passwordProblem(password: unknown): string | undefined {
  if (typeof password !== "string") return "must be a string";
  const n = [...password].length;
  if (n < PASSWORD_MIN) return `must be at least ${PASSWORD_MIN} characters`;
  if (n > PASSWORD_MAX) return `must be at most ${PASSWORD_MAX} characters`;
  return undefined;
}

function encode(a: Account): Uint8Array {
  return utf8(
    JSON.stringify({
      v: 1,
      name: a.name,
      role: a.role,
      salt: toBase64(a.salt),
      hash: toBase64(a.hash),
      iterations: a.iterations,
      ...(a.totp ? { totp: toBase64(a.totp) } : {}),
      lastStep: a.lastStep,
      recovery: a.recovery.map((r) => toBase64(r)),
      locked: a.locked,
    }),
  );
}

function decode(bytes: Uint8Array): Account {
  const o = JSON.parse(fromUtf8(bytes)) as Record<string, unknown>;
  if (o.v !== 1 || typeof o.name !== "string" || !(ROLES as readonly unknown[]).includes(o.role) || typeof o.salt !== "string" || typeof o.hash !== "string" || typeof o.iterations !== "number") {
    throw new Error("account record is malformed");
  }
  return {
    name: o.name,
    role: o.role as Role,
    salt: fromBase64(o.salt),
    hash: fromBase64(o.hash),
    iterations: o.iterations,
    ...(typeof o.totp === "string" ? { totp: fromBase64(o.totp) } : {}),
    lastStep: typeof o.lastStep === "number" ? o.lastStep : -1,
    recovery: Array.isArray(o.recovery) ? o.recovery.filter((r): r is string => typeof r === "string").map((r) => fromBase64(r)) : [],
    locked: o.locked === true,
  };
}

export interface AccountStoreOptions {
  readonly keys: KeyStore;
  readonly crypto: Crypto;
  readonly random: Random;
  /** PBKDF2 rounds for new passwords (tests lower it); default {@link PBKDF2_ITERATIONS}. */
  readonly iterations?: number;
  /** Issuer shown by authenticator apps. */
  readonly issuer?: string;
}

export class AccountStore {
  readonly #o: AccountStoreOptions;
  readonly #iterations: number;
  readonly #accounts = new Map<string, Account>();
  /** A salt and hash no password is checked against for real: unknown names cost the same work. */
  readonly #dummy: { salt: Uint8Array; iterations: number };

  /** @throws Error when a stored account cannot be read (the store is not guessed at: fail closed). */
  constructor(o: AccountStoreOptions) {
    this.#o = o;
    this.#iterations = o.iterations ?? PBKDF2_ITERATIONS;
    if (!Number.isInteger(this.#iterations) || this.#iterations < 1) throw new Error("iterations must be a positive integer");
    const index = o.keys.get(INDEX_KEY);
    const names = index ? (JSON.parse(fromUtf8(index)) as string[]) : [];
    for (const name of names) {
      const raw = o.keys.get(key(name));
      if (!raw) throw new Error(`account "${name}" is in the index but not in the key store`);
      this.#accounts.set(name, decode(raw));
    }
    this.#dummy = { salt: new Uint8Array(16), iterations: this.#iterations };
  }

  get size(): number {
    return this.#accounts.size;
  }

  get(name: string): Account | undefined {
    return this.#accounts.get(name);
  }

  list(): Account[] {
    return [...this.#accounts.values()];
  }

  /** Owners that can still log in (not locked). */
  activeOwners(): number {
    return this.list().filter((a) => a.role === "owner" && !a.locked).length;
  }

  /**
   * Creates an account. Owners and installers are enrolled in TOTP at once: the enrolment is returned.
   * @throws Error naming the problem (name taken or malformed, bad password, too many accounts).
   */
  create(name: string, role: Role, password: string): Enrolment | undefined {
    if (!ACCOUNT_NAME.test(name)) throw new Error(`account name must match ${ACCOUNT_NAME.source}`);
    if (this.#accounts.has(name)) throw new Error(`account "${name}" exists`);
    if (this.#accounts.size >= MAX_ACCOUNTS) throw new Error(`at most ${MAX_ACCOUNTS} accounts`);
    if (!ROLES.includes(role)) throw new Error(`role must be one of ${ROLES.join(", ")}`);
    const problem = passwordProblem(password);
    if (problem) throw new Error(`password ${problem}`);
    const salt = this._random(16);
    let account: Account = { name, role, salt, hash: this._hash(password, salt, this.#iterations), iterations: this.#iterations, lastStep: -1, recovery: [], locked: false };
    let enrolment: Enrolment | undefined;
    if (needsTotp(role)) ({ account, enrolment } = this._enrol(account));
    this._put(account);
    this.#o.keys.set(INDEX_KEY, utf8(JSON.stringify([...this.#accounts.keys()])));
    return enrolment;
  }

  /** Removes an account; false when there is none. */
  remove(name: string): boolean {
    if (!this.#accounts.delete(name)) return false;
    this.#o.keys.set(INDEX_KEY, utf8(JSON.stringify([...this.#accounts.keys()])));
    this.#o.keys.delete(key(name));
    return true;
  }

  /** Whether `password` is the account's (constant time; unknown names cost the same PBKDF2 work). */
  checkPassword(name: string, password: string): boolean {
    const a = this.#accounts.get(name);
    const salt = a?.salt ?? this.#dummy.salt;
    const got = this._hash(password, salt, a?.iterations ?? this.#dummy.iterations);
    return a !== undefined && constantTimeEqual(got, a.hash);
  }

  /** Sets a new password. @throws Error when it is not acceptable or the account is unknown. */
  setPassword(name: string, password: string): void {
    const a = this._need(name);
    const problem = passwordProblem(password);
    if (problem) throw new Error(`password ${problem}`);
    const salt = this._random(16);
    this._put({ ...a, salt, hash: this._hash(password, salt, this.#iterations), iterations: this.#iterations });
  }

  /** New TOTP secret and recovery codes (the old ones stop working). */
  enrol(name: string): Enrolment {
    const { account, enrolment } = this._enrol(this._need(name));
    this._put(account);
    return enrolment;
  }

  /** Forgets the TOTP secret and recovery codes (an owner's "reset MFA"); the next login of an owner or installer needs enrolment. */
  resetMfa(name: string): void {
    const a = this._need(name);
    const { totp: _gone, ...rest } = a;
    this._put({ ...rest, lastStep: -1, recovery: [] });
  }

  /** Records the accepted TOTP step (replay protection). */
  acceptStep(name: string, step: number): void {
    const a = this._need(name);
    this._put({ ...a, lastStep: step });
  }

  /** Uses a recovery code: true (and the code is gone) when it is one of the account's. */
  useRecoveryCode(name: string, code: string): boolean {
    const a = this.#accounts.get(name);
    if (!a?.totp) return false;
    const mac = this.#o.crypto.hmacSha256(a.totp, utf8(normalizeRecovery(code)));
    let hit = -1;
    a.recovery.forEach((r, i) => {
      if (constantTimeEqual(r, mac) && hit < 0) hit = i;
    });
    if (hit < 0) return false;
    this._put({ ...a, recovery: a.recovery.filter((_, i) => i !== hit) });
    return true;
  }

  setLocked(name: string, locked: boolean): boolean {
    const a = this.#accounts.get(name);
    if (!a) return false;
    if (a.locked !== locked) this._put({ ...a, locked });
    return true;
  }

  private _need(name: string): Account {
    const a = this.#accounts.get(name);
    if (!a) throw new Error(`no account "${name}"`);
    return a;
  }

  private _enrol(a: Account): { account: Account; enrolment: Enrolment } {
    const secret = this._random(TOTP.secretBytes);
    const codes: string[] = [];
    for (let i = 0; i < RECOVERY_CODES; i++) {
      const c = base32Encode(this._random(7)).slice(0, 10).toLowerCase();
      codes.push(`${c.slice(0, 5)}-${c.slice(5)}`);
    }
    // Keyed with the enrolment's TOTP secret: random per enrolment, and gone with it.
    const recovery = codes.map((c) => this.#o.crypto.hmacSha256(secret, utf8(normalizeRecovery(c))));
    return {
      account: { ...a, totp: secret, lastStep: -1, recovery },
      enrolment: { secret: base32Encode(secret), uri: otpauthUri(this.#o.issuer ?? "Portcullis", a.name, secret), recoveryCodes: codes },
    };
  }

  private _put(a: Account): void {
    this.#o.keys.set(key(a.name), encode(a));
    this.#accounts.set(a.name, a);
  }

  private _hash(password: string, salt: Uint8Array, iterations: number): Uint8Array {
    return this.#o.crypto.pbkdf2Sha256(utf8(password), salt, iterations, 32);
  }

  private _random(n: number): Uint8Array {
    const b = new Uint8Array(n);
    this.#o.random.fill(b);
    return b;
  }
}

/** Recovery codes compare without case, spaces or dashes ("ABCDE-FGHIJ" = "abcdefghij"). */
export function normalizeRecovery(code: string): string {
  return code.replace(/[\s-]/g, "").toLowerCase();
}

/** Whether a login's second factor looks like a recovery code rather than a TOTP code. */
export function isRecoveryCode(code: string): boolean {
  return /^[a-z2-7]{10}$/.test(normalizeRecovery(code));
}
