// Every call the dashboard makes to the gateway's JSON API, and nothing else talks to the network.
// Each function resolves to { ok, status, absent, data, error }: `absent` is true when the gateway
// answers 404/501 for the route itself (this firmware does not have it yet), so a page can say so.
// Credentials: a break-glass owner token (Authorization: Bearer, kept in this page's memory only) or
// the session cookie from POST /api/v1/login, with its CSRF token sent on state-changing requests.

let token = null; // break-glass bearer token, never stored
let csrf = null; // CSRF token of the cookie session
let session = false; // a cookie session is open (login, or GET /api/v1/me answered)

async function call(method, path, body, parse = "json") {
  const headers = { accept: parse === "json" ? "application/json" : "*/*" };
  if (token) headers.authorization = "Bearer " + token;
  if (csrf && method !== "GET") headers["x-csrf-token"] = csrf;
  if (body !== undefined) headers["content-type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, credentials: "same-origin", cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    return { ok: false, status: 0, absent: false, data: null, error: "the gateway did not answer (" + e.message + ")" };
  }
  const text = await res.text();
  let data = null;
  if (res.ok && parse === "json") {
    try { data = text ? JSON.parse(text) : null; } catch { return { ok: false, status: res.status, absent: false, data: null, error: "the answer was not JSON" }; }
  } else if (res.ok && parse === "ndjson") {
    data = text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
  } else if (res.ok) data = text;
  let error = null;
  if (!res.ok) {
    try { const e = JSON.parse(text); error = e.error + (e.field ? " (" + e.field + ")" : ""); } catch { error = text.trim() || res.statusText; }
  }
  const absent = res.status === 404 && /^not found$/.test(error || "") || res.status === 501;
  return { ok: res.ok, status: res.status, absent, data, error };
}

const q = (o) => {
  const p = Object.entries(o).filter(([, v]) => v !== undefined && v !== "" && v !== null).map(([k, v]) => encodeURIComponent(k) + "=" + encodeURIComponent(v));
  return p.length ? "?" + p.join("&") : "";
};
const id = encodeURIComponent;

/** True when a credential (token or session) is held. */
export const signedIn = () => token !== null || session;

/** Break-glass: checks the owner token with GET /api/v1/me; keeps it only if it works. */
export async function loginToken(t) {
  token = t.trim();
  const r = await call("GET", "/api/v1/me");
  if (!r.ok) token = null;
  return r;
}
/** POST /api/v1/login {account, password, totp} → {account, role, csrf, idleMs, maxMs} and the session cookie. */
export async function loginPassword(account, password, totp) {
  const r = await call("POST", "/api/v1/login", { account, password, totp });
  if (r.ok && r.data) remember(r.data.csrf || null);
  return r;
}
// The CSRF token lives in this tab's sessionStorage so a reload keeps the cookie session usable; it is
// worthless without the HttpOnly cookie, and it goes with the session at logout.
function remember(c) {
  csrf = c;
  session = c !== null;
  try { c ? sessionStorage.setItem("portcullis.csrf", c) : sessionStorage.removeItem("portcullis.csrf"); } catch { /* storage off: memory only */ }
}
/** POST /api/v1/logout (this session) or /api/v1/logout-all (every session of the account) → {ended}. */
export async function logout(everywhere = false) {
  const r = session ? await call("POST", everywhere ? "/api/v1/logout-all" : "/api/v1/logout") : { ok: true };
  token = null;
  remember(null);
  return r;
}
/** GET /api/v1/me → {account, role, via, mfa, recoveryCodesLeft}: who holds the credential (or the cookie session). */
export async function me() {
  if (!token && !csrf) {
    try { csrf = sessionStorage.getItem("portcullis.csrf"); } catch { csrf = null; }
  }
  const r = await call("GET", "/api/v1/me");
  if (r.ok && r.data && !token) session = true;
  return r;
}
/** POST /api/v1/setup {code, account, password} → 201 {account, role, totp: {secret, uri}, recoveryCodes}. */
export const setup = (code, account, password) => call("POST", "/api/v1/setup", { code, account, password });

/** POST /api/v1/me/password {password, newPassword} → {account, changed}; 403 for a wrong current password. */
export const changePassword = (password, newPassword) => call("POST", "/api/v1/me/password", { password, newPassword });
/** POST /api/v1/me/totp {password} → {account, totp, recoveryCodes}: a new authenticator secret for oneself. */
export const enrolMe = (password) => call("POST", "/api/v1/me/totp", { password });

/** GET /api/v1/status → {name, integrations:[{id,state,version}], outbound:{"<integration>/<destination>":{state,sent,queued,payloadBytes,dropped:{why:n}}}, audit:{records,nextSeq,hold,...}, certificateFingerprint}. */
export const status = () => call("GET", "/api/v1/status");
/** GET /api/v1/audit?since=&limit=&device=&integration=&kind= → NDJSON records. */
export const audit = (f = {}) => call("GET", "/api/v1/audit" + q(f), undefined, "ndjson");
/** GET /api/v1/audit/export → the self-verifying JSONL, as text. */
export const auditExport = () => call("GET", "/api/v1/audit/export", undefined, "text");
/** GET /api/v1/audit/checkpoint → {seq, epoch, chain, time, timeSet, mac}: the last seal. */
export const checkpoint = () => call("GET", "/api/v1/audit/checkpoint");
/** POST /api/v1/audit/hold {reason} → {seq, reason}. */
export const hold = (reason) => call("POST", "/api/v1/audit/hold", { reason });
/** POST /api/v1/audit/unhold → {seq}; 409 without a hold. */
export const unhold = () => call("POST", "/api/v1/audit/unhold", {});
/** POST /api/v1/audit/seal → {seq}. */
export const seal = () => call("POST", "/api/v1/audit/seal", {});

/** GET /api/v1/integrations → {integrations: [{id, state, version, vendor, purpose, quarantine, pendingVersion, broken, errors, uplink: {state, queued, sent, dropped}}]}. */
export const integrations = () => call("GET", "/api/v1/integrations");
/** POST /api/v1/integrations/{id}/quarantine {reason?} → {integration, reason}. */
export const quarantine = (i, reason) => call("POST", "/api/v1/integrations/" + id(i) + "/quarantine", reason ? { reason } : {});
/** POST /api/v1/integrations/{id}/release → {integration}. */
export const release = (i) => call("POST", "/api/v1/integrations/" + id(i) + "/release", {});
/** GET /api/v1/contracts → {contracts: [{integration, version, vendor, purpose, retentionDays, classes, destinations, pendingVersion}]}. */
export const contracts = () => call("GET", "/api/v1/contracts");
/** GET /api/v1/contracts/pending → {pending: [{integration, from, to, summary, changes: [{path, what, relevant, words}]}]}. */
export const pendingContracts = () => call("GET", "/api/v1/contracts/pending");
/** POST /api/v1/contracts/{id}/approve → {integration, version}; 409 when nothing is pending. */
export const approve = (c) => call("POST", "/api/v1/contracts/" + id(c) + "/approve", {});
/** POST /api/v1/contracts/{id}/reject → {integration, version}. */
export const reject = (c) => call("POST", "/api/v1/contracts/" + id(c) + "/reject", {});
/** GET /api/v1/consent → {consent: [{integration, class, required, state: "opt-in"|"opt-out"|"withdrawn"|null, since, who}]}. */
export const consent = () => call("GET", "/api/v1/consent");
/** POST /api/v1/consent {integration, class, grant} → {integration, class, state, previous}. */
export const setConsent = (integration, cls, grant) => call("POST", "/api/v1/consent", { integration, class: cls, grant });
/** GET /api/v1/today → {since, utcOffsetMinutes, clockSet, throughSeq, integrations: [{integration, messages, minimized, bytes}]}: what left since the gateway's local midnight. */
export const today = () => call("GET", "/api/v1/today");
/** GET /api/v1/datamap → {devices: [{device, classes: [{class, integrations: [{integration, destinations, seen}]}]}], integrations: [{integration, destinations, counts, declaredNeverSeen, attemptedDenied}]}. */
export const datamap = () => call("GET", "/api/v1/datamap");
/** GET /api/v1/devices → {devices: [{id, username, groups, connected, remote, connectedSeconds, source}]}. */
export const devices = () => call("GET", "/api/v1/devices");
/** GET /api/v1/accounts → {accounts: [{name, role, mfa, recoveryCodesLeft, locked, failures}]}. */
export const accounts = () => call("GET", "/api/v1/accounts");
/** POST /api/v1/integrations/{id}/rotate → {integration}: a new pseudonym key from the next message. */
export const rotate = (i) => call("POST", "/api/v1/integrations/" + id(i) + "/rotate", {});
/** POST /api/v1/integrations/{id}/exit → {certificate, markdown, export}: export, purge, key destroyed, contract removed. */
export const exitIntegration = (i) => call("POST", "/api/v1/integrations/" + id(i) + "/exit", {});

/** POST /api/v1/accounts {name, role, password} → 201 {name, role, totp?, recoveryCodes?}. */
export const addAccount = (name, role, password) => call("POST", "/api/v1/accounts", { name, role, password });
/** DELETE /api/v1/accounts/{name} → {removed, sessionsEnded}. */
export const removeAccount = (n) => call("DELETE", "/api/v1/accounts/" + id(n));
/** POST /api/v1/accounts/{name}/reset-mfa → {name, totp, recoveryCodes} (owner/installer) or {name, mfa: false}. */
export const resetMfa = (n) => call("POST", "/api/v1/accounts/" + id(n) + "/reset-mfa", {});
/** POST /api/v1/accounts/{name}/unlock → {name, locked: false}. */
export const unlock = (n) => call("POST", "/api/v1/accounts/" + id(n) + "/unlock", {});

/** POST /api/v1/devices {id, username?} → 201 {id, username, password}: the password is shown once. */
export const addDevice = (d, username) => call("POST", "/api/v1/devices", username ? { id: d, username } : { id: d });
/** POST /api/v1/devices/{id}/disable|enable → {id, disabled, record}. */
export const setDevice = (d, enable) => call("POST", "/api/v1/devices/" + id(d) + (enable ? "/enable" : "/disable"), {});
/** DELETE /api/v1/devices/{id} → {id}. */
export const removeDevice = (d) => call("DELETE", "/api/v1/devices/" + id(d));

/** GET /api/v1/incidents → [incident]: {id, title, severity, state, scope, awareAt, notes, notifications, deadlines, …}. */
export const incidents = () => call("GET", "/api/v1/incidents");
/** POST /api/v1/incidents {title, severity, scope: {integrations, devices}} → 201 incident (its scope contained at once). */
export const openIncident = (title, severity, scope) => call("POST", "/api/v1/incidents", { title, severity, scope });
/** GET /api/v1/incidents/{id} → the incident with deadlines (leftMs). */
export const incident = (i) => call("GET", "/api/v1/incidents/" + id(i));
/** GET /api/v1/incidents/{id}/timeline?since= → NDJSON records in scope. */
export const timeline = (i, since) => call("GET", "/api/v1/incidents/" + id(i) + "/timeline" + q({ since }), undefined, "ndjson");
/** POST /api/v1/incidents/{id}/notes {text} → 201 {seq}. */
export const note = (i, text) => call("POST", "/api/v1/incidents/" + id(i) + "/notes", { text });
/** POST /api/v1/incidents/{id}/notifications {party, reference} → 201 {seq}. */
export const notified = (i, party, reference) => call("POST", "/api/v1/incidents/" + id(i) + "/notifications", { party, reference });
/** POST /api/v1/incidents/{id}/resolve → {seq, incident}. */
export const resolve = (i) => call("POST", "/api/v1/incidents/" + id(i) + "/resolve", {});
/** POST /api/v1/incidents/{id}/review {prevent, actions} → {seq, review}; 409 unless resolved. */
export const review = (i, prevent, actions) => call("POST", "/api/v1/incidents/" + id(i) + "/review", { prevent, actions });
/** GET /api/v1/incidents/{id}/notice?format=md → the breach notice (Markdown text); the owner's call records its hash. */
export const notice = (i) => call("GET", "/api/v1/incidents/" + id(i) + "/notice?format=md", undefined, "text");
/** GET /api/v1/incidents/{id}/evidence → the evidence bundle (self-verifying JSONL), as text. */
export const evidence = (i) => call("GET", "/api/v1/incidents/" + id(i) + "/evidence", undefined, "text");

/** The list an answer holds under `key` (or the answer itself when it is a list). */
export const list = (data, key) => (Array.isArray(data) ? data : data && Array.isArray(data[key]) ? data[key] : []);
