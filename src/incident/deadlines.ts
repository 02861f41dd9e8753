/**
 * Notification deadlines: who must be told of an incident, by when, and in what order. A profile in
 * gateway.json (`incidentResponse`) names the parties — built-in `gdpr` (Art. 33: the supervisory
 * authority within 72 h of awareness; Art. 34: data subjects without undue delay when the risk is
 * high), `nis2` (Art. 23: early warning 24 h, notification 72 h, final report one month) or custom —
 * and each scoped integration's contract adds its vendor with `terms.breachNotificationHours`.
 * The order the incident-response guidance gives is internal, then external, then regulatory.
 */
import type { ConfigError } from "../config.js";

export type PartyKind = "internal" | "external" | "regulatory";
const KIND_ORDER: readonly PartyKind[] = Object.freeze(["internal", "external", "regulatory"]);

export interface Party {
  readonly id: string;
  readonly kind: PartyKind;
  /** Hours from awareness. */
  readonly hours: number;
  /** What the party is owed and why (shown with the deadline). */
  readonly basis: string;
}

export const PROFILES: Readonly<Record<"gdpr" | "nis2", readonly Party[]>> = Object.freeze({
  gdpr: Object.freeze([
    { id: "household", kind: "internal", hours: 24, basis: "everyone in the home who runs the gateway" },
    { id: "data-subjects", kind: "external", hours: 72, basis: "GDPR Art. 34: without undue delay when the risk to people is high" },
    { id: "supervisory-authority", kind: "regulatory", hours: 72, basis: "GDPR Art. 33: within 72 hours of becoming aware" },
  ] as Party[]),
  nis2: Object.freeze([
    { id: "household", kind: "internal", hours: 12, basis: "everyone in the home who runs the gateway" },
    { id: "early-warning", kind: "regulatory", hours: 24, basis: "NIS2 Art. 23(4)(a): early warning within 24 hours" },
    { id: "notification", kind: "regulatory", hours: 72, basis: "NIS2 Art. 23(4)(b): incident notification within 72 hours" },
    { id: "final-report", kind: "regulatory", hours: 720, basis: "NIS2 Art. 23(4)(d): final report within one month" },
  ] as Party[]),
});

export interface IncidentResponseConfig {
  readonly profile: "gdpr" | "nis2" | "custom";
  readonly parties: readonly Party[];
  /** The household's contact point, printed on the breach notice. */
  readonly contact: string;
  /** Days after `resolve` within which the post-incident review is due. */
  readonly reviewDays: number;
  /** Days before awareness that the timeline and the evidence export reach back. */
  readonly windowDays: number;
  /** Alarm thresholds (src/incident/alarms.ts); absent ones keep their defaults. */
  readonly alarms: Readonly<Partial<Record<"undeclaredFields" | "rateLimited" | "authFailures" | "windowMs", number>>>;
}

export const DEFAULT_INCIDENT_RESPONSE: IncidentResponseConfig = Object.freeze({ profile: "gdpr", parties: PROFILES.gdpr, contact: "the household (set incidentResponse.contact)", reviewDays: 7, windowDays: 30, alarms: {} });

const PARTY_ID = /^[a-z0-9][a-z0-9-]{0,31}$/;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Parses `incidentResponse` of gateway.json (absent: the gdpr profile). Errors are pushed, the default returned. */
export function parseIncidentResponse(raw: unknown, errors: ConfigError[]): IncidentResponseConfig {
  if (raw === undefined) return DEFAULT_INCIDENT_RESPONSE;
  const p = "/incidentResponse";
  if (!isObject(raw)) {
    errors.push({ path: p, message: "must be an object: {profile: gdpr|nis2|custom, parties?, contact?, reviewDays?, windowDays?}" });
    return DEFAULT_INCIDENT_RESPONSE;
  }
  for (const k of Object.keys(raw)) if (!["profile", "parties", "contact", "reviewDays", "windowDays", "alarms"].includes(k)) errors.push({ path: `${p}/${k}`, message: "unknown option; one of profile, parties, contact, reviewDays, windowDays, alarms" });
  const profile = raw.profile ?? "gdpr";
  if (profile !== "gdpr" && profile !== "nis2" && profile !== "custom") errors.push({ path: `${p}/profile`, message: "must be gdpr, nis2 or custom" });
  const parties: Party[] = profile === "gdpr" || profile === "nis2" ? [...PROFILES[profile]] : [];
  if (raw.parties !== undefined) {
    if (!Array.isArray(raw.parties)) errors.push({ path: `${p}/parties`, message: "must be an array of {id, kind, hours, basis}" });
    else
      raw.parties.forEach((v: unknown, i: number) => {
        const at = `${p}/parties/${i}`;
        if (!isObject(v)) return void errors.push({ path: at, message: "must be an object {id, kind, hours, basis}" });
        if (typeof v.id !== "string" || !PARTY_ID.test(v.id)) return void errors.push({ path: `${at}/id`, message: "must be a lower-case id (a-z, 0-9, -; at most 32)" });
        if (!KIND_ORDER.includes(v.kind as PartyKind)) return void errors.push({ path: `${at}/kind`, message: "must be internal, external or regulatory" });
        if (typeof v.hours !== "number" || !Number.isInteger(v.hours) || v.hours < 1 || v.hours > 8760) return void errors.push({ path: `${at}/hours`, message: "must be whole hours from 1 to 8760" });
        const basis = typeof v.basis === "string" ? v.basis.slice(0, 120) : "";
        const j = parties.findIndex((q) => q.id === v.id);
        const party: Party = { id: v.id, kind: v.kind as PartyKind, hours: v.hours, basis };
        if (j >= 0) parties[j] = party;
        else parties.push(party);
      });
  }
  if (profile === "custom" && parties.length === 0) errors.push({ path: `${p}/parties`, message: "a custom profile needs at least one party" });
  const int = (k: "reviewDays" | "windowDays", d: number, max: number): number => {
    const v = raw[k];
    if (v === undefined) return d;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > max) {
      errors.push({ path: `${p}/${k}`, message: `must be whole days from 1 to ${max}` });
      return d;
    }
    return v;
  };
  const contact = typeof raw.contact === "string" && raw.contact.length > 0 ? raw.contact.slice(0, 200) : DEFAULT_INCIDENT_RESPONSE.contact;
  if (raw.contact !== undefined && typeof raw.contact !== "string") errors.push({ path: `${p}/contact`, message: "must be a string (who to contact about the incident)" });
  const alarms: Record<string, number> = {};
  if (raw.alarms !== undefined) {
    if (!isObject(raw.alarms)) errors.push({ path: `${p}/alarms`, message: "must be an object {undeclaredFields, rateLimited, authFailures, windowMs}" });
    else
      for (const [k, v] of Object.entries(raw.alarms)) {
        if (!["undeclaredFields", "rateLimited", "authFailures", "windowMs"].includes(k)) errors.push({ path: `${p}/alarms/${k}`, message: "unknown alarm; one of undeclaredFields, rateLimited, authFailures, windowMs" });
        else if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 86_400_000) errors.push({ path: `${p}/alarms/${k}`, message: "must be a whole number from 1 (counts; windowMs in ms)" });
        else alarms[k] = v;
      }
  }
  return { alarms, profile: profile === "nis2" || profile === "custom" ? profile : "gdpr", parties, contact, reviewDays: int("reviewDays", 7, 90), windowDays: int("windowDays", 30, 365) };
}

export interface Deadline extends Party {
  /** Due, in the incident's clock (see {@link DeadlineClock}). */
  readonly dueMs: number;
  /** Ms left (negative when overdue); undefined once notified. */
  readonly leftMs: number | undefined;
  /** Elapsed share of the allowed time, 0..∞, at `now`. */
  readonly fraction: number;
  readonly notifiedSeq: number | undefined;
}

/**
 * Elapsed ms since awareness: wall-clock when the clock was set at opening and is set now, else
 * monotonic ms since the incident was opened on this boot (`basis` says which; both are recorded).
 */
export interface DeadlineClock {
  readonly elapsedMs: number;
  readonly basis: "wall" | "monotonic";
}

const HOUR = 3_600_000;

/** Every party's deadline in the order internal → external → regulatory (then by due time). */
export function deadlines(parties: readonly Party[], clock: DeadlineClock, notified: readonly { party: string; seq: number }[]): Deadline[] {
  return parties
    .map((p, i) => ({ p, i }))
    .sort((a, b) => KIND_ORDER.indexOf(a.p.kind) - KIND_ORDER.indexOf(b.p.kind) || a.p.hours - b.p.hours || a.i - b.i)
    .map(({ p }) => {
      const due = p.hours * HOUR;
      const n = notified.find((x) => x.party === p.id);
      return { ...p, dueMs: due, leftMs: n ? undefined : due - clock.elapsedMs, fraction: clock.elapsedMs / due, notifiedSeq: n?.seq };
    });
}

/**
 * A warning when telling the parties strictly in order (each still open one after the one before,
 * at its own deadline) would reach a regulatory party after its deadline: an earlier-kind party's
 * deadline is later than a regulator's.
 */
export function orderWarning(ds: readonly Deadline[]): string | undefined {
  const open = ds.filter((d) => d.notifiedSeq === undefined);
  for (const reg of open.filter((d) => d.kind === "regulatory")) {
    const before = open.filter((d) => d.kind !== "regulatory" && d.dueMs > reg.dueMs);
    if (before.length) return `telling ${before.map((d) => d.id).join(", ")} first at their deadlines would miss ${reg.id} (due ${reg.hours} h after awareness): notify ${reg.id} before or alongside them`;
  }
  return undefined;
}

/** The alarm levels a deadline has reached: 50%, 90%, overdue. */
export function alarmLevels(d: Deadline): ("50%" | "90%" | "overdue")[] {
  if (d.notifiedSeq !== undefined) return [];
  const out: ("50%" | "90%" | "overdue")[] = [];
  if (d.fraction >= 0.5) out.push("50%");
  if (d.fraction >= 0.9) out.push("90%");
  if (d.fraction >= 1) out.push("overdue");
  return out;
}

/** "2 h 5 min left" / "overdue by 3 h 1 min" / "notified (record 12)". */
export function leftText(d: Deadline): string {
  if (d.notifiedSeq !== undefined) return `notified (record ${d.notifiedSeq})`;
  const ms = Math.abs(d.leftMs ?? 0);
  const h = Math.floor(ms / HOUR);
  const m = Math.floor((ms % HOUR) / 60_000);
  const t = h > 0 ? `${h} h ${m} min` : `${m} min`;
  return (d.leftMs ?? 0) >= 0 ? `${t} left` : `overdue by ${t}`;
}
