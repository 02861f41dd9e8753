/**
 * Incidents as the audit log tells them: the records of kind `incident` whose detail names an
 * incident id, folded in sequence order into each incident's state. The log is the source of truth:
 * at boot {@link IncidentBook.apply} replays every such record, and nothing else is kept.
 *
 *   open ──contain──▶ contained ──resolve──▶ resolved ──review──▶ reviewed
 *     └───────────────resolve────────────────▲
 *
 * Record reasons (kind `incident`, detail.incident = the id): incident-opened, incident-contained,
 * incident-evidence, incident-note, incident-notified, incident-resolved, incident-reviewed,
 * incident-notice; alarms of deadlines are kind `alarm` with detail.incident. See SPEC.md "Incidents".
 */
import type { AuditRecord, DetailValue } from "../audit/types.js";

export type IncidentState = "open" | "contained" | "resolved" | "reviewed";
export const Severities = Object.freeze(["low", "medium", "high"] as const);
export type Severity = (typeof Severities)[number];

export interface Scope {
  readonly integrations: readonly string[];
  readonly devices: readonly string[];
}

export interface Notification {
  readonly party: string;
  readonly reference: string;
  readonly seq: number;
  readonly time: number;
  readonly mono: number;
}

export interface Incident extends Scope {
  readonly id: string;
  title: string;
  severity: Severity;
  /** When the household became aware (ms since the epoch, or the board's guess when `clockSet` is false). */
  awareAt: number;
  /** Monotonic ms at opening, and whether the wall clock was set then (deadlines use monotonic time otherwise). */
  openedMono: number;
  clockSet: boolean;
  /** The seq of the alarm record that led to the incident, or "owner". */
  detectedBy: number | "owner";
  state: IncidentState;
  openedSeq: number;
  openedAt: number;
  containedSeq?: number;
  containedAt?: number;
  evidenceSeq?: number;
  sealSeq?: number;
  sealChain?: string;
  notes: number;
  notified: Notification[];
  /** `party|level` of every deadline alarm already raised, so each fires once. */
  alarmed: Set<string>;
  resolvedAt?: number;
  resolvedMono?: number;
  reviewDueAt?: number;
  reviewedAt?: number;
  reviewSeq?: number;
  /** SHA-256 (hex, of the JSON) of the last notice recorded, and that record's seq. */
  noticeSha256?: string;
  noticeSeq?: number;
}

/** Longest title and note (audit strings are bounded at 256). */
export const MAX_TEXT = 200;
/** Most integrations and devices in one scope (their ids are joined into one detail string). */
export const MAX_SCOPE = 8;

export function joinIds(ids: readonly string[]): string {
  return ids.join(",");
}
export function splitIds(v: DetailValue | undefined): string[] {
  return typeof v === "string" && v !== "" ? v.split(",") : [];
}

const num = (v: DetailValue | undefined, d = 0): number => (typeof v === "number" ? v : d);
const text = (v: DetailValue | undefined): string => (typeof v === "string" ? v : "");

/** Every incident, rebuilt from its records in sequence order. */
export class IncidentBook {
  readonly #byId = new Map<string, Incident>();

  get(id: string): Incident | undefined {
    return this.#byId.get(id);
  }

  all(): Incident[] {
    return [...this.#byId.values()];
  }

  /** The id the next incident gets. */
  nextId(): string {
    return `inc-${this.#byId.size + 1}`;
  }

  /** Folds one record into the state; records that are not an incident's are ignored. */
  apply(r: AuditRecord): void {
    const d = r.detail;
    if (!d || typeof d.incident !== "string") return;
    const id = d.incident;
    if (r.kind === "alarm") {
      const inc = this.#byId.get(id);
      if (inc && typeof d.party === "string" && typeof d.level === "string") inc.alarmed.add(`${d.party}|${d.level}`);
      return;
    }
    if (r.kind !== "incident") return;
    if (r.reason === "incident-opened") {
      if (this.#byId.has(id)) return;
      const sev = text(d.severity);
      this.#byId.set(id, {
        id, title: text(d.title), severity: (Severities as readonly string[]).includes(sev) ? (sev as Severity) : "medium",
        integrations: splitIds(d.integrations), devices: splitIds(d.devices),
        awareAt: num(d.awareAt, r.time), openedMono: num(d.mono), clockSet: d.clockSet === true,
        detectedBy: typeof d.detectedBy === "number" ? d.detectedBy : "owner",
        state: "open", openedSeq: r.seq, openedAt: r.time, notes: 0, notified: [], alarmed: new Set(),
      });
      return;
    }
    const inc = this.#byId.get(id);
    if (!inc) return;
    switch (r.reason) {
      case "incident-contained":
        if (inc.state === "open") inc.state = "contained";
        inc.containedSeq = r.seq;
        inc.containedAt = r.time;
        break;
      case "incident-evidence":
        inc.evidenceSeq = r.seq;
        if (typeof d.sealSeq === "number") inc.sealSeq = d.sealSeq;
        if (typeof d.sealChain === "string") inc.sealChain = d.sealChain;
        break;
      case "incident-note":
        inc.notes++;
        break;
      case "incident-notified":
        inc.notified.push({ party: text(d.party), reference: text(d.reference), seq: r.seq, time: r.time, mono: num(d.mono) });
        break;
      case "incident-resolved":
        inc.state = "resolved";
        inc.resolvedAt = r.time;
        inc.resolvedMono = num(d.mono);
        inc.reviewDueAt = num(d.reviewDueAt);
        break;
      case "incident-reviewed":
        inc.state = "reviewed";
        inc.reviewedAt = r.time;
        inc.reviewSeq = r.seq;
        break;
      case "incident-notice":
        if (typeof d.sha256 === "string") {
          inc.noticeSha256 = d.sha256;
          inc.noticeSeq = r.seq;
        }
        break;
    }
  }
}

/**
 * Whether a record belongs to an incident's scope: it is one of the incident's own records (or its
 * containment's legal hold or seal), or it names a scoped integration or device (directly, or in one
 * of its flow-summary rows).
 */
export function inScope(r: AuditRecord, inc: Scope & { readonly id: string; readonly sealSeq?: number }): boolean {
  if (r.detail !== undefined && r.detail.incident === inc.id) return true;
  // The containment's legal hold and seal name no integration or device: matched by what they say.
  if (r.kind === "incident" && r.reason === "legal-hold" && typeof r.detail?.hold === "string" && r.detail.hold.startsWith(`incident ${inc.id}:`)) return true;
  if (r.kind === "seal" && inc.sealSeq !== undefined && r.seq === inc.sealSeq) return true;
  if (r.integration !== undefined && inc.integrations.includes(r.integration)) return true;
  if (r.device !== undefined && inc.devices.includes(r.device)) return true;
  if (r.summary !== undefined) {
    for (const row of r.summary) if (inc.devices.includes(row.device) || (row.integration !== null && inc.integrations.includes(row.integration))) return true;
  }
  return false;
}

/** The timeline: the in-scope records at or after `windowStart` (ms), in log order. */
export function timeline(records: Iterable<AuditRecord>, inc: Scope & { readonly id: string; readonly sealSeq?: number }, windowStart: number): AuditRecord[] {
  const out: AuditRecord[] = [];
  for (const r of records) if (r.time >= windowStart && inScope(r, inc)) out.push(r);
  return out;
}
