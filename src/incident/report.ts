/**
 * What the incident's records add up to, for people: the breach notice (the five components of the
 * breach-response guidance and GDPR Art. 33(3), plus the contact point) and the post-incident review.
 * Both are computed from the timeline only (the log), never from memory, as JSON and as Markdown.
 */
import type { AuditRecord } from "../audit/types.js";
import type { Incident } from "./model.js";

/** What each data class puts at risk, and what the people affected can do (the notice's components 3 and 5). */
export const CLASS_RISKS: Readonly<Record<string, { readonly consequence: string; readonly action: string }>> = Object.freeze({
  energy: { consequence: "daily routines and absences can be inferred from consumption", action: "watch for unusual contact or visits timed to your absences" },
  presence: { consequence: "burglary risk: who is home and when", action: "vary routines for a while; check door and alarm logs" },
  location: { consequence: "physical safety: where people are or go", action: "review who knows your movements; tell the police of any stalking" },
  health: { consequence: "discrimination, distress, insurance effects", action: "ask the vendor what it holds; consider telling your doctor or insurer" },
  audio: { consequence: "private conversations exposed", action: "assume recorded conversations are known; change anything said that protects access" },
  video: { consequence: "images of the home and its people exposed", action: "check what the camera saw; request deletion from the vendor" },
  identifier: { consequence: "tracking and linking across services", action: "change device names and account identifiers the vendor knew" },
  diagnostic: { consequence: "device weaknesses revealed to attackers", action: "update the device's firmware" },
  environment: { consequence: "little on its own; with other data, occupancy can be inferred", action: "none needed beyond the other classes" },
  usage: { consequence: "habits and schedules inferred", action: "vary schedules; review the vendor's app sessions" },
});

export interface FlowCounts {
  readonly integration: string;
  readonly classes: readonly string[];
  readonly records: number;
  readonly devices: number;
  /** Distinct pseudonyms: device × pseudonym key generation (a rotation or destruction starts a new one). */
  readonly pseudonyms: number;
}

/** Messages that left (allowed or minimized) for each scoped integration, from flow and flow-summary records. */
export function flowCounts(tl: readonly AuditRecord[], inc: Incident, classesOf: (integration: string) => readonly string[]): FlowCounts[] {
  return inc.integrations.map((id) => {
    let gen = 0;
    let records = 0;
    const devices = new Set<string>();
    const pseudonyms = new Set<string>();
    const add = (device: string, n: number): void => {
      records += n;
      devices.add(device);
      pseudonyms.add(`${device}|${gen}`);
    };
    for (const r of tl) {
      if (r.kind === "admin" && r.integration === id && (r.reason === "key-rotated" || r.reason === "key-destroyed")) gen++;
      else if (r.kind === "flow" && r.integration === id && (r.decision === "allow" || r.decision === "minimize") && r.device !== undefined) add(r.device, 1);
      else if (r.kind === "flow-summary" && r.summary) for (const row of r.summary) if (row.integration === id) add(row.device, row.count);
    }
    return { integration: id, classes: classesOf(id), records, devices: devices.size, pseudonyms: pseudonyms.size };
  });
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/** The containment and later steps, with times: incident and admin records of the timeline. */
function steps(tl: readonly AuditRecord[], inc: Incident): { seq: number; time: string | null; step: string }[] {
  return tl
    .filter((r) => r.seq >= inc.openedSeq && (r.kind === "incident" || r.kind === "admin" || r.kind === "seal") && r.reason !== "incident-note")
    .map((r) => ({ seq: r.seq, time: iso(r.time), step: `${r.reason ?? r.kind}${r.integration ? ` ${r.integration}` : ""}${r.device ? ` ${r.device}` : ""}${typeof r.detail?.party === "string" ? ` ${r.detail.party}` : ""}` }));
}

function notes(tl: readonly AuditRecord[], inc: Incident): { seq: number; time: string | null; text: string }[] {
  return tl.filter((r) => r.kind === "incident" && r.reason === "incident-note" && r.detail?.incident === inc.id).map((r) => ({ seq: r.seq, time: iso(r.time), text: String(r.detail?.text ?? "") }));
}

export interface Notice {
  readonly format: "portcullis-breach-notice-1";
  readonly incident: string;
  readonly description: { title: string; severity: string; awareAt: string | null; window: { from: string | null; to: string | null }; notes: ReturnType<typeof notes> };
  readonly data: { flows: FlowCounts[]; records: number; devices: number; pseudonyms: number };
  readonly consequences: { class: string; consequence: string }[];
  readonly steps: ReturnType<typeof steps>;
  readonly recommendations: { class: string; action: string }[];
  readonly contact: string;
}

/**
 * The breach notice from the incident's timeline. A function of the log only, so the same log gives the
 * same notice (and hash): the notice records themselves are left out, and the window ends at the time
 * of the latest record considered (the window's start when there is none), not at the call's time.
 */
export function buildNotice(inc: Incident, timelineRecords: readonly AuditRecord[], windowStart: number, classesOf: (i: string) => readonly string[], contact: string): Notice {
  const tl = timelineRecords.filter((r) => !(r.kind === "incident" && r.reason === "incident-notice"));
  let end = windowStart;
  for (const r of tl) if (r.time > end) end = r.time;
  const flows = flowCounts(tl, inc, classesOf);
  const classes = [...new Set(flows.flatMap((f) => f.classes))];
  const deviceSet = new Set<string>();
  for (const r of tl) {
    if (r.kind === "flow" && r.integration !== undefined && inc.integrations.includes(r.integration) && r.decision !== "deny" && r.device) deviceSet.add(r.device);
    if (r.kind === "flow-summary" && r.summary) for (const row of r.summary) if (row.integration !== null && inc.integrations.includes(row.integration)) deviceSet.add(row.device);
  }
  return {
    format: "portcullis-breach-notice-1",
    incident: inc.id,
    description: { title: inc.title, severity: inc.severity, awareAt: iso(inc.awareAt), window: { from: iso(windowStart), to: iso(end) }, notes: notes(tl, inc) },
    data: { flows, records: flows.reduce((n, f) => n + f.records, 0), devices: deviceSet.size, pseudonyms: flows.reduce((n, f) => n + f.pseudonyms, 0) },
    consequences: classes.map((c) => ({ class: c, consequence: CLASS_RISKS[c]?.consequence ?? "unknown" })),
    steps: steps(tl, inc),
    recommendations: classes.map((c) => ({ class: c, action: CLASS_RISKS[c]?.action ?? "ask the vendor what it holds" })),
    contact,
  };
}

export function noticeMarkdown(n: Notice): string {
  const d = n.description;
  return [
    `# Personal data breach notice — ${d.title}`,
    "",
    `Incident ${n.incident}, severity ${d.severity}. The household became aware at ${d.awareAt}. Window examined: ${d.window.from} to ${d.window.to}.`,
    "",
    "## 1. What happened",
    ...(d.notes.length ? d.notes.map((x) => `- ${x.time} — ${x.text}`) : ["- (no notes)"]),
    "",
    "## 2. Data concerned",
    "| integration | data classes | records sent | devices | distinct pseudonyms |",
    "| --- | --- | --- | --- | --- |",
    ...n.data.flows.map((f) => `| ${f.integration} | ${f.classes.join(", ") || "-"} | ${f.records} | ${f.devices} | ${f.pseudonyms} |`),
    "",
    `In all: about ${n.data.records} records from ${n.data.devices} devices (${n.data.pseudonyms} distinct pseudonyms, i.e. approximate data subjects).`,
    "",
    "## 3. Likely consequences",
    "| data class | consequence |",
    "| --- | --- |",
    ...n.consequences.map((c) => `| ${c.class} | ${c.consequence} |`),
    "",
    "## 4. Steps taken",
    ...n.steps.map((s) => `- ${s.time} (record ${s.seq}) — ${s.step}`),
    "",
    "## 5. What you can do",
    ...n.recommendations.map((r) => `- ${r.class}: ${r.action}`),
    "",
    "## Contact",
    n.contact,
    "",
  ].join("\n");
}

export interface Review {
  readonly format: "portcullis-incident-review-1";
  readonly incident: string;
  readonly title: string;
  readonly state: string;
  readonly happened: { records: number; byKind: Record<string, number>; first: string | null; last: string | null; notes: ReturnType<typeof notes> };
  readonly detection: { by: string; alarmSeq: number | null; timeToDetectMs: number | null };
  readonly containment: { steps: ReturnType<typeof steps>; timeToContainMs: number | null };
  readonly scope: { integrations: readonly string[]; devices: readonly string[]; records: number; devicesSeen: number };
  readonly prevent: string | null;
  readonly actions: string[];
  readonly dueAt: string | null;
}

/**
 * The review, pre-filled: time to detect runs from the first sign in the window (the first in-scope
 * denial or alarm) to the detection (the alarm's record, or the opening when the owner noticed);
 * time to contain from the opening to the containment record.
 */
export function buildReview(inc: Incident, tl: readonly AuditRecord[], alarm: AuditRecord | undefined): Review {
  const byKind: Record<string, number> = {};
  for (const r of tl) byKind[r.kind] = (byKind[r.kind] ?? 0) + 1;
  const firstSign = tl.find((r) => r.decision === "deny" || r.kind === "alarm");
  const detectedAt = alarm?.time ?? inc.openedAt;
  const rev = tl.find((r) => r.kind === "incident" && r.reason === "incident-reviewed" && r.detail?.incident === inc.id);
  const actions: string[] = [];
  for (let i = 1; rev?.detail && typeof rev.detail[`action${i}`] === "string"; i++) actions.push(rev.detail[`action${i}`] as string);
  const devicesSeen = new Set(tl.map((r) => r.device).filter((d): d is string => d !== undefined));
  return {
    format: "portcullis-incident-review-1",
    incident: inc.id,
    title: inc.title,
    state: inc.state,
    happened: { records: tl.length, byKind, first: iso(tl[0]?.time), last: iso(tl[tl.length - 1]?.time), notes: notes(tl, inc) },
    detection: { by: inc.detectedBy === "owner" ? "owner" : "alarm", alarmSeq: inc.detectedBy === "owner" ? null : inc.detectedBy, timeToDetectMs: firstSign && firstSign.time <= detectedAt ? detectedAt - firstSign.time : null },
    containment: { steps: steps(tl, inc), timeToContainMs: inc.containedAt !== undefined ? inc.containedAt - inc.openedAt : null },
    scope: { integrations: inc.integrations, devices: inc.devices, records: tl.length, devicesSeen: devicesSeen.size },
    prevent: typeof rev?.detail?.prevent === "string" ? rev.detail.prevent : null,
    actions,
    dueAt: iso(inc.reviewDueAt),
  };
}

export function reviewMarkdown(r: Review): string {
  return [
    `# Post-incident review — ${r.title} (${r.incident}, ${r.state})`,
    "",
    r.dueAt ? `Due by ${r.dueAt}.` : "",
    "",
    "## What happened",
    `${r.happened.records} records in scope from ${r.happened.first} to ${r.happened.last}: ${Object.entries(r.happened.byKind).map(([k, n]) => `${n} ${k}`).join(", ")}.`,
    ...r.happened.notes.map((n) => `- ${n.time} — ${n.text}`),
    "",
    "## How it was detected",
    `${r.detection.by === "alarm" ? `Alarm (record ${r.detection.alarmSeq})` : "The owner"}; time to detect: ${r.detection.timeToDetectMs === null ? "unknown" : `${Math.round(r.detection.timeToDetectMs / 1000)} s`}.`,
    "",
    "## How it was contained",
    ...r.containment.steps.map((s) => `- ${s.time} (record ${s.seq}) — ${s.step}`),
    `Time to contain: ${r.containment.timeToContainMs === null ? "not contained" : `${Math.round(r.containment.timeToContainMs / 1000)} s`}.`,
    "",
    "## Scope",
    `Integrations: ${r.scope.integrations.join(", ") || "none"}; devices: ${r.scope.devices.join(", ") || "none"}; ${r.scope.records} records, ${r.scope.devicesSeen} devices seen.`,
    "",
    "## What would have prevented it",
    r.prevent ?? "(to be completed: `incident review <id> --prevent <text>`)",
    "",
    "## Follow-up actions",
    ...(r.actions.length ? r.actions.map((a) => `- ${a}`) : ["- (none yet)"]),
    "",
  ].join("\n");
}
