/**
 * The gateway's configuration (`gateway.json`), validated in the core so the firmware and the Node
 * board read it the same way. Device secrets are stored as salted HMAC-SHA256 digests, never in clear.
 */
import type { Crypto } from "./ports.js";
import { constantTimeEqual, fromBase64, toBase64, utf8 } from "./util/bytes.js";
import { LIMIT_KEYS, PROFILE_NAMES, isProfileName, profileByName, resolveLimits, type BoardLimits, type BoardProfile, type ProfileName } from "./profiles.js";
import { parseAcl, parseDeviceRoles, parseRules, type AclConfig, type AclRules } from "./mqtt/acl.js";
import { parseIncidentResponse, type IncidentResponseConfig } from "./incident/deadlines.js";
import { parseHomeBroker, type HomeBrokerConfig } from "./bridge/config.js";

export interface DeviceEntry {
  /** The MQTT client id the device connects with. */
  readonly id: string;
  /** MQTT username; defaults to the id. */
  readonly username: string;
  /** `hmac-sha256:<salt base64>:<digest base64>` of the device password. */
  readonly secret: string;
  /** Groups the device belongs to (contracts may name groups instead of ids). */
  readonly groups: readonly string[];
  /** Topic filters the device may subscribe to, besides `cmd/<id>/#`. */
  readonly subscribe: readonly string[];
  /** Local-broker roles (declared in the top-level `acl.roles`), e.g. `controller`. */
  readonly roles?: readonly string[];
  /** The device's own local-broker ACL (`%c`/`%u` substituted); see src/mqtt/acl.ts. */
  readonly acl?: AclRules;
}

/**
 * The admin HTTPS server's options (`admin` in gateway.json). Every field is optional; each host
 * fills the gaps with its own defaults (hosts/node/https.ts, hosts/moddable/https.ts) and the API
 * with {@link AUTH_THROTTLE} of src/admin/throttle.ts.
 */
export interface AdminConfig {
  /** Bind address of the admin HTTPS server (an IPv4/IPv6 literal). */
  readonly host?: string;
  /** TCP connections held at once; more are closed at accept. */
  readonly maxConnections?: number;
  /** From accept, the TLS handshake and the whole request head must arrive within this (ms). */
  readonly headerTimeoutMs?: number;
  /** A connection that moves no bytes either way for this long is closed (ms). */
  readonly idleTimeoutMs?: number;
  /** Failed authentications from one address within `authWindowMs` that lock it out for `authWindowMs`. */
  readonly authFailures?: number;
  readonly authWindowMs?: number;
  /** An admin session ends after this long without a request (ms; default 15 min). */
  readonly sessionIdleMs?: number;
  /** An admin session ends this long after login, however busy (ms; default 12 h). */
  readonly sessionMaxMs?: number;
  /** Validity of the self-signed certificate the board makes (days, at most {@link CERT_MAX_DAYS}). */
  readonly certValidityDays?: number;
  /** Replace the certificate when it expires within this many days. */
  readonly certRenewDays?: number;
}

/** The longest certificate validity the board will make or keep (CA/Browser Forum's former cap). */
export const CERT_MAX_DAYS = 825;

export interface GatewayConfig {
  readonly name: string;
  /** Minutes east of UTC where the home is (-720..840): where the dashboard's "today" starts. */
  readonly utcOffsetMinutes?: number;
  readonly devices: readonly DeviceEntry[];
  /** Contract files as text, each with where it came from (for error messages). */
  readonly contracts: readonly { readonly source: string; readonly text: string }[];
  /** Audit log options. */
  readonly audit: {
    readonly groupCommitMs: number;
    /** Bytes of the audit partition (whole 4096-byte sectors; default 1 MiB). The queue slots follow it. */
    readonly partitionBytes?: number;
    /** How often per-minute flow summaries are written (default 5 min). */
    readonly summaryEveryMs?: number;
    /** Longest wait for the flow commit record that must be durable before a message leaves (default 2 s). */
    readonly flowCommitMs?: number;
    /** Retention in days per record kind; absent kinds are kept until space runs out. */
    readonly retentionDays: Readonly<Record<string, number>>;
  };
  /** Admin HTTPS options; absent fields take the host's defaults. */
  readonly admin?: AdminConfig;
  /** Local-broker ACL roles; with it (or any device `acl`/`roles`) publishing is default-deny and routed locally. */
  readonly acl?: AclConfig;
  /** Device-side broker limits (`BrokerLimits` in src/mqtt/broker.ts); absent ones come from the profile's limits. */
  readonly broker?: Readonly<Record<string, number>>;
  /** Incident response: notification parties and deadlines, contact point, review days (src/incident/deadlines.ts). */
  readonly incidentResponse?: IncidentResponseConfig;
  /** Bridge mode: the home's own MQTT broker, which the gateway reads as a client (src/bridge/config.ts). */
  readonly homeBroker?: HomeBrokerConfig;
  /** The board profile the gateway runs with (src/profiles.ts): the host's, else gateway.json's, else `node`. */
  readonly profile: ProfileName;
  /** The profile's limits, each lowered where gateway.json's `limits` says (never above the profile). */
  readonly limits: BoardLimits;
}

/** What the host tells the parser: the board profile it runs (a firmware build is one profile). */
export interface ParseOptions {
  readonly profile?: ProfileName;
}

export interface ConfigError {
  readonly path: string;
  readonly message: string;
}

/** A device id (the MQTT client id): 1-64 of [A-Za-z0-9._-], starting with a letter or digit. */
export const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ID = DEVICE_ID;
const SECRET = /^hmac-sha256:([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/;

/** Limits on what a config may declare (the core rejects rather than grows). */
export const CONFIG_LIMITS = Object.freeze({ devices: 128, groupsPerDevice: 8, subscribePerDevice: 8 });

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Parses `gateway.json` text (contracts are supplied separately by the host). Returns every error,
 * each with its JSON path, or the config.
 */
export function parseGatewayConfig(
  text: string,
  contracts: readonly { source: string; text: string }[],
  options: ParseOptions = {},
): { ok: true; config: GatewayConfig } | { ok: false; errors: ConfigError[] } {
  const errors: ConfigError[] = [];
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { ok: false, errors: [{ path: "", message: `not JSON: ${e instanceof Error ? e.message : String(e)}` }] };
  }
  if (!isObject(raw)) return { ok: false, errors: [{ path: "", message: "must be a JSON object" }] };
  const name = typeof raw.name === "string" && raw.name.length > 0 ? raw.name : "portcullis";
  const profile = parseProfile(raw.profile, options.profile, errors);
  const limits = parseLimits(raw.limits, profile, errors);
  const devices: DeviceEntry[] = [];
  const acl = parseAcl(raw.acl, errors);
  if (!Array.isArray(raw.devices)) errors.push({ path: "/devices", message: "must be an array of devices" });
  else {
    if (raw.devices.length > CONFIG_LIMITS.devices) errors.push({ path: "/devices", message: `at most ${CONFIG_LIMITS.devices} devices` });
    const seen = new Set<string>();
    raw.devices.forEach((d: unknown, i: number) => {
      const at = `/devices/${i}`;
      if (!isObject(d)) return errors.push({ path: at, message: "must be an object" });
      const id = d.id;
      if (typeof id !== "string" || !ID.test(id)) return errors.push({ path: `${at}/id`, message: "must be 1-64 of [A-Za-z0-9._-], starting with a letter or digit" });
      if (seen.has(id)) errors.push({ path: `${at}/id`, message: `duplicate device id "${id}"` });
      seen.add(id);
      if (typeof d.secret !== "string" || !SECRET.test(d.secret)) {
        errors.push({ path: `${at}/secret`, message: 'must be "hmac-sha256:<salt>:<digest>" (make one with `npm run device:secret -- <id>`)' });
      }
      const strings = (v: unknown, p: string, max: number): string[] => {
        if (v === undefined) return [];
        if (!Array.isArray(v) || !v.every((s) => typeof s === "string" && s.length > 0)) {
          errors.push({ path: p, message: "must be an array of non-empty strings" });
          return [];
        }
        if (v.length > max) errors.push({ path: p, message: `at most ${max} entries` });
        return v as string[];
      };
      devices.push({
        id,
        username: typeof d.username === "string" ? d.username : id,
        secret: typeof d.secret === "string" ? d.secret : "",
        groups: strings(d.groups, `${at}/groups`, CONFIG_LIMITS.groupsPerDevice),
        subscribe: strings(d.subscribe, `${at}/subscribe`, CONFIG_LIMITS.subscribePerDevice),
        ...deviceAcl(d, at, acl, errors),
      });
      return undefined;
    });
    if (raw.devices.length > limits.devices) {
      errors.push({ path: `/devices/${limits.devices}`, message: `at most ${limits.devices} devices ${limits.devices < profile.limits.devices ? "(limits.devices)" : `on the ${profile.name} profile`}` });
    }
  }
  const audit = isObject(raw.audit) ? raw.audit : {};
  const groupCommitMs = typeof audit.groupCommitMs === "number" && audit.groupCommitMs >= 0 ? audit.groupCommitMs : 0;
  const partitionBytes = audit.partitionBytes;
  if (partitionBytes !== undefined && (typeof partitionBytes !== "number" || !Number.isInteger(partitionBytes) || partitionBytes % 4096 !== 0 || partitionBytes < 8 * 4096 || partitionBytes > 16 * 1024 * 1024)) {
    errors.push({ path: "/audit/partitionBytes", message: "must be whole 4096-byte sectors, from 32768 (8 sectors) to 16777216" });
  }
  const summaryEveryMs = typeof audit.summaryEveryMs === "number" && audit.summaryEveryMs >= 1000 ? audit.summaryEveryMs : undefined;
  if (audit.summaryEveryMs !== undefined && summaryEveryMs === undefined) errors.push({ path: "/audit/summaryEveryMs", message: "must be a number of milliseconds, at least 1000" });
  const flowCommitMs = typeof audit.flowCommitMs === "number" && Number.isInteger(audit.flowCommitMs) && audit.flowCommitMs >= 0 && audit.flowCommitMs <= 60_000 ? audit.flowCommitMs : undefined;
  if (audit.flowCommitMs !== undefined && flowCommitMs === undefined) errors.push({ path: "/audit/flowCommitMs", message: "must be whole milliseconds from 0 to 60000" });
  const retentionDays: Record<string, number> = {};
  if (isObject(audit.retentionDays)) {
    for (const [k, v] of Object.entries(audit.retentionDays)) {
      if (typeof v !== "number" || !(v > 0)) errors.push({ path: `/audit/retentionDays/${k}`, message: "must be a positive number of days" });
      else retentionDays[k] = v;
    }
  }
  const utcOffsetMinutes = raw.utcOffsetMinutes;
  if (utcOffsetMinutes !== undefined && (typeof utcOffsetMinutes !== "number" || !Number.isInteger(utcOffsetMinutes) || utcOffsetMinutes < -720 || utcOffsetMinutes > 840)) {
    errors.push({ path: "/utcOffsetMinutes", message: "must be whole minutes east of UTC, from -720 to 840 (e.g. 60 for UTC+1)" });
  }
  const admin = parseAdmin(raw.admin, errors);
  if (admin?.maxConnections !== undefined && admin.maxConnections > limits.adminSessions) {
    errors.push({ path: "/admin/maxConnections", message: atMost(limits.adminSessions, "adminSessions", limits, profile) });
  }
  const broker = parseBroker(raw.broker, errors);
  const incidentResponse = parseIncidentResponse(raw.incidentResponse, errors);
  if (broker) {
    for (const [key, v] of Object.entries(broker)) {
      const bound = BROKER_BOUND[key];
      if (bound !== undefined && v > limits[bound]) errors.push({ path: `/broker/${key}`, message: atMost(limits[bound], bound, limits, profile) });
    }
  }
  const homeBroker = parseHomeBroker(raw.homeBroker, new Set(devices.map((d) => d.id)), errors);
  if (errors.length) return { ok: false, errors };
  return { ok: true, config: { name, ...(typeof utcOffsetMinutes === "number" ? { utcOffsetMinutes } : {}), ...(homeBroker ? { homeBroker } : {}), profile: profile.name, limits, devices, contracts, incidentResponse, audit: { groupCommitMs, retentionDays, ...(summaryEveryMs === undefined ? {} : { summaryEveryMs }), ...(flowCommitMs === undefined ? {} : { flowCommitMs }), ...(typeof partitionBytes === "number" ? { partitionBytes } : {}) }, ...(admin ? { admin } : {}), ...(broker ? { broker } : {}), ...(acl ? { acl } : {}) } };
}

/**
 * The board profile: the host's when it names one (gateway.json's `profile` must then agree), else
 * gateway.json's, else `node`.
 */
function parseProfile(raw: unknown, host: ProfileName | undefined, errors: ConfigError[]): BoardProfile {
  if (raw !== undefined && !isProfileName(raw)) {
    errors.push({ path: "/profile", message: `unknown board profile; one of ${PROFILE_NAMES.join(", ")}` });
    return profileByName(host ?? "node");
  }
  if (host !== undefined && raw !== undefined && raw !== host) {
    errors.push({ path: "/profile", message: `this board runs the ${host} profile, not ${raw as string}` });
  }
  return profileByName(host ?? (raw as ProfileName | undefined) ?? "node");
}

/** `limits` of gateway.json: any BoardLimits key, a positive integer no higher than the profile's. */
function parseLimits(raw: unknown, profile: BoardProfile, errors: ConfigError[]): BoardLimits {
  if (raw === undefined) return profile.limits;
  if (!isObject(raw)) {
    errors.push({ path: "/limits", message: "must be an object" });
    return profile.limits;
  }
  const lower: Record<string, number> = {};
  for (const [key, v] of Object.entries(raw)) {
    const max = (profile.limits as unknown as Record<string, number>)[key];
    if (max === undefined || !(LIMIT_KEYS as readonly string[]).includes(key)) errors.push({ path: `/limits/${key}`, message: `unknown limit; one of ${LIMIT_KEYS.join(", ")}` });
    else if (typeof v !== "number" || !Number.isInteger(v) || v < 1) errors.push({ path: `/limits/${key}`, message: "must be a positive integer" });
    else if (v > max) errors.push({ path: `/limits/${key}`, message: `at most ${max} on the ${profile.name} profile` });
    else lower[key] = v;
  }
  return resolveLimits(profile, lower as Partial<BoardLimits>);
}

/** "at most 8 on the esp32 profile", or "(limits.sessions)" when gateway.json lowered it. */
function atMost(value: number, key: keyof BoardLimits, limits: BoardLimits, profile: BoardProfile): string {
  return `at most ${value} ${limits[key] < profile.limits[key] ? `(limits.${key})` : `on the ${profile.name} profile`}`;
}

/** The board limit each broker key may not exceed. */
const BROKER_BOUND: Readonly<Record<string, keyof BoardLimits>> = Object.freeze({
  maxConnections: "sessions",
  maxPendingConnections: "pendingConnections",
  maxPendingPerAddress: "pendingConnections",
  maxInflight: "inflightPerDevice",
  maxPendingAccepts: "inflightPerDevice",
  publishRatePerSec: "publishRatePerSec",
  publishBurst: "publishBurst",
  maxRetainedMessages: "retainedMessages",
  maxRetainedBytes: "retainedBytes",
});

/**
 * The broker limits the gateway runs with: the board limits mapped onto the broker's, then gateway.json's
 * `broker` keys (already checked to be no higher).
 */
export function brokerLimits(config: Pick<GatewayConfig, "limits" | "broker">): Record<string, number> {
  const l = config.limits;
  return {
    maxConnections: l.sessions,
    maxPendingConnections: l.pendingConnections,
    maxPendingPerAddress: Math.min(2, l.pendingConnections),
    maxInflight: l.inflightPerDevice,
    maxPendingAccepts: l.inflightPerDevice,
    publishRatePerSec: l.publishRatePerSec,
    publishBurst: l.publishBurst,
    maxRetainedMessages: l.retainedMessages,
    maxRetainedBytes: l.retainedBytes,
    ...(config.broker ?? {}),
  };
}

/** A device's `roles` and `acl` (src/mqtt/acl.ts), only the fields present. */
function deviceAcl(d: Record<string, unknown>, at: string, acl: AclConfig | undefined, errors: ConfigError[]): { roles?: string[]; acl?: AclRules } {
  const roles = d.roles === undefined ? undefined : parseDeviceRoles(d.roles, `${at}/roles`, acl, errors);
  const own = parseRules(d.acl, `${at}/acl`, errors);
  return { ...(roles ? { roles } : {}), ...(own ? { acl: own } : {}) };
}

/** Integer ranges of the broker limits gateway.json may set: [min, max]. */
const BROKER_RANGES = Object.freeze({
  maxConnections: [1, 1024],
  maxPendingConnections: [1, 1024],
  maxPendingPerAddress: [1, 1024],
  maxInflight: [1, 1024],
  maxPendingAccepts: [1, 1024],
  publishRatePerSec: [1, 100_000],
  publishBurst: [1, 100_000],
  maxSubscriptionsPerClient: [0, 1024],
  maxRetainedMessages: [0, 100_000],
  maxRetainedBytes: [0, 16 * 1024 * 1024],
  maxQos: [1, 2],
  maxParkedSessions: [0, 1024],
  maxQueuedPerSession: [0, 100_000],
  maxTopicAliases: [0, 65_535],
} as const);

function parseBroker(raw: unknown, errors: ConfigError[]): Record<string, number> | undefined {
  if (raw === undefined) return undefined;
  if (!isObject(raw)) {
    errors.push({ path: "/broker", message: "must be an object" });
    return undefined;
  }
  const out: Record<string, number> = {};
  for (const [key, v] of Object.entries(raw)) {
    const range = (BROKER_RANGES as Record<string, readonly [number, number]>)[key];
    if (!range) errors.push({ path: `/broker/${key}`, message: `unknown broker limit; one of ${Object.keys(BROKER_RANGES).join(", ")}` });
    else if (typeof v !== "number" || !Number.isInteger(v) || v < range[0] || v > range[1]) errors.push({ path: `/broker/${key}`, message: `must be an integer from ${range[0]} to ${range[1]}` });
    else out[key] = v;
  }
  return out;
}

const ADDRESS = /^(\d{1,3}(\.\d{1,3}){3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$/;

/** Integer ranges of the numeric admin options: [min, max]. */
const ADMIN_RANGES = Object.freeze({
  maxConnections: [1, 1024],
  headerTimeoutMs: [100, 600_000],
  idleTimeoutMs: [100, 3_600_000],
  authFailures: [1, 1000],
  authWindowMs: [1000, 86_400_000],
  sessionIdleMs: [60_000, 86_400_000],
  sessionMaxMs: [60_000, 7 * 86_400_000],
  certValidityDays: [2, CERT_MAX_DAYS],
  certRenewDays: [1, CERT_MAX_DAYS - 1],
} as const);

function parseAdmin(raw: unknown, errors: ConfigError[]): AdminConfig | undefined {
  if (raw === undefined) return undefined;
  if (!isObject(raw)) {
    errors.push({ path: "/admin", message: "must be an object" });
    return undefined;
  }
  const out: Record<string, string | number> = {};
  for (const key of Object.keys(raw)) {
    if (key !== "host" && !(key in ADMIN_RANGES)) errors.push({ path: `/admin/${key}`, message: "unknown admin option" });
  }
  if (raw.host !== undefined) {
    if (typeof raw.host !== "string" || !ADDRESS.test(raw.host)) errors.push({ path: "/admin/host", message: 'must be an IPv4 or IPv6 address literal, e.g. "192.168.1.2" or "::"' });
    else out.host = raw.host;
  }
  for (const [key, [min, max]] of Object.entries(ADMIN_RANGES)) {
    const v = raw[key];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) errors.push({ path: `/admin/${key}`, message: `must be an integer from ${min} to ${max}` });
    else out[key] = v;
  }
  if (typeof out.sessionIdleMs === "number" && typeof out.sessionMaxMs === "number" && out.sessionIdleMs > out.sessionMaxMs) errors.push({ path: "/admin/sessionIdleMs", message: "must not exceed sessionMaxMs" });
  const days = (out.certValidityDays as number | undefined) ?? CERT_MAX_DAYS;
  if (typeof out.certRenewDays === "number" && out.certRenewDays >= days) errors.push({ path: "/admin/certRenewDays", message: "must be less than certValidityDays" });
  return out as AdminConfig;
}

/** Makes the stored form of a device password. */
export function makeDeviceSecret(crypto: Crypto, salt: Uint8Array, password: string): string {
  return `hmac-sha256:${toBase64(salt)}:${toBase64(crypto.hmacSha256(salt, utf8(password)))}`;
}

/** Checks a password against a stored secret in constant time. */
export function checkDeviceSecret(crypto: Crypto, secret: string, password: Uint8Array): boolean {
  const m = SECRET.exec(secret);
  if (!m) return false;
  try {
    return constantTimeEqual(crypto.hmacSha256(fromBase64(m[1]!), password), fromBase64(m[2]!));
  } catch {
    return false;
  }
}
