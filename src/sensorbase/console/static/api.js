// Every request goes to this origin with the session cookie; a state change carries the CSRF
// token the session handed out (it lives in memory only, never in a URL or in storage).
let csrf = null;

export class ApiError extends Error {
  constructor(status, body) {
    const listed = (body && body.errors) || [];
    const reasons = listed.map((e) => (e.field ? `${e.field}: ${e.reason}` : e.reason));
    const detail = (body && (body.detail || body.title || body.message)) || `HTTP ${status}`;
    super(reasons.length ? `${detail} (${reasons.join("; ")})` : detail);
    this.status = status;
    this.body = body;
  }
}

export async function request(method, path, body, accept = "application/json") {
  const headers = { Accept: accept };
  if (method !== "GET" && method !== "HEAD" && csrf) headers["X-CSRF-Token"] = csrf;
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const reply = await fetch(path, init);
  if (reply.status === 401 && !path.startsWith("/console/api/session")) {
    // The session ended (expired, signed out elsewhere, the user deleted): back to signing in.
    window.dispatchEvent(new Event("sensorbase:signed-out"));
  }
  if (!reply.ok) {
    let parsed = null;
    try {
      parsed = await reply.json();
    } catch {
      parsed = null;
    }
    throw new ApiError(reply.status, parsed);
  }
  return reply;
}

export async function api(method, path, body) {
  const reply = await request(method, path, body);
  return reply.status === 204 ? null : reply.json();
}

export const get = (path) => api("GET", path);

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue;
    for (const one of Array.isArray(value) ? value : [value]) search.append(name, one);
  }
  return `/v1/query?${search}`;
}

export async function signIn(credentials) {
  const session = await api("POST", "/console/api/session", credentials);
  csrf = session.csrf;
  return session.who;
}

export async function resume() {
  try {
    const session = await get("/console/api/session");
    csrf = session.csrf;
    return session.who;
  } catch (error) {
    if (error.status === 401) return null;
    throw error;
  }
}

export async function signOut() {
  try {
    await api("DELETE", "/console/api/session");
  } finally {
    csrf = null;
  }
}

// "2026-11-21T10:00:00.123456Z" (always six digits) to seconds since 1970, as uPlot wants.
export function seconds(text) {
  return Date.parse(`${text.slice(0, 23)}Z`) / 1000 + Number(text.slice(23, 26) || 0) / 1e6;
}

export function iso(secondsSince1970) {
  return new Date(Math.round(secondsSince1970 * 1000)).toISOString();
}
