/** The rules of contract v1, checked by hand (no ajv in the core); schemas/contract-v1.schema.json mirrors them. */
import { DataClasses, TopicVariables, type ContractError, type ContractLimits } from "./contract.js";
import { isPrefix, parsePointer } from "./pointer.js";
import { filterProblem } from "./topic.js";
import { fromBase64Canonical as base64Decode } from "../util/bytes.js";

type Obj = Record<string, unknown>;
const ID = /^[a-z0-9][a-z0-9-]{0,31}$/;
const DEVICE = /^[A-Za-z0-9._:-]{1,64}$/;
const HOST = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*$/;
const CONTACT = /^([^@\s]+@[^@\s]+\.[^@\s]+|https:\/\/\S+)$/;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const VERSION = /^[0-9A-Za-z.+-]{1,32}$/;

class Checker {
  readonly errors: ContractError[];
  constructor(errors: ContractError[]) {
    this.errors = errors;
  }
  err(path: string, message: string): void {
    this.errors.push({ path, message });
  }
  /** Checks `v` is an object with the required keys and no others; returns it or undefined. */
  obj(v: unknown, path: string, required: readonly string[], optional: readonly string[]): Obj | undefined {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      this.err(path, "must be an object");
      return undefined;
    }
    const o = v as Obj;
    for (const k of required) if (!Object.prototype.hasOwnProperty.call(o, k)) this.err(path, `missing required member "${k}"`);
    for (const k of Object.keys(o)) {
      if (required.indexOf(k) < 0 && optional.indexOf(k) < 0) this.err(`${path}/${esc(k)}`, `unknown member "${k}"`);
    }
    return o;
  }
  str(o: Obj, k: string, path: string, min: number, max: number, re?: RegExp, what?: string): string | undefined {
    const v = o[k];
    if (v === undefined) return undefined;
    const p = `${path}/${k}`;
    if (typeof v !== "string") return void this.err(p, "must be a string");
    if (v.length < min || v.length > max) return void this.err(p, `must be ${min}–${max} characters long`);
    if (re && !re.test(v)) return void this.err(p, `not a valid ${what ?? k}: "${v}"`);
    return v;
  }
  int(o: Obj, k: string, path: string, min: number, max: number): number | undefined {
    const v = o[k];
    if (v === undefined) return undefined;
    const p = `${path}/${k}`;
    if (typeof v !== "number" || !Number.isInteger(v)) return void this.err(p, "must be an integer");
    if (v < min || v > max) return void this.err(p, `must be between ${min} and ${max}`);
    return v;
  }
  num(o: Obj, k: string, path: string, min: number, max: number): number | undefined {
    const v = o[k];
    if (v === undefined) return undefined;
    const p = `${path}/${k}`;
    if (typeof v !== "number" || !Number.isFinite(v)) return void this.err(p, "must be a number");
    if (v < min || v > max) return void this.err(p, `must be between ${min} and ${max}`);
    return v;
  }
  oneOf(o: Obj, k: string, path: string, allowed: readonly unknown[]): void {
    const v = o[k];
    if (v !== undefined && allowed.indexOf(v) < 0) {
      this.err(`${path}/${k}`, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`);
    }
  }
  /** Checks an array member (length min..max, unique items); returns it or undefined. */
  arr(o: Obj, k: string, path: string, min: number, max: number, limitName?: string): unknown[] | undefined {
    const v = o[k];
    if (v === undefined) return undefined;
    const p = `${path}/${k}`;
    if (!Array.isArray(v)) return void this.err(p, "must be an array");
    if (v.length < min) return void this.err(p, `must have at least ${min} item${min === 1 ? "" : "s"}`);
    if (v.length > max) {
      return void this.err(p, limitName ? `more than the limit of ${max} ${limitName}` : `must have at most ${max} items`);
    }
    const seen = new Set<string>();
    v.forEach((item, i) => {
      const key = JSON.stringify(item);
      if (typeof item !== "object" && seen.has(key)) this.err(`${p}/${i}`, `duplicate item ${key}`);
      seen.add(key);
    });
    return v;
  }
}

function esc(k: string): string {
  return k.replace(/~/g, "~0").replace(/\//g, "~1");
}

/** Strings starting with this mark parts a draft (tools/mud2contract.ts) leaves for the owner to fill. */
export const PLACEHOLDER = "TODO:";

/** Pointers of every placeholder string in `v`. */
function placeholders(v: unknown, at: string, out: string[]): string[] {
  if (typeof v === "string" && v.startsWith(PLACEHOLDER)) out.push(at);
  else if (Array.isArray(v)) v.forEach((x, i) => placeholders(x, `${at}/${i}`, out));
  else if (typeof v === "object" && v !== null) for (const k of Object.keys(v)) placeholders((v as Obj)[k], `${at}/${esc(k)}`, out);
  return out;
}

/**
 * Appends every rule violation of `v` (a parsed JSON value) to `errors`. An unfilled placeholder is
 * reported once, as such, instead of the type or pattern errors it would also cause.
 */
export function checkContract(v: unknown, limits: ContractLimits, errors: ContractError[]): void {
  const todo = placeholders(v, "", []);
  const found: ContractError[] = [];
  checkRules(v, limits, found);
  for (const p of todo) errors.push({ path: p, message: "unfilled placeholder (the owner must complete this draft)" });
  for (const e of found) if (!todo.some((p) => e.path === p || e.path.startsWith(p + "/"))) errors.push(e);
}

function checkRules(v: unknown, limits: ContractLimits, errors: ContractError[]): void {
  const c = new Checker(errors);
  const o = c.obj(v, "", ["format", "id", "version", "vendor", "contact", "purpose", "effective", "destinations", "flows", "terms"], ["$schema"]);
  if (!o) return;
  if (o.format !== undefined && o.format !== 1) c.err("/format", `unsupported format ${JSON.stringify(o.format)} (this gateway reads format 1)`);
  c.str(o, "$schema", "", 1, 256);
  c.str(o, "id", "", 1, 32, ID, "integration id (lowercase letters, digits, \"-\"; starts with a letter or digit)");
  c.str(o, "version", "", 1, 32, VERSION, "version");
  c.str(o, "vendor", "", 1, 100);
  c.str(o, "contact", "", 3, 200, CONTACT, "contact (an e-mail address or an https:// URL)");
  c.str(o, "purpose", "", 10, 1000);
  const eff = c.str(o, "effective", "", 10, 10, /^\d{4}-\d{2}-\d{2}$/, "date (YYYY-MM-DD)");
  if (eff !== undefined && !realDate(eff)) c.err("/effective", `not a calendar date: "${eff}"`);
  const destIds = checkDestinations(c, o, limits);
  const classes = checkFlows(c, o, limits, destIds);
  checkTerms(c, o.terms, classes);
}

function realDate(s: string): boolean {
  const [y, m, d] = s.split("-").map(Number) as [number, number, number];
  const t = new Date(Date.UTC(y, m - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === d;
}

function checkDestinations(c: Checker, o: Obj, limits: ContractLimits): Set<string> {
  const ids = new Set<string>();
  const list = c.arr(o, "destinations", "", 1, limits.destinations, "destinations");
  list?.forEach((item, i) => {
    const p = `/destinations/${i}`;
    const d = c.obj(item, p, ["id", "protocol", "host", "port", "topic", "encryption"], ["pins", "publicKey", "keyId"]);
    if (!d) return;
    const id = c.str(d, "id", p, 1, 32, ID, "destination id");
    if (id !== undefined) {
      if (ids.has(id)) c.err(`${p}/id`, `duplicate destination id "${id}"`);
      ids.add(id);
    }
    if (d.protocol === "https") c.err(`${p}/protocol`, `protocol "https" is reserved and not supported yet`);
    else c.oneOf(d, "protocol", p, ["mqtts"]);
    c.str(d, "host", p, 1, 253, HOST, "host name");
    c.int(d, "port", p, 1, 65535);
    const topic = c.str(d, "topic", p, 1, 256);
    if (topic !== undefined) checkTemplate(c, topic, `${p}/topic`);
    c.arr(d, "pins", p, 1, 4)?.forEach((pin, k) => {
      const b = typeof pin === "string" ? base64Decode(pin) : undefined;
      if (!b || b.length !== 32) c.err(`${p}/pins/${k}`, "must be the base64 of a 32-byte SHA-256 SPKI digest");
    });
    c.oneOf(d, "encryption", p, ["hpke", "none"]);
    if (d.encryption === "hpke") {
      for (const k of ["publicKey", "keyId"]) if (d[k] === undefined) c.err(p, `missing required member "${k}" (encryption is "hpke")`);
    } else if (d.encryption === "none") {
      for (const k of ["publicKey", "keyId"]) if (d[k] !== undefined) c.err(`${p}/${k}`, `not allowed when encryption is "none"`);
    }
    const pk = c.str(d, "publicKey", p, 1, 200);
    if (pk !== undefined) {
      const b = base64Decode(pk);
      if (!b || b.length !== 65 || b[0] !== 4) c.err(`${p}/publicKey`, "must be the base64 of a 65-byte uncompressed P-256 point (0x04‖X‖Y)");
    }
    c.str(d, "keyId", p, 1, 64, KEY_ID, "key id");
  });
  return ids;
}

function checkTemplate(c: Checker, t: string, p: string): void {
  if (/[+#\u0000]/.test(t)) return c.err(p, "topic template must not contain \"+\", \"#\" or NUL");
  if (t[0] === "$") return c.err(p, "topic template must not start with \"$\"");
  const rest = t.replace(/\{([^{}]*)\}/g, (_m, name: string) => {
    if ((TopicVariables as readonly string[]).indexOf(name) < 0) c.err(p, `unknown topic variable "{${name}}"`);
    return "";
  });
  if (/[{}]/.test(rest)) c.err(p, "unbalanced \"{\" or \"}\" in topic template");
}

function checkFlows(c: Checker, o: Obj, limits: ContractLimits, destIds: Set<string>): Map<string, string> {
  const classes = new Map<string, string>();
  const ids = new Set<string>();
  const list = c.arr(o, "flows", "", 1, limits.rulesPerContract, "flows (rules) per contract");
  list?.forEach((item, i) => {
    const p = `/flows/${i}`;
    const f = c.obj(item, p, ["id", "destination", "topics", "fields", "rate"], ["devices", "groups", "pseudonymize", "raw"]);
    if (!f) return;
    const id = c.str(f, "id", p, 1, 32, ID, "flow id");
    if (id !== undefined) {
      if (ids.has(id)) c.err(`${p}/id`, `duplicate flow id "${id}"`);
      ids.add(id);
    }
    const dest = c.str(f, "destination", p, 1, 32);
    if (dest !== undefined && !destIds.has(dest)) c.err(`${p}/destination`, `unknown destination "${dest}"`);
    const devs = c.arr(f, "devices", p, 1, limits.devicesPerRule, "devices per rule");
    devs?.forEach((d, k) => typeof d === "string" && DEVICE.test(d) ? undefined : c.err(`${p}/devices/${k}`, "must be a device id (1–64 of A-Z a-z 0-9 . _ : -)"));
    const groups = c.arr(f, "groups", p, 1, limits.devicesPerRule, "groups per rule");
    groups?.forEach((d, k) => typeof d === "string" && DEVICE.test(d) ? undefined : c.err(`${p}/groups/${k}`, "must be a group name (1–64 of A-Z a-z 0-9 . _ : -)"));
    if (f.devices === undefined && f.groups === undefined) c.err(p, "must name devices or groups (or both)");
    c.arr(f, "topics", p, 1, limits.topicsPerRule, "topic filters per rule")?.forEach((t, k) => {
      const problem = typeof t === "string" ? filterProblem(t) : "must be a string";
      if (problem) c.err(`${p}/topics/${k}`, problem);
    });
    if (f.raw !== undefined && typeof f.raw !== "boolean") c.err(`${p}/raw`, "must be true or false");
    const raw = f.raw === true;
    const paths = checkFields(c, f, p, limits, raw, classes);
    const ps = c.arr(f, "pseudonymize", p, 1, limits.fieldsPerRule);
    if (ps && raw) c.err(`${p}/pseudonymize`, "not allowed in a raw flow");
    else ps?.forEach((x, k) => {
      if (typeof x !== "string") return c.err(`${p}/pseudonymize/${k}`, "must be a string");
      if (paths && paths.indexOf(x) < 0) c.err(`${p}/pseudonymize/${k}`, `"${x}" is not one of this flow's fields`);
    });
    const rate = f.rate === undefined ? undefined : c.obj(f.rate, `${p}/rate`, ["perMinute", "minIntervalMs"], []);
    if (rate) {
      c.int(rate, "perMinute", `${p}/rate`, 1, 6000);
      c.int(rate, "minIntervalMs", `${p}/rate`, 0, 86400000);
    }
  });
  return classes;
}

/** Checks a flow's fields; returns their paths, or undefined when the list itself is unusable. */
function checkFields(c: Checker, f: Obj, p: string, limits: ContractLimits, raw: boolean, classes: Map<string, string>): string[] | undefined {
  const paths: string[] = [];
  const tokens: string[][] = [];
  const declared: string[] = [];
  const list = c.arr(f, "fields", p, 1, limits.fieldsPerRule, "fields per rule");
  list?.forEach((item, k) => {
    const fp = `${p}/fields/${k}`;
    const fd = c.obj(item, fp, ["path", "class"], []);
    if (!fd) return;
    if (typeof fd.class === "string" && (DataClasses as readonly string[]).indexOf(fd.class) < 0) {
      c.err(`${fp}/class`, `unknown data class "${fd.class}"`);
    } else if (fd.class !== undefined && typeof fd.class !== "string") c.err(`${fp}/class`, "must be a string");
    else if (typeof fd.class === "string" && !classes.has(fd.class)) classes.set(fd.class, `${fp}/class`);
    if (fd.path === undefined) return;
    if (typeof fd.path !== "string") return c.err(`${fp}/path`, "must be a string");
    declared.push(fd.path);
    if (fd.path.length > 256) return c.err(`${fp}/path`, "must be 0–256 characters long");
    const t = parsePointer(fd.path);
    if (!t) return c.err(`${fp}/path`, `not a JSON Pointer (RFC 6901): "${fd.path}"`);
    if (raw && fd.path !== "") return c.err(`${fp}/path`, "a raw flow has exactly one field, the whole payload \"\"");
    if (!raw && fd.path === "") return c.err(`${fp}/path`, "the whole payload \"\" is only allowed in a raw flow");
    const clash = tokens.findIndex((o) => isPrefix(o, t) || isPrefix(t, o));
    if (clash >= 0) return c.err(`${fp}/path`, `overlaps field ${clash} ("${paths[clash]}")`);
    paths.push(fd.path);
    tokens.push(t);
  });
  if (raw && list && list.length !== 1) c.err(`${p}/fields`, "a raw flow has exactly one field, the whole payload \"\"");
  return list ? declared : undefined;
}

function checkTerms(c: Checker, v: unknown, classes: Map<string, string>): void {
  if (v === undefined) return;
  const t = c.obj(v, "/terms", ["retentionDays", "consent", "sla", "exit", "queue"], ["breachNotificationHours"]);
  if (!t) return;
  c.int(t, "retentionDays", "/terms", 0, 36500);
  c.int(t, "breachNotificationHours", "/terms", 1, 8760);
  const consent = t.consent === undefined ? undefined : c.obj(t.consent, "/terms/consent", [], DataClasses);
  if (consent) {
    for (const k of Object.keys(consent)) if (typeof consent[k] !== "boolean") c.err(`/terms/consent/${esc(k)}`, "must be true or false");
    classes.forEach((where, cls) => {
      if (!Object.prototype.hasOwnProperty.call(consent, cls)) c.err("/terms/consent", `missing consent entry for data class "${cls}" (used at ${where})`);
    });
  }
  const sla = t.sla === undefined ? undefined : c.obj(t.sla, "/terms/sla", ["uptimePercent", "maxLatencyMs"], []);
  if (sla) {
    c.num(sla, "uptimePercent", "/terms/sla", 0, 100);
    c.int(sla, "maxLatencyMs", "/terms/sla", 1, 86400000);
  }
  const exit = t.exit === undefined ? undefined : c.obj(t.exit, "/terms/exit", ["exportFormat", "deletionDays"], []);
  if (exit) {
    c.str(exit, "exportFormat", "/terms/exit", 1, 32, /^[A-Za-z0-9.+/-]+$/, "export format");
    c.int(exit, "deletionDays", "/terms/exit", 0, 3650);
  }
  const q = t.queue === undefined ? undefined : c.obj(t.queue, "/terms/queue", ["maxBytes", "overflow", "ttlSeconds"], []);
  if (q) {
    c.int(q, "maxBytes", "/terms/queue", 0, 1048576);
    c.oneOf(q, "overflow", "/terms/queue", ["drop-oldest", "reject-new"]);
    c.int(q, "ttlSeconds", "/terms/queue", 1, 604800);
  }
}
