/**
 * Board profiles: what a board promises to serve, and the limits that keep it inside its memory.
 *
 * Each profile is a promise (the home it serves: devices, integrations, sustained and burst rates)
 * and the named limits the core enforces so the gateway refuses what it cannot hold instead of
 * running out of heap: a device connect beyond `sessions` gets CONNACK 3 and an audit record, a
 * contract beyond `integrations` is blocked with a reason, an uplink keeps at most `uplinkWindow`
 * QoS 1 messages in flight per destination.
 *
 * The XS creation values (slot and chunk heaps, stack) that go with each profile live in
 * manifest.json (per platform); `heap` here records them so tests and the lin load run can check
 * that the manifest and the profile agree. DESIGN.md "Memory budget" explains each figure.
 *
 * gateway.json may lower a limit (`broker.*`, `limits.*`), never raise it above the profile.
 */

export type ProfileName = "esp32" | "esp32-psram" | "node";

export interface BoardLimits {
  /** Devices gateway.json may configure. */
  readonly devices: number;
  /** MQTT sessions connected at once; one more gets CONNACK 3 (server unavailable) and a record. */
  readonly sessions: number;
  /** Sockets accepted but not yet past CONNECT, in all. */
  readonly pendingConnections: number;
  /** QoS 1 publishes from one device awaiting PUBACK; beyond it the socket is not read. */
  readonly inflightPerDevice: number;
  /** Integrations (active contracts); one more is blocked at load with a reason. */
  readonly integrations: number;
  /** QoS 1 messages in flight per destination (vendor uplink), awaiting PUBACK. */
  readonly uplinkWindow: number;
  /** Vendor TLS connections held open at once (the rest wait, their queue on flash). */
  readonly uplinkConnections: number;
  /** Admin HTTPS connections at once. */
  readonly adminSessions: number;
  /** Bytes of messages held in RAM between the broker and the flash queue, in all. */
  readonly pipelineBytes: number;
  /** Per-device publish rate (token bucket) and burst. */
  readonly publishRatePerSec: number;
  readonly publishBurst: number;
  /** Retained messages the home broker keeps (RAM and the retained area on flash); one more is refused and counted. */
  readonly retainedMessages: number;
  /** Bytes of retained messages (topics + payloads) kept; must fit the flash area's live half (retained-flash.ts). */
  readonly retainedBytes: number;
}

export interface BoardPromise {
  /** The home this profile is sized for (what the load run offers). */
  readonly devices: number;
  readonly integrations: number;
  readonly sustainedMsgsPerSec: number;
  readonly burstMsgsPerSec: number;
  readonly burstSeconds: number;
}

export interface XsCreation {
  /** XS slot heap, in slots (16 bytes on ESP32, 32 on a 64-bit host). */
  readonly slots: number;
  /** XS chunk heap, bytes. */
  readonly chunk: number;
  /** XS stack, in slots. */
  readonly stack: number;
}

export interface BoardProfile {
  readonly name: ProfileName;
  readonly description: string;
  readonly promise: BoardPromise;
  readonly limits: BoardLimits;
  /** XS creation values of the firmware build (absent for the Node board, which has no fixed heap). */
  readonly heap?: XsCreation;
}

const ESP32: BoardProfile = Object.freeze({
  name: "esp32",
  description: "plain ESP32 without PSRAM (nodemcu): a small home",
  promise: Object.freeze({ devices: 8, integrations: 2, sustainedMsgsPerSec: 10, burstMsgsPerSec: 50, burstSeconds: 10 }),
  limits: Object.freeze({
    devices: 8,
    sessions: 8,
    pendingConnections: 4,
    inflightPerDevice: 4,
    integrations: 2,
    uplinkWindow: 4,
    uplinkConnections: 2,
    adminSessions: 1,
    pipelineBytes: 16 * 1024,
    publishRatePerSec: 10,
    publishBurst: 20,
    retainedMessages: 64,
    retainedBytes: 8 * 1024,
  }),
  // The SDK's own values for its ESP32 targets (nodemcu): 4,928 × 16-byte slots + 77 KiB of chunks,
  // about 154 KiB of the ~145 KiB ESP-IDF leaves free after Wi-Fi in its default configuration
  // (DESIGN.md "Memory budget": the plain ESP32 does not yet hold its promise).
  heap: Object.freeze({ slots: 4928, chunk: 78848, stack: 1024 }),
});

const ESP32_PSRAM: BoardProfile = Object.freeze({
  name: "esp32-psram",
  description: "ESP32 or ESP32-S3 with PSRAM (N8R8 module): a large home",
  promise: Object.freeze({ devices: 50, integrations: 8, sustainedMsgsPerSec: 50, burstMsgsPerSec: 200, burstSeconds: 10 }),
  limits: Object.freeze({
    devices: 50,
    sessions: 50,
    pendingConnections: 16,
    inflightPerDevice: 8,
    integrations: 8,
    uplinkWindow: 8,
    uplinkConnections: 8,
    adminSessions: 2,
    pipelineBytes: 128 * 1024,
    publishRatePerSec: 10,
    publishBurst: 20,
    retainedMessages: 256,
    retainedBytes: 24 * 1024,
  }),
  // In PSRAM (CONFIG_SPIRAM_USE_MALLOC, hosts/moddable/esp32-psram/sdkconfig): 2 MiB of slots + 2 MiB of
  // chunks of the N8R8 module's 8 MiB, so internal DRAM stays for lwIP, Wi-Fi and mbedTLS. Sized from
  // the lin load run (live peak 34,271 slots, 1.39 MB of chunks; DESIGN.md "Memory budget").
  heap: Object.freeze({ slots: 131072, chunk: 2097152, stack: 1024 }),
});

/**
 * The Node board: the large home's promise, with a simulator's room for admin sessions, the window and
 * the per-device publish rate (the simulator has no CPU budget to protect, and the benches measure the
 * pipeline at one device; a home on the Node board lowers it in gateway.json `limits`, as examples/home does).
 */
const NODE: BoardProfile = Object.freeze({
  name: "node",
  description: "the Node.js board simulator: the large home (esp32-psram's promise), no fixed heap",
  promise: ESP32_PSRAM.promise,
  limits: Object.freeze({
    ...ESP32_PSRAM.limits,
    pendingConnections: 16,
    uplinkWindow: 32,
    adminSessions: 16,
    pipelineBytes: 1024 * 1024,
    publishRatePerSec: 100_000,
    publishBurst: 100_000,
  }),
});

export const PROFILES: Readonly<Record<ProfileName, BoardProfile>> = Object.freeze({ esp32: ESP32, "esp32-psram": ESP32_PSRAM, node: NODE });

export const PROFILE_NAMES: readonly ProfileName[] = Object.freeze(["esp32", "esp32-psram", "node"] as ProfileName[]);

/** The profile of that name, or an error that lists the names. */
export function profileByName(name: string): BoardProfile {
  const p = (PROFILES as Readonly<Record<string, BoardProfile>>)[name];
  if (!p || !Object.prototype.hasOwnProperty.call(PROFILES, name)) {
    throw new RangeError(`unknown board profile "${name}"; one of ${PROFILE_NAMES.join(", ")}`);
  }
  return p;
}

/** Every key of {@link BoardLimits}, in the order `status` shows them. */
export const LIMIT_KEYS: readonly (keyof BoardLimits)[] = Object.freeze([
  "devices",
  "sessions",
  "pendingConnections",
  "inflightPerDevice",
  "integrations",
  "uplinkWindow",
  "uplinkConnections",
  "adminSessions",
  "pipelineBytes",
  "publishRatePerSec",
  "publishBurst",
] as (keyof BoardLimits)[]);

/** Whether `name` is a profile name. */
export function isProfileName(name: unknown): name is ProfileName {
  return typeof name === "string" && (PROFILE_NAMES as readonly string[]).includes(name);
}

/**
 * The limits a gateway runs with: the profile's, each lowered by `lower` where it names one.
 * @throws RangeError when a value is not a positive integer or exceeds the profile (a caller bug:
 * src/config.ts reports the same as config errors with their path).
 */
export function resolveLimits(profile: BoardProfile, lower?: Partial<BoardLimits>): BoardLimits {
  const out: Record<string, number> = {};
  for (const k of LIMIT_KEYS) {
    const max = profile.limits[k];
    const v = lower?.[k] ?? max;
    if (!Number.isInteger(v) || v < 1 || v > max) throw new RangeError(`limits.${k}: at most ${max} on the ${profile.name} profile, got ${v}`);
    out[k] = v;
  }
  return Object.freeze(out) as unknown as BoardLimits;
}

/** The limits `status` reports as used/limit, with when each was last reached. */
export type GaugeName = "sessions" | "pending" | "integrations" | "pipelineBytes" | "queueBytes";
export const GAUGE_NAMES: readonly GaugeName[] = Object.freeze(["sessions", "pending", "integrations", "pipelineBytes", "queueBytes"] as GaugeName[]);

export interface GaugeStatus {
  readonly used: number;
  readonly limit: number;
  /** Times the limit was reached since boot. */
  readonly hits: number;
  /** Wall-clock ms of the last time it was reached, or null when never. */
  readonly lastHit: number | null;
}

/**
 * Counts when each limit is reached (the audit record of a hit is written by whoever refused, in
 * aggregate; this keeps the count and the last time for `status`). O(1) memory.
 */
export class LimitHits {
  readonly #now: () => number;
  readonly #hits: Record<GaugeName, { hits: number; lastHit: number | null }>;

  constructor(now: () => number) {
    this.#now = now;
    this.#hits = { sessions: { hits: 0, lastHit: null }, pending: { hits: 0, lastHit: null }, integrations: { hits: 0, lastHit: null }, pipelineBytes: { hits: 0, lastHit: null }, queueBytes: { hits: 0, lastHit: null } };
  }

  /** The limit `name` was reached now. */
  hit(name: GaugeName, count = 1): void {
    const h = this.#hits[name];
    h.hits += count;
    h.lastHit = this.#now();
  }

  gauge(name: GaugeName, used: number, limit: number): GaugeStatus {
    const h = this.#hits[name];
    return { used, limit, hits: h.hits, lastHit: h.lastHit };
  }
}
