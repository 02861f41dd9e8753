/**
 * The port contract: everything the portable core needs from a board.
 *
 * The core (`src/`) imports nothing but `src/`. A host (`hosts/node/`, `hosts/moddable/`) implements
 * these interfaces and hands them to the core in a {@link Board}. Like littlefs's `struct lfs_config`
 * and lwIP's `sys.h`, each member states its contract: what it may throw, what is durable when it
 * returns, and what may be called after `close()`. Contract suites in `test/contract/` hold every
 * implementation to the same rules.
 *
 * All calls are synchronous unless they return a promise: XS on the ESP32 offers synchronous flash,
 * crypto and key-store APIs, and the core keeps its hot path free of promise allocation.
 */

/** Wall-clock and monotonic time. */
export interface Clock {
  /**
   * Wall-clock milliseconds since the Unix epoch, a whole number. Before the board has a trusted time (SNTP, RTC)
   * this is the board's best guess and {@link Clock.isSet} returns false; audit records carry that
   * flag so a reader knows the time is not evidence. Never throws.
   */
  now(): number;
  /** Whole milliseconds from an arbitrary origin that never goes backwards. For timeouts and rates. */
  monotonic(): number;
  /** True once wall-clock time comes from a trusted source. */
  isSet(): boolean;
  /**
   * Optional, for diagnostics only (the `profile` command, src/util/meter.ts): CPU time this
   * process has used, in microseconds from an arbitrary origin. A board without a CPU clock leaves it out.
   */
  cpuMicros?(): number;
}

/** Opaque timer handle. */
export type TimerId = { readonly __timer: true };

/**
 * One-shot and repeating timers. Callbacks run on the event loop, never re-entrantly inside the call
 * that scheduled them. `cancel` of an unknown or fired id is harmless. Callbacks must not throw; a
 * host may log and swallow what they throw.
 */
export interface Timers {
  /** Calls `callback` once after at least `ms` milliseconds. */
  after(ms: number, callback: () => void): TimerId;
  /** Calls `callback` every `ms` milliseconds until cancelled. */
  every(ms: number, callback: () => void): TimerId;
  cancel(id: TimerId): void;
}

/** A cryptographically secure random source (keys, nonces, tokens). */
export interface Random {
  /**
   * Fills `bytes` with secure random bytes.
   * @throws Error when the board has no secure source (fail closed: never fall back to a weak one).
   */
  fill(bytes: Uint8Array): void;
}

/** A P-256 key pair: 32-byte big-endian private scalar, 65-byte uncompressed public point (0x04‖X‖Y). */
export interface P256KeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/**
 * Cryptographic primitives. Implementations come from the platform (node:crypto, Moddable `crypt`,
 * `@noble/*` in the XS test run); the core composes them and never implements a primitive itself.
 * Inputs are never modified; outputs are fresh arrays the caller owns.
 */
export interface Crypto {
  /** SHA-256 (FIPS 180-4). */
  sha256(data: Uint8Array): Uint8Array;
  /** HMAC-SHA256 (RFC 2104). Any key length. */
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  /**
   * HMAC-SHA1 (RFC 2104), 20 bytes. Only for TOTP (RFC 6238's default, what authenticator apps
   * use); never for anything new.
   */
  hmacSha1(key: Uint8Array, data: Uint8Array): Uint8Array;
  /**
   * PBKDF2-HMAC-SHA256 (RFC 8018 §5.2): `length` bytes derived from `password` and `salt` with
   * `iterations` rounds. Slow on purpose: for admin passwords at login.
   * @throws RangeError when `iterations` or `length` is not a positive integer.
   */
  pbkdf2Sha256(password: Uint8Array, salt: Uint8Array, iterations: number, length: number): Uint8Array;
  /** HKDF-Extract with SHA-256 (RFC 5869 §2.2). An empty salt means 32 zero bytes. */
  hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array;
  /**
   * HKDF-Expand with SHA-256 (RFC 5869 §2.3).
   * @throws RangeError when `length` > 255 × 32.
   */
  hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  /**
   * AES-GCM encryption with a 16- or 32-byte key and a 12-byte nonce; returns ciphertext ‖ 16-byte tag.
   * @throws RangeError on a bad key or nonce length.
   */
  aesGcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  /**
   * AES-GCM decryption of ciphertext ‖ tag. Returns `undefined` when authentication fails (an expected
   * outcome, not an exception).
   * @throws RangeError on a bad key or nonce length.
   */
  aesGcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | undefined;
  /** A fresh P-256 key pair from the board's secure random source. */
  p256Generate(): P256KeyPair;
  /**
   * The public point for a private scalar.
   * @throws Error when the scalar is zero or not below the group order.
   */
  p256PublicKey(privateKey: Uint8Array): Uint8Array;
  /**
   * ECDH on P-256: the 32-byte X coordinate of `privateKey × peerPublicKey`.
   * @throws Error when the peer point is not a valid uncompressed point on the curve.
   */
  p256Ecdh(privateKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array;
}

/**
 * NOR flash, as on the ESP32's SPI flash (and littlefs's block device contract).
 *
 * - The partition is `size` bytes, a whole number of `sectorSize` (4096) erase sectors.
 * - `erase(sector)` sets every byte of that sector to 0xFF. It is slow on the chip (45–400 ms): callers
 *   erase ahead of need, never on the per-message path.
 * - `program(offset, data)` can only clear bits (1→0). Programming a byte whose current value has a 0
 *   where `data` has a 1 is an error: the region "must have previously been erased". `offset` and
 *   `data.length` are multiples of `programSize`.
 * - Once `program` or `erase` returns, the change is durable across power loss. A power cut during the
 *   call may leave the affected range torn (some bits cleared, some not) — callers must detect that.
 *
 * @throws FlashError (see `src/flash/nor.ts`) on a rule violation, an out-of-range access, or an
 * injected fault; the board's flash is never left in a state the rules forbid.
 */
export interface Flash {
  readonly size: number;
  readonly sectorSize: number;
  readonly programSize: number;
  read(offset: number, length: number): Uint8Array;
  program(offset: number, data: Uint8Array): void;
  erase(sector: number): void;
  /**
   * Optional. Where programs and erases survive the loss of this program but not yet of the host's
   * power (a flash image in a file: written, not yet fsync'ed), makes every one made so far durable
   * across both before it returns. Callers call it at acknowledgement points (a group commit), never
   * per trim. A chip's flash, whose program is durable when it returns, leaves it out.
   */
  sync?(): void;
  /**
   * Optional, the asynchronous form of {@link Flash.sync}: resolves once every program and erase that
   * returned before the call is durable across the host's power loss too; a program made after the
   * call is not covered (call again). Calls made in one turn of the event loop may share one flush
   * (the Node board: one fdatasync per turn, off the event loop). Rejects when the host cannot make
   * them durable (the caller then must not acknowledge them). Where it exists, the audit log and the
   * queue close their group commits at the end of the current job and acknowledge an append only
   * after this resolved for it; a chip's flash, durable when `program` returns, leaves it out.
   */
  durable?(): Promise<void>;
}

/** One device-side TCP connection (a home device speaking MQTT to the gateway). */
export interface DeviceSocket {
  /** Peer address for the audit log, e.g. "192.168.1.20:50122". */
  readonly remote: string;
  /**
   * Queues bytes for sending. Returns false when the host's send buffer is above its high-water mark;
   * the core then stops reading for this connection until {@link SocketHandler.onWritable}. After
   * `close()` this is a no-op that returns false.
   */
  write(data: Uint8Array): boolean;
  /** Flushes what was written and closes. Harmless to call twice; no callback follows it. */
  close(): void;
  /**
   * Optional: stops reading from the peer (TCP flow control then holds the device back). Bytes the host
   * already handed over stay valid; no further `onData` follows until `resume()`. A peer's close may be
   * reported only after `resume()` when unread bytes precede it (a reset is reported at once). Harmless
   * when already paused or after `close()`. A socket without `pause` is read regardless; the core then
   * buffers up to its own bound and closes the connection beyond it.
   */
  pause?(): void;
  /** Optional, with `pause`: reading continues, bytes held meanwhile arrive through `onData`. Harmless when not paused. */
  resume?(): void;
}

/** What the core hands back for each accepted connection. */
export interface SocketHandler {
  /** Bytes arrived, in order. The array is only valid during the call. */
  onData(data: Uint8Array): void;
  /** The peer closed or the connection failed; called at most once, never after `close()`. */
  onClose(): void;
  /** The send buffer drained below its low-water mark. */
  onWritable?(): void;
}

/** The device-side listener (ECMA-419 `embedded:io/socket/listener` on the firmware). */
export interface Network {
  /**
   * Listens on `port` and calls `onConnection` for each accepted socket.
   * @throws Error when the port cannot be bound.
   */
  listen(options: { port: number; onConnection(socket: DeviceSocket): SocketHandler }): Listener;
}

export interface Listener {
  /** The bound port (useful when 0 was asked for). */
  readonly port: number;
  /** Stops accepting; open connections stay. Harmless twice. */
  close(): void;
}

/** Why an uplink attempt or session failed. `tls` covers verification and pin mismatches. */
export type UplinkFailure = "tls" | "network" | "refused" | "protocol" | "closed";

/** Options for one uplink connection to a vendor's MQTT broker over TLS. */
export interface UplinkOptions {
  readonly host: string;
  readonly port: number;
  readonly clientId: string;
  readonly username?: string;
  readonly password?: string;
  /**
   * Base64 SHA-256 digests of acceptable SubjectPublicKeyInfo (RFC 7469 style). When non-empty, the
   * leaf's SPKI must match one, in addition to normal chain verification.
   */
  readonly pins?: readonly string[];
  /** Keepalive in seconds. */
  readonly keepalive: number;
  /** The session is up: publish may be called. */
  onConnect(): void;
  /**
   * The attempt or session ended. Called exactly once per `connect()`, also after `onConnect` when
   * the session drops. Not called after the core's own `close()`.
   */
  onClose(reason: UplinkFailure, detail: string): void;
}

/** One MQTT session to a vendor. Certificate verification is always on; there is no option to turn it off. */
export interface UplinkSession {
  /**
   * Publishes one message. For QoS 1 the promise resolves on PUBACK; for QoS 0 once handed to TLS.
   * Rejects when the session closes first; the caller then still owns the message.
   */
  publish(topic: string, payload: Uint8Array, qos: 0 | 1): Promise<void>;
  /** Closes the session. Harmless twice; no callback follows it. */
  close(): void;
}

export interface Uplink {
  /** Starts one connection attempt. Never throws for network conditions: they arrive in `onClose`. */
  connect(options: UplinkOptions): UplinkSession;
}

/**
 * Options for the bridge-mode link to the home's own MQTT broker (Mosquitto, ...): the gateway is a
 * client there and takes device messages from its subscriptions (src/bridge/home-broker.ts).
 */
export interface HomeBrokerOptions {
  /** `mqtt://host:port` (plain TCP, for a broker on the same host or LAN) or `mqtts://host:port` (TLS, verified). */
  readonly url: string;
  readonly clientId: string;
  readonly username?: string;
  readonly password?: string;
  /** Trust anchors (PEM) for `mqtts`; absent: the board's roots. Verification is always on. */
  readonly ca?: string;
  /** Topic filters subscribed at QoS 1 after each CONNACK. */
  readonly subscribe: readonly string[];
  /** Keepalive in seconds. */
  readonly keepalive: number;
  /** The session is up and the subscriptions are granted. */
  onConnect(): void;
  /**
   * One message from the home broker. A QoS 1 message is acknowledged only once the promise
   * resolves (so a gateway that fails closed leaves it with the home broker); the payload is the
   * caller's to keep.
   */
  onMessage(topic: string, payload: Uint8Array): Promise<void>;
  /** The attempt or session ended; exactly once per `connect()`, never after the core's own `close()`. */
  onClose(reason: UplinkFailure, detail: string): void;
}

export interface HomeBrokerSession {
  /** Closes the session. Harmless twice; no callback follows it. */
  close(): void;
}

/** The client side of bridge mode. Never reconnects by itself: the core owns backoff. */
export interface HomeBroker {
  /** Starts one connection attempt. Network conditions arrive in `onClose`, never as a throw. */
  connect(options: HomeBrokerOptions): HomeBrokerSession;
}

/** The serial console: lines in, text out. */
export interface Console {
  /** Starts delivering complete input lines (without the line ending). */
  start(onLine: (line: string) => void): void;
  /** Writes text as is (the core adds "\n"). Never throws. */
  write(text: string): void;
}

/**
 * A small persistent key store (NVS `preference` on the ESP32; files on the Node board).
 * Names are 1–15 characters of [a-z0-9._-]; values at most 4000 bytes. `set` is durable when it
 * returns. `delete` of a missing name is harmless. Destroyed keys are overwritten where the medium allows.
 */
export interface KeyStore {
  get(name: string): Uint8Array | undefined;
  /** @throws RangeError on a bad name or an oversized value. */
  set(name: string, value: Uint8Array): void;
  delete(name: string): void;
}

/** Everything a board provides, handed to the core at boot. */
export interface Board {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly random: Random;
  readonly crypto: Crypto;
  /** The audit partition. */
  readonly flash: Flash;
  readonly keys: KeyStore;
  readonly console: Console;
  readonly network: Network;
  readonly uplink: Uplink;
  /** Optional: bridge mode (gateway.json `homeBroker`). A board without it refuses that config at boot. */
  readonly homeBroker?: HomeBroker;
}
