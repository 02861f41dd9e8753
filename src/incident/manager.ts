/**
 * The incident workflow over the audit log: open (and contain in one step), notes, notifications,
 * deadlines and their alarms, resolve, review, evidence. Every step is a record appended first; the
 * in-memory {@link IncidentBook} is then folded from the record as read back, so what the gateway
 * believes is always what the log says (and a reboot rebuilds it by replaying the log).
 */
import type { Clock } from "../ports.js";
import type { AuditEvent, AuditLog, AuditRecord, DetailValue } from "../audit/types.js";
import { IncidentBook, MAX_SCOPE, MAX_TEXT, Severities, inScope, joinIds, timeline, type Incident, type Severity } from "./model.js";
import { buildNotice, buildReview, noticeMarkdown, reviewMarkdown, type Notice, type Review } from "./report.js";
import { alarmLevels, deadlines, orderWarning, type Deadline, type DeadlineClock, type IncidentResponseConfig, type Party } from "./deadlines.js";

const DAY = 86_400_000;
const PAGE = 1000;

/** Who acted, as every incident record names them. */
export interface Actor {
  readonly who: string;
  readonly role: string;
  readonly via: string;
  readonly remote: string;
}
export const CONSOLE_ACTOR: Actor = Object.freeze({ who: "console", role: "owner", via: "console", remote: "console" });

/** What the incident code needs from the gateway; each containment step appends its own record. */
export interface IncidentEnv {
  readonly log: Pick<AuditLog, "append" | "query" | "nextSeq">;
  readonly clock: Clock;
  readonly config: IncidentResponseConfig;
  integrations(): readonly string[];
  devices(): readonly string[];
  /** Vendor deadline of an integration's contract in force (`terms.breachNotificationHours`), if it has one. */
  vendorHours(integration: string): { vendor: string; hours: number } | undefined;
  quarantine(integration: string, why: string, actor: Actor): void;
  disableDevice(device: string, why: string, actor: Actor): Promise<number>;
  hold(reason: string): Promise<number>;
  /** Seals the epoch; returns the seal's seq and chain value (base64url). */
  seal(): Promise<{ seq: number; chain: string }>;
  /** Data classes of an integration's contract in force (for the notice). */
  classesOf(integration: string): readonly string[];
  /** SHA-256 of a text, hex. */
  sha256Hex(text: string): string;
  /** Makes pending flow summaries durable, so counts include the last minutes. */
  flush(): Promise<void>;
  /** The evidence snapshot's state fields (contracts and digests, consent, data map counts, device/integration state). */
  snapshot(inc: Incident): Record<string, DetailValue>;
}

export interface OpenRequest {
  readonly title: string;
  readonly integrations?: readonly string[];
  readonly devices?: readonly string[];
  readonly severity?: string;
  /** ms since the epoch; default now. */
  readonly awareAt?: number;
  /** The seq of an alarm record. */
  readonly detectedBy?: number;
}

/** A refusal that names the bad input and what to do (the console prints it, HTTPS answers 400/404 with it). */
export class IncidentError extends Error {
  readonly field: string;
  readonly status: 400 | 404 | 409;
  constructor(field: string, message: string, status: 400 | 404 | 409 = 400) {
    super(message);
    this.field = field;
    this.status = status;
  }
}

export class IncidentManager {
  readonly #e: IncidentEnv;
  readonly book = new IncidentBook();
  readonly #alarmListeners: ((line: string) => void)[] = [];

  constructor(env: IncidentEnv) {
    this.#e = env;
    // Replay: every incident and alarm record in the log, in order.
    for (const r of this._scan(1, (q) => env.log.query({ ...q, kind: "incident" }))) this.book.apply(r);
    for (const r of this._scan(1, (q) => env.log.query({ ...q, kind: "alarm" }))) this.book.apply(r);
  }

  /** Called with each alarm line as it is raised (the console prints it at once). */
  onAlarm(listener: (line: string) => void): void {
    this.#alarmListeners.push(listener);
  }

  get(id: string): Incident {
    const inc = this.book.get(id);
    if (!inc) throw new IncidentError("id", `unknown incident "${id}" (see \`incident list\`)`, 404);
    return inc;
  }

  list(): Incident[] {
    return this.book.all();
  }

  /** Opens an incident; with a scope, contains it at once: quarantine, disable, hold, seal, evidence. */
  async open(req: OpenRequest, actor: Actor): Promise<Incident> {
    const title = typeof req.title === "string" ? req.title.trim() : "";
    if (title === "" || title.length > MAX_TEXT) throw new IncidentError("title", `give a title of 1 to ${MAX_TEXT} characters`);
    const integrations = uniq(req.integrations ?? []);
    const devices = uniq(req.devices ?? []);
    if (integrations.length > MAX_SCOPE || devices.length > MAX_SCOPE) throw new IncidentError("scope", `at most ${MAX_SCOPE} integrations and ${MAX_SCOPE} devices in one incident`);
    for (const i of integrations) if (!this.#e.integrations().includes(i)) throw new IncidentError("integration", `unknown integration "${i}" (see \`integrations\`)`);
    for (const d of devices) if (!this.#e.devices().includes(d)) throw new IncidentError("device", `unknown device "${d}" (see the devices in gateway.json)`);
    const severity = req.severity ?? "medium";
    if (!(Severities as readonly string[]).includes(severity)) throw new IncidentError("severity", "severity must be low, medium or high");
    const now = this.#e.clock.now();
    const awareAt = req.awareAt ?? now;
    if (!Number.isSafeInteger(awareAt) || awareAt > now + 60_000) throw new IncidentError("awareAt", "awareAt must be an ISO time not in the future");
    if (req.detectedBy !== undefined) {
      const a = this.#e.log.query({ since: req.detectedBy, until: req.detectedBy, limit: 1 })[0];
      if (!a || a.kind !== "alarm") throw new IncidentError("detectedBy", `record ${req.detectedBy} is not an alarm (see \`audit 20 alarm\`)`);
    }
    const id = this.book.nextId();
    const base = { incident: id, ...actorDetail(actor) };
    await this._append({
      kind: "incident", decision: "info", reason: "incident-opened",
      detail: { ...base, title, severity, integrations: joinIds(integrations), devices: joinIds(devices), awareAt, clockSet: this.#e.clock.isSet(), mono: this.#e.clock.monotonic(), detectedBy: req.detectedBy ?? "owner" },
    });
    const inc = this.get(id);
    if (integrations.length + devices.length > 0) {
      // Contain, in this order, each step its own record.
      for (const i of integrations) this.#e.quarantine(i, `incident ${id}`, actor);
      for (const d of devices) await this.#e.disableDevice(d, `incident ${id}`, actor);
      await this.#e.hold(`incident ${id}: ${title}`.slice(0, 120));
      const seal = await this.#e.seal();
      await this._append({ kind: "incident", decision: "info", reason: "incident-contained", detail: { ...base, quarantined: integrations.length, disabled: devices.length, hold: true, sealSeq: seal.seq } });
      await this._append({ kind: "incident", decision: "info", reason: "incident-evidence", detail: { ...base, sealSeq: seal.seq, sealChain: seal.chain, ...this.#e.snapshot(inc) } });
    }
    return inc;
  }

  async note(id: string, text: string, actor: Actor): Promise<number> {
    this._live(id);
    const t = typeof text === "string" ? text.trim() : "";
    if (t === "" || t.length > MAX_TEXT) throw new IncidentError("text", `a note is 1 to ${MAX_TEXT} characters`);
    return this._append({ kind: "incident", decision: "info", reason: "incident-note", detail: { incident: id, ...actorDetail(actor), text: t } });
  }

  /** The parties to tell, with their deadlines (the contract's vendors of scoped integrations included). */
  parties(inc: Incident): Party[] {
    const out = [...this.#e.config.parties];
    for (const i of inc.integrations) {
      const v = this.#e.vendorHours(i);
      if (v) out.push({ id: `vendor:${i}`, kind: "external", hours: v.hours, basis: `${v.vendor}: the contract's breachNotificationHours` });
    }
    return out;
  }

  clockOf(inc: Incident): DeadlineClock {
    const c = this.#e.clock;
    return inc.clockSet && c.isSet() ? { elapsedMs: c.now() - inc.awareAt, basis: "wall" } : { elapsedMs: Math.max(0, c.monotonic() - inc.openedMono), basis: "monotonic" };
  }

  deadlines(inc: Incident): { list: Deadline[]; warning: string | undefined; basis: "wall" | "monotonic" } {
    const clock = this.clockOf(inc);
    const list = deadlines(this.parties(inc), clock, inc.notified);
    return { list, warning: orderWarning(list), basis: clock.basis };
  }

  async notify(id: string, party: string, reference: string, actor: Actor): Promise<number> {
    const inc = this.get(id);
    if (!this.parties(inc).some((p) => p.id === party)) throw new IncidentError("party", `unknown party "${party}"; one of ${this.parties(inc).map((p) => p.id).join(", ")}`);
    if (reference.length > MAX_TEXT) throw new IncidentError("reference", `a reference is at most ${MAX_TEXT} characters`);
    const c = this.clockOf(inc);
    return this._append({ kind: "incident", decision: "info", reason: "incident-notified", detail: { incident: id, ...actorDetail(actor), party, reference, clockSet: this.#e.clock.isSet(), mono: this.#e.clock.monotonic(), elapsedMs: c.elapsedMs, basis: c.basis } });
  }

  async resolve(id: string, actor: Actor): Promise<number> {
    this._live(id);
    const due = this.#e.clock.now() + this.#e.config.reviewDays * DAY;
    return this._append({ kind: "incident", decision: "info", reason: "incident-resolved", detail: { incident: id, ...actorDetail(actor), reviewDueAt: due, mono: this.#e.clock.monotonic() } });
  }

  async review(id: string, prevent: string, actions: readonly string[], actor: Actor): Promise<number> {
    const inc = this.get(id);
    if (inc.state !== "resolved") throw new IncidentError("id", `incident ${id} is ${inc.state}: \`incident resolve ${id}\` first`, 409);
    const p = prevent.trim();
    if (p === "" || p.length > MAX_TEXT) throw new IncidentError("prevent", `say what would have prevented it (1 to ${MAX_TEXT} characters)`);
    if (actions.length > 8 || actions.some((a) => a.length > MAX_TEXT)) throw new IncidentError("action", `at most 8 follow-up actions of ${MAX_TEXT} characters`);
    const detail: Record<string, DetailValue> = { incident: id, ...actorDetail(actor), prevent: p, actions: actions.length };
    actions.forEach((a, i) => (detail[`action${i + 1}`] = a));
    return this._append({ kind: "incident", decision: "info", reason: "incident-reviewed", detail });
  }

  get reviewDays(): number {
    return this.#e.config.reviewDays;
  }

  /** The start of the incident's window: `windowDays` before awareness. */
  windowStart(inc: Incident): number {
    return inc.awareAt - this.#e.config.windowDays * DAY;
  }

  /** The incident's timeline, read from the log now (so a record appended a moment ago is in it). */
  timeline(id: string, since = 1): AuditRecord[] {
    const inc = this.get(id);
    const start = this.windowStart(inc);
    return timeline(this._scan(since, (q) => this.#e.log.query({ ...q, fromTime: start })), inc, start);
  }

  /** The first seq of the incident's window (the evidence export starts there). */
  windowFirstSeq(inc: Incident): number {
    return this.#e.log.query({ fromTime: this.windowStart(inc), limit: 1 })[0]?.seq ?? inc.openedSeq;
  }

  /** Whether a record is in the incident's timeline (scope and window). */
  covers(inc: Incident, r: AuditRecord): boolean {
    return r.time >= this.windowStart(inc) && inScope(r, inc);
  }

  /**
   * Raises the deadline alarms now due (50%, 90%, overdue; each once per party) and the review's.
   * Called by the gateway's timer; returns the seqs written.
   */
  async tick(): Promise<number[]> {
    // Each level is marked raised before its record is awaited, so a timer firing again meanwhile
    // (or a tick from a test) never raises it twice.
    const out: number[] = [];
    for (const inc of this.book.all()) {
      if (inc.state === "reviewed") continue;
      const levels: { party: string; level: string; text: string }[] = [];
      for (const d of this.deadlines(inc).list) for (const l of alarmLevels(d)) levels.push({ party: d.id, level: l, text: `incident ${inc.id}: notifying ${d.id} is ${l === "overdue" ? "OVERDUE" : `${l} of its ${d.hours} h`}` });
      if (inc.state === "resolved" && inc.reviewDueAt !== undefined && this.#e.clock.now() >= inc.reviewDueAt) levels.push({ party: "review", level: "overdue", text: `incident ${inc.id}: the post-incident review is OVERDUE` });
      for (const a of levels) {
        if (inc.alarmed.has(`${a.party}|${a.level}`)) continue;
        inc.alarmed.add(`${a.party}|${a.level}`);
        for (const l of this.#alarmListeners) l(a.text);
        out.push(await this._append({ kind: "alarm", decision: "info", reason: a.party === "review" ? "review-deadline" : "notification-deadline", detail: { incident: inc.id, party: a.party, level: a.level, clockSet: this.#e.clock.isSet(), mono: this.#e.clock.monotonic() } }));
      }
    }
    return out;
  }

  /**
   * Generates the breach notice from the log. With `record` (the owner), records the SHA-256 of both
   * forms (what was sent can be proven later), but only when the notice differs from the last one
   * recorded: the same log gives the same notice, and a repeat call writes nothing and cites the
   * earlier record. Without `record` (an auditor: read-only) nothing is written; `seq` is the last
   * recorded notice's record, if any, and `recorded` says whether this exact notice is the one it holds.
   */
  async notice(id: string, actor: Actor, record = true): Promise<{ json: Notice; markdown: string; sha256Json: string; sha256Markdown: string; seq: number | undefined; recorded: "new" | "unchanged" | "no" }> {
    const inc = this.get(id);
    await this.#e.flush();
    const json = buildNotice(inc, this.timeline(id), this.windowStart(inc), (i) => this.#e.classesOf(i), this.#e.config.contact);
    const markdown = noticeMarkdown(json);
    const sha256Json = this.#e.sha256Hex(JSON.stringify(json));
    const sha256Markdown = this.#e.sha256Hex(markdown);
    if (inc.noticeSha256 === sha256Json) return { json, markdown, sha256Json, sha256Markdown, seq: inc.noticeSeq, recorded: "unchanged" };
    if (!record) return { json, markdown, sha256Json, sha256Markdown, seq: inc.noticeSeq, recorded: "no" };
    const seq = await this._append({ kind: "incident", decision: "info", reason: "incident-notice", detail: { incident: id, ...actorDetail(actor), sha256: sha256Json, sha256Markdown, records: json.data.records, devices: json.data.devices, pseudonyms: json.data.pseudonyms } });
    return { json, markdown, sha256Json, sha256Markdown, seq, recorded: "new" };
  }

  /** The post-incident review, pre-filled from the log (and completed once `review` was recorded). */
  reviewReport(id: string): { json: Review; markdown: string } {
    const inc = this.get(id);
    const alarm = inc.detectedBy === "owner" ? undefined : this.#e.log.query({ since: inc.detectedBy, until: inc.detectedBy, limit: 1 })[0];
    const json = buildReview(inc, this.timeline(id), alarm);
    return { json, markdown: reviewMarkdown(json) };
  }

  /** Appends a record, reads it back and folds it in. */
  private async _append(e: AuditEvent): Promise<number> {
    const seq = await this.#e.log.append(e);
    const r = this.#e.log.query({ since: seq, until: seq, limit: 1 })[0];
    if (r) this.book.apply(r);
    return seq;
  }

  private _live(id: string): Incident {
    const inc = this.get(id);
    if (inc.state === "resolved" || inc.state === "reviewed") throw new IncidentError("id", `incident ${id} is already ${inc.state}`, 409);
    return inc;
  }

  /** Every record the query yields from `since` on, page by page (the log caps one query at 1000). */
  private *_scan(since: number, q: (p: { since: number; limit: number }) => AuditRecord[]): Generator<AuditRecord> {
    let from = since;
    for (;;) {
      const page = q({ since: from, limit: PAGE });
      yield* page;
      if (page.length < PAGE) return;
      from = page[page.length - 1]!.seq + 1;
    }
  }
}

export function actorDetail(a: Actor): Record<string, string> {
  return { who: a.who, role: a.role, via: a.via, remote: a.remote };
}

function uniq(xs: readonly string[]): string[] {
  return [...new Set(xs)];
}

export type { Severity };
