/**
 * The incident routes of the admin API (see SPEC.md "Incidents" for the table). Reads need owner or
 * auditor, changes owner. Every record names the caller: {who, role, via, remote} from the principal.
 * Bad JSON or unknown ids answer 400/404 with a JSON error naming the field; nothing changes then.
 */
import type { AdminResponse, AdminStream } from "../admin/api.js";
import type { Clock, TimerId, Timers } from "../ports.js";
import type { AuditRecord } from "../audit/types.js";
import { recordLines } from "../admin/api.js";
import { frozenTable } from "../util/frozen.js";
import { errorReply, jsonBody, jsonReply, type Principal, type Route, type RouteCall } from "../admin/routes.js";
import { IncidentError, type Actor, type IncidentManager } from "./manager.js";
import type { Incident } from "./model.js";
import type { ExitResult } from "./exit.js";

const READ = ["owner", "auditor"] as const;
const CHANGE = ["owner"] as const;

export interface IncidentRouteOptions {
  readonly exportJsonl: (from: number | undefined, to: number | undefined) => Promise<string[]>;
  readonly beforeRead?: () => Promise<void>;
  /** Exit for an integration (src/incident/exit.ts). */
  readonly exit?: (integration: string, actor: Actor) => Promise<ExitResult>;
  /** Serves `?follow=1` on the timeline; without it the query answers 400. */
  readonly follow?: FollowOptions;
}

/** How long a follow stream lives at most, how often it looks for new records, and its keep-alive. */
export const FOLLOW_DEFAULTS = Object.freeze({ maxMs: 10 * 60_000, pollMs: 1000, keepAliveMs: 15_000 });

export interface FollowOptions {
  readonly timers: Timers;
  readonly clock: Pick<Clock, "monotonic">;
  /** Defaults: {@link FOLLOW_DEFAULTS}. */
  readonly maxMs?: number;
  readonly pollMs?: number;
  readonly keepAliveMs?: number;
  /** Told when a follow stream starts (+1) and ends (-1), so a host can see none is left behind. */
  readonly onOpen?: (delta: 1 | -1) => void;
  /** The log's next seq (AuditLog.nextSeq): a look that finds nothing then starts after it next time. */
  readonly nextSeq: () => number;
}

/** What one look at the log found: the records from `since` on, and the seq to look from next time (the log's next seq then). */
export interface FollowRead {
  readonly records: readonly AuditRecord[];
  readonly next: number;
}

/**
 * A follow stream: `read(since)` gives the records from `since` on; new ones are looked for every
 * `pollMs` and sent as NDJSON lines, a bare "\n" goes out after `keepAliveMs` of silence (so idle
 * timeouts see traffic), and the stream ends after `maxMs` or when the host closes it (client gone).
 * At most one timer is pending at a time; close() cancels it.
 */
export function followStream(read: (since: number) => Promise<FollowRead>, since: number, f: FollowOptions): AdminStream {
  const maxMs = f.maxMs ?? FOLLOW_DEFAULTS.maxMs;
  const pollMs = f.pollMs ?? FOLLOW_DEFAULTS.pollMs;
  const keepAliveMs = f.keepAliveMs ?? FOLLOW_DEFAULTS.keepAliveMs;
  const start = f.clock.monotonic();
  let next = since;
  let lastSent = start;
  let timer: TimerId | undefined;
  let wake: ((v: string | undefined) => void) | undefined;
  let closed = false;
  f.onOpen?.(1);
  const close = (): void => {
    if (closed) return;
    closed = true;
    if (timer !== undefined) f.timers.cancel(timer);
    timer = undefined;
    const w = wake;
    wake = undefined;
    w?.(undefined);
    f.onOpen?.(-1);
  };
  const poll = async (): Promise<string | undefined> => {
    for (;;) {
      if (closed) return undefined;
      const now = f.clock.monotonic();
      if (now - start >= maxMs) {
        close();
        return undefined;
      }
      const got = await read(next);
      if (closed) return undefined;
      const records = got.records;
      next = Math.max(next, got.next);
      if (records.length > 0) {
        lastSent = now;
        return records.map((r) => recordLines(r).map((l) => JSON.stringify(l) + "\n").join("")).join("");
      }
      if (now - lastSent >= keepAliveMs) {
        lastSent = now;
        return "\n";
      }
      const wait = Math.max(1, Math.min(pollMs, maxMs - (now - start)));
      const woken = await new Promise<string | undefined>((resolve) => {
        wake = resolve;
        timer = f.timers.after(wait, () => {
          timer = undefined;
          wake = undefined;
          resolve("");
        });
      });
      if (woken === undefined) return undefined;
    }
  };
  return { next: poll, close };
}

function actor(p: Principal): Actor {
  return { who: p.account, role: p.role, via: p.via, remote: p.remote };
}

/** The incident as served: state, scope, awareness, evidence, deadlines with time left. */
export function incidentJson(m: IncidentManager, inc: Incident): Record<string, unknown> {
  const d = m.deadlines(inc);
  const iso = (t: number | undefined): string | null => (t === undefined ? null : new Date(t).toISOString());
  return {
    id: inc.id, title: inc.title, severity: inc.severity, state: inc.state,
    scope: { integrations: inc.integrations, devices: inc.devices },
    awareAt: iso(inc.awareAt), clockSet: inc.clockSet, detectedBy: inc.detectedBy, openedSeq: inc.openedSeq,
    evidence: inc.evidenceSeq === undefined ? null : { seq: inc.evidenceSeq, sealSeq: inc.sealSeq, sealChain: inc.sealChain },
    notes: inc.notes,
    notifications: inc.notified.map((n) => ({ party: n.party, reference: n.reference, seq: n.seq, time: iso(n.time) })),
    deadlines: { basis: d.basis, warning: d.warning ?? null, parties: d.list.map((x) => ({ party: x.id, kind: x.kind, hours: x.hours, basis: x.basis, leftMs: x.leftMs ?? null, notifiedSeq: x.notifiedSeq ?? null })) },
    reviewDueAt: iso(inc.reviewDueAt), reviewedAt: iso(inc.reviewedAt), noticeSha256: inc.noticeSha256 ?? null,
  };
}

const str = (v: unknown): v is string => typeof v === "string";
const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every(str);

async function guarded(f: () => Promise<AdminResponse> | AdminResponse): Promise<AdminResponse> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof IncidentError) return errorReply(e.status, e.message, e.field);
    return errorReply(500, `incident step failed: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** What the incident routes' handlers get: the manager and the host's export, read and exit hooks. */
export interface IncidentRouteContext {
  readonly m: IncidentManager;
  readonly o: IncidentRouteOptions;
}

function get(m: IncidentManager, c: RouteCall): Incident {
  return m.get(c.params.id ?? "");
}

function body(c: RouteCall): Record<string, unknown> {
  const b = jsonBody(c.req);
  if (!b.ok) throw new IncidentError("body", JSON.parse(b.response.body[0]!).error as string);
  return b.value;
}

function format(c: RouteCall): "md" | "json" {
  const f = c.query.get("format") ?? "json";
  if (f !== "md" && f !== "json") throw new IncidentError("format", "format must be md or json");
  return f;
}

/** The exit route, served where the host gives `exit` (a table of its own so the route table lists it only there). */
export const EXIT_ROUTES: readonly Route<IncidentRouteContext>[] = frozenTable<Route<IncidentRouteContext>>([{
  method: "POST", path: "/api/v1/integrations/{id}/exit", roles: CHANGE, summary: "exit: export, quarantine, purge queue, destroy pseudonym key, remove contract; the deletion certificate and the export (JSON)",
  handle: (c, { o }) => guarded(async () => {
    if (!o.exit) throw new IncidentError("id", "exit is not served here");
    const r = await o.exit(c.params.id ?? "", actor(c.principal));
    return jsonReply(200, { certificate: r.certificate, markdown: r.markdown, export: r.exportLines });
  }),
}]);

/** The incident routes: built once when the module loads and frozen (in flash on the device). */
export const INCIDENT_ROUTES: readonly Route<IncidentRouteContext>[] = frozenTable<Route<IncidentRouteContext>>([
  {
    method: "POST", path: "/api/v1/incidents", roles: CHANGE, summary: "open an incident (contains its scope at once)",
    handle: (c, { m, o }) => guarded(async () => {
      const b = body(c);
      if (!str(b.title)) throw new IncidentError("title", "title must be a string");
      const scope = (b.scope ?? {}) as Record<string, unknown>;
      if (typeof scope !== "object" || scope === null || Array.isArray(scope)) throw new IncidentError("scope", "scope must be {integrations: [...], devices: [...]}");
      if (scope.integrations !== undefined && !strings(scope.integrations)) throw new IncidentError("scope.integrations", "scope.integrations must be an array of integration ids");
      if (scope.devices !== undefined && !strings(scope.devices)) throw new IncidentError("scope.devices", "scope.devices must be an array of device ids");
      if (b.severity !== undefined && !str(b.severity)) throw new IncidentError("severity", "severity must be low, medium or high");
      let awareAt: number | undefined;
      if (b.awareAt !== undefined) {
        awareAt = str(b.awareAt) ? Date.parse(b.awareAt) : NaN;
        if (Number.isNaN(awareAt)) throw new IncidentError("awareAt", "awareAt must be an ISO time");
      }
      if (b.detectedBy !== undefined && (typeof b.detectedBy !== "number" || !Number.isSafeInteger(b.detectedBy))) throw new IncidentError("detectedBy", "detectedBy must be the seq of an alarm record");
      const inc = await m.open({
        title: b.title, integrations: (scope.integrations as string[] | undefined) ?? [], devices: (scope.devices as string[] | undefined) ?? [],
        ...(b.severity !== undefined ? { severity: b.severity as string } : {}), ...(awareAt !== undefined ? { awareAt } : {}), ...(b.detectedBy !== undefined ? { detectedBy: b.detectedBy as number } : {}),
      }, actor(c.principal));
      return jsonReply(201, incidentJson(m, inc), { location: `/api/v1/incidents/${inc.id}` });
    }),
  },
  { method: "GET", path: "/api/v1/incidents", roles: READ, summary: "every incident", handle: (_c, { m }) => jsonReply(200, m.list().map((i) => incidentJson(m, i))) },
  { method: "GET", path: "/api/v1/incidents/{id}", roles: READ, summary: "one incident, with deadlines and time left", handle: (c, { m, o }) => guarded(() => jsonReply(200, incidentJson(m, get(m, c)))) },
  {
    method: "GET", path: "/api/v1/incidents/{id}/timeline", roles: READ, summary: "the timeline (NDJSON; ?since=<seq> for entries after one already seen)",
    handle: (c, { m, o }) => guarded(async () => {
      get(m, c);
      const follow = c.query.get("follow");
      if (follow !== undefined && follow !== "1") throw new IncidentError("follow", "follow must be 1");
      if (follow !== undefined && !o.follow) throw new IncidentError("follow", "follow is not served here: poll with ?since=<last seq + 1> (each read includes records appended a moment ago)");
      const since = c.query.get("since");
      if (since !== undefined && !/^[1-9][0-9]{0,15}$/.test(since)) throw new IncidentError("since", "since must be a record seq");
      await o.beforeRead?.();
      const id = c.params.id!;
      const records = m.timeline(id, since === undefined ? 1 : Number(since));
      const upTo = o.follow?.nextSeq() ?? 0;
      const lines = records.flatMap((r) => recordLines(r).map((l) => JSON.stringify(l) + "\n"));
      if (follow === undefined || !o.follow) return { status: 200, contentType: "application/x-ndjson", body: lines };
      // The entries so far, then each new in-scope record as it lands.
      const f = o.follow;
      const read = async (s: number): Promise<FollowRead> => {
        await o.beforeRead?.();
        const found = m.timeline(id, s);
        return { records: found, next: f.nextSeq() };
      };
      return { status: 200, contentType: "application/x-ndjson", body: lines, stream: followStream(read, upTo, f) };
    }),
  },
  {
    method: "POST", path: "/api/v1/incidents/{id}/notes", roles: CHANGE, summary: "add a note {text}",
    handle: (c, { m, o }) => guarded(async () => {
      get(m, c);
      const b = body(c);
      if (!str(b.text)) throw new IncidentError("text", "text must be a string");
      return jsonReply(201, { seq: await m.note(c.params.id!, b.text, actor(c.principal)) });
    }),
  },
  {
    method: "POST", path: "/api/v1/incidents/{id}/notifications", roles: CHANGE, summary: "record that a party was told {party, reference}",
    handle: (c, { m, o }) => guarded(async () => {
      get(m, c);
      const b = body(c);
      if (!str(b.party)) throw new IncidentError("party", "party must be a string (see the incident's deadlines)");
      if (b.reference !== undefined && !str(b.reference)) throw new IncidentError("reference", "reference must be a string");
      return jsonReply(201, { seq: await m.notify(c.params.id!, b.party, (b.reference as string | undefined) ?? "", actor(c.principal)) });
    }),
  },
  { method: "POST", path: "/api/v1/incidents/{id}/resolve", roles: CHANGE, summary: "resolve (starts the review deadline)", handle: (c, { m, o }) => guarded(async () => (get(m, c), jsonReply(200, { seq: await m.resolve(c.params.id!, actor(c.principal)), incident: incidentJson(m, get(m, c)) }))) },
  {
    method: "POST", path: "/api/v1/incidents/{id}/review", roles: CHANGE, summary: "complete the review {prevent, actions}",
    handle: (c, { m, o }) => guarded(async () => {
      get(m, c);
      const b = body(c);
      if (!str(b.prevent)) throw new IncidentError("prevent", "prevent must be a string: what would have prevented it");
      if (b.actions !== undefined && !strings(b.actions)) throw new IncidentError("actions", "actions must be an array of strings");
      const seq = await m.review(c.params.id!, b.prevent, (b.actions as string[] | undefined) ?? [], actor(c.principal));
      return jsonReply(200, { seq, review: m.reviewReport(c.params.id!).json });
    }),
  },
  {
    method: "GET", path: "/api/v1/incidents/{id}/notice", roles: READ, summary: "generate the breach notice (?format=md|json; the owner's call records its SHA-256 when it changed, an auditor's records nothing)",
    handle: (c, { m, o }) => guarded(async () => {
      get(m, c);
      const f = format(c);
      const n = await m.notice(c.params.id!, actor(c.principal), c.principal.role === "owner");
      const headers: Record<string, string> = { "x-portcullis-recorded": n.recorded, "x-portcullis-sha256": f === "md" ? n.sha256Markdown : n.sha256Json };
      if (n.seq !== undefined && n.recorded !== "no") headers["x-portcullis-record"] = String(n.seq);
      return f === "md" ? { status: 200, contentType: "text/markdown; charset=utf-8", body: [n.markdown], headers } : { status: 200, contentType: "application/json", body: [JSON.stringify(n.json)], headers };
    }),
  },
  {
    method: "GET", path: "/api/v1/incidents/{id}/review", roles: READ, summary: "the post-incident review, pre-filled (?format=md|json)",
    handle: (c, { m, o }) => guarded(async () => {
      get(m, c);
      const f = format(c);
      await o.beforeRead?.();
      const r = m.reviewReport(c.params.id!);
      return f === "md" ? { status: 200, contentType: "text/markdown; charset=utf-8", body: [r.markdown] } : jsonReply(200, r.json);
    }),
  },
  {
    method: "GET", path: "/api/v1/incidents/{id}/evidence", roles: READ, summary: "evidence bundle: the self-verifying audit export of the incident's window (JSONL)",
    handle: (c, { m, o }) => guarded(async () => {
      const inc = get(m, c);
      const lines = await o.exportJsonl(m.windowFirstSeq(inc), undefined);
      return { status: 200, contentType: "application/x-ndjson", body: lines.map((l) => l + "\n") };
    }),
  },
]);
