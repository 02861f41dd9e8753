/**
 * Per-device access control for the local broker, Mosquitto-style (`pattern read|write` lines):
 * publish and subscribe patterns per device and per role, `%c` (client id) and `%u` (username)
 * substituted, default deny. Patterns are topic filters; a publish is allowed when a publish pattern
 * matches its topic, a subscription when a subscribe pattern covers its whole filter (every topic the
 * filter can match, the pattern matches too; so `+`/`#` in a filter need `+`/`#` in the pattern).
 *
 * gateway.json (validated by {@link parseAcl}, errors with JSON paths like the contracts'):
 *
 *   "acl": { "roles": { "controller": { "publish": ["homeassistant/#"], "subscribe": ["#"] } } },
 *   "devices": [ { "id": "ha", "roles": ["controller"], "acl": { "publish": ["cmnd/+/POWER"] } } ]
 */
import { isValidTopicFilter, topicMatches } from "./topic.js";

export interface AclRules {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
}

/** The top-level `acl` of gateway.json. */
export interface AclConfig {
  readonly roles: Readonly<Record<string, AclRules>>;
}

/** Bounds of what an ACL may declare (the core rejects rather than grows). */
export const ACL_LIMITS = Object.freeze({ roles: 16, patternsPerList: 16, rolesPerDevice: 4, patternBytes: 256 });

const ROLE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;

/**
 * `pattern` with `%c` and `%u` replaced; undefined when a value would change the pattern's shape
 * (contains `/`, `+`, `#` or U+0000) or a username is needed and absent: such a pattern grants nothing.
 */
export function substitute(pattern: string, clientId: string, username: string | undefined): string | undefined {
  if (pattern.indexOf("%") < 0) return pattern;
  const unsafe = (v: string) => v.length === 0 || /[/+#\u0000]/.test(v);
  if (pattern.indexOf("%c") >= 0 && unsafe(clientId)) return undefined;
  if (pattern.indexOf("%u") >= 0 && (username === undefined || unsafe(username))) return undefined;
  return pattern.replace(/%c/g, clientId).replace(/%u/g, username ?? "");
}

/**
 * Whether ACL `pattern` covers every topic subscription `filter` can match (both valid filters).
 * A filter starting with `$` is covered only by a pattern starting with the same literal level, since
 * `+`/`#` as a first level never match `$` topics (§4.7.2).
 */
export function filterCovers(pattern: string, filter: string): boolean {
  const p = pattern.split("/");
  const f = filter.split("/");
  if (f[0]!.charCodeAt(0) === 0x24 && (p[0] === "+" || p[0] === "#")) return false;
  for (let i = 0; ; i++) {
    const pl = p[i];
    const fl = f[i];
    if (pl === "#") return true;
    if (fl === undefined) {
      // The filter ended: covered when the pattern ends too, or continues with just "#" (parent match).
      return pl === undefined || (pl === "#" && i === p.length - 1);
    }
    if (pl === undefined) return false;
    if (fl === "#") return false; // only a "#" in the pattern covers it (handled above)
    if (pl === "+") continue;
    if (fl === "+" || pl !== fl) return false;
  }
}

/** One device's compiled rules: patterns with `%c`/`%u` already substituted. */
export class DeviceAcl {
  readonly #publish: readonly string[] | null;
  readonly #subscribe: readonly string[];

  /**
   * `publish` null means unrestricted publishing (the legacy mode without any ACL: contracts alone
   * guard what leaves, and nothing is routed locally).
   */
  constructor(publish: readonly string[] | null, subscribe: readonly string[]) {
    this.#publish = publish;
    this.#subscribe = subscribe;
  }

  /** Builds a device's rules from pattern lists, substituting `%c`/`%u`; unusable patterns are dropped. */
  static compile(clientId: string, username: string | undefined, publish: readonly string[] | null, subscribe: readonly string[]): DeviceAcl {
    const sub = (list: readonly string[]): string[] => {
      const out: string[] = [];
      for (const p of list) {
        const s = substitute(p, clientId, username);
        if (s !== undefined && isValidTopicFilter(s) && !out.includes(s)) out.push(s);
      }
      return out;
    };
    return new DeviceAcl(publish === null ? null : sub(publish), sub(subscribe));
  }

  /** Whether the device's publishes are checked at all (false in the legacy mode). */
  get restricted(): boolean {
    return this.#publish !== null;
  }

  canPublish(topic: string): boolean {
    const list = this.#publish;
    if (list === null) return true;
    for (let i = 0; i < list.length; i++) if (topicMatches(list[i]!, topic)) return true;
    return false;
  }

  canSubscribe(filter: string): boolean {
    const list = this.#subscribe;
    for (let i = 0; i < list.length; i++) if (filterCovers(list[i]!, filter)) return true;
    return false;
  }
}

interface ErrorSink {
  push(e: { path: string; message: string }): unknown;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function patterns(v: unknown, path: string, errors: ErrorSink): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    errors.push({ path, message: "must be an array of topic patterns" });
    return [];
  }
  if (v.length > ACL_LIMITS.patternsPerList) errors.push({ path, message: `at most ${ACL_LIMITS.patternsPerList} patterns` });
  const out: string[] = [];
  v.forEach((p: unknown, i: number) => {
    if (typeof p !== "string" || p.length === 0 || p.length > ACL_LIMITS.patternBytes) {
      errors.push({ path: `${path}/${i}`, message: `must be a topic pattern of 1-${ACL_LIMITS.patternBytes} characters` });
    } else if (!isValidTopicFilter(p.replace(/%[cu]/g, "x"))) {
      errors.push({ path: `${path}/${i}`, message: 'not a valid topic filter ("+" and "#" fill a whole level, "#" only last)' });
    } else if (/%[^cu]|%$/.test(p)) {
      errors.push({ path: `${path}/${i}`, message: 'only "%c" (client id) and "%u" (username) may follow "%"' });
    } else out.push(p);
  });
  return out;
}

/** Validates `{ publish?, subscribe? }` at `path`. */
export function parseRules(raw: unknown, path: string, errors: ErrorSink): AclRules | undefined {
  if (raw === undefined) return undefined;
  if (!isObject(raw)) {
    errors.push({ path, message: "must be an object with publish and/or subscribe pattern lists" });
    return undefined;
  }
  for (const k of Object.keys(raw)) if (k !== "publish" && k !== "subscribe") errors.push({ path: `${path}/${k}`, message: 'unknown ACL key; "publish" or "subscribe"' });
  return { publish: patterns(raw.publish, `${path}/publish`, errors), subscribe: patterns(raw.subscribe, `${path}/subscribe`, errors) };
}

/** Validates the top-level `acl` of gateway.json. */
export function parseAcl(raw: unknown, errors: ErrorSink): AclConfig | undefined {
  if (raw === undefined) return undefined;
  if (!isObject(raw)) {
    errors.push({ path: "/acl", message: 'must be an object: { "roles": { <name>: { "publish": [...], "subscribe": [...] } } }' });
    return undefined;
  }
  for (const k of Object.keys(raw)) if (k !== "roles") errors.push({ path: `/acl/${k}`, message: 'unknown ACL key; "roles"' });
  const roles: Record<string, AclRules> = Object.create(null) as Record<string, AclRules>;
  if (raw.roles !== undefined) {
    if (!isObject(raw.roles)) errors.push({ path: "/acl/roles", message: "must be an object of role name → rules" });
    else {
      const names = Object.keys(raw.roles);
      if (names.length > ACL_LIMITS.roles) errors.push({ path: "/acl/roles", message: `at most ${ACL_LIMITS.roles} roles` });
      for (const name of names) {
        if (!ROLE.test(name)) errors.push({ path: `/acl/roles/${name}`, message: "role names are 1-32 of [A-Za-z0-9._-]" });
        const r = parseRules(raw.roles[name], `/acl/roles/${name}`, errors);
        if (r) roles[name] = r;
      }
    }
  }
  return { roles };
}

/** Validates a device's `roles` against the declared ones. */
export function parseDeviceRoles(raw: unknown, path: string, acl: AclConfig | undefined, errors: ErrorSink): string[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw) || !raw.every((r) => typeof r === "string")) {
    errors.push({ path, message: "must be an array of role names" });
    return [];
  }
  if (raw.length > ACL_LIMITS.rolesPerDevice) errors.push({ path, message: `at most ${ACL_LIMITS.rolesPerDevice} roles` });
  const out: string[] = [];
  raw.forEach((r: string, i: number) => {
    if (acl === undefined || !Object.prototype.hasOwnProperty.call(acl.roles, r)) errors.push({ path: `${path}/${i}`, message: `unknown role "${r}" (declare it in /acl/roles)` });
    else out.push(r);
  });
  return out;
}

/** What a device's entry in gateway.json says about its access. */
export interface DeviceAclSource {
  readonly id: string;
  readonly username: string;
  /** Exact filters of the legacy `subscribe` list (still honoured). */
  readonly subscribe: readonly string[];
  readonly roles?: readonly string[];
  readonly acl?: AclRules;
}

/** The implicit subscription every device has: the gateway's commands to it. */
export const COMMAND_PATTERN = "cmd/%c/#";

/**
 * Compiles every device's rules. Without any ACL in the config (no top-level `acl`, no device
 * `acl`/`roles`) publishing is unrestricted toward the contracts and nothing is routed locally
 * (`localRouting` false); otherwise publishing is default-deny and routed locally.
 */
export function compileAcls(devices: readonly DeviceAclSource[], acl: AclConfig | undefined): { localRouting: boolean; byId: Map<string, DeviceAcl> } {
  const localRouting = acl !== undefined || devices.some((d) => d.acl !== undefined || (d.roles !== undefined && d.roles.length > 0));
  const byId = new Map<string, DeviceAcl>();
  for (const d of devices) {
    const pub: string[] = [];
    const sub: string[] = [COMMAND_PATTERN, ...d.subscribe];
    for (const r of d.roles ?? []) {
      const rules = acl?.roles[r];
      if (rules) {
        pub.push(...rules.publish);
        sub.push(...rules.subscribe);
      }
    }
    if (d.acl) {
      pub.push(...d.acl.publish);
      sub.push(...d.acl.subscribe);
    }
    byId.set(d.id, DeviceAcl.compile(d.id, d.username, localRouting ? pub : null, sub));
  }
  return { localRouting, byId };
}
