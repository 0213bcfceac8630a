// The one way the console calls the gateway: same origin, the signed-in key as a
// bearer credential, JSON in and out, and problem+json turned into an ApiError the
// views can show. Three answers mean the same thing on every page and are handled
// here: 401 (the key no longer works: back to sign-in), 429 (when to retry) and
// 503 (the backend is unavailable), the last two by the notice under the top bar.

import { apiKey } from "./session.js";

export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter; // seconds, or null
  }

  /** The per-field or per-record errors of a validation problem. */
  get errors() {
    return Array.isArray(this.problem.errors) ? this.problem.errors : [];
  }
}

const listeners = { unauthorized: () => {}, throttled: () => {}, unavailable: () => {} };

/** main.js says what a 401, 429 or 503 does to the whole page. */
export function onProblem(handlers) {
  Object.assign(listeners, handlers);
}

export function retryAfterSeconds(response) {
  const header = response.headers.get("Retry-After");
  if (header === null) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

async function problemOf(response) {
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) {
    try {
      return await response.json();
    } catch {
      // fall through: a body that is not JSON
    }
  }
  return { title: response.statusText || `HTTP ${response.status}`, status: response.status };
}

/**
 * request("GET", "/v1/topics", {query: {offset: 3}, body: {...}, signal})
 * resolves to the parsed JSON reply (null for 204), or throws ApiError.
 */
export async function request(method, path, { query, body, signal, rawBody, contentType } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Accept: "application/json, application/problem+json" };
  const key = apiKey();
  if (key !== null) headers.Authorization = `Bearer ${key}`;
  let payload;
  if (rawBody !== undefined) {
    payload = rawBody;
    headers["Content-Type"] = contentType || "application/json";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  const response = await fetch(url, {
    method, headers, body: payload, signal, credentials: "omit", cache: "no-store",
  });
  if (response.ok) {
    if (response.status === 204) return null;
    return response.json();
  }
  const error = new ApiError(response.status, await problemOf(response), retryAfterSeconds(response));
  if (response.status === 401) listeners.unauthorized(error);
  else if (response.status === 429) listeners.throttled(error);
  else if (response.status === 503) listeners.unavailable(error);
  throw error;
}

export const get = (path, options) => request("GET", path, options);
export const post = (path, body, options = {}) => request("POST", path, { ...options, body });
export const patch = (path, body, options = {}) => request("PATCH", path, { ...options, body });
export const del = (path, options) => request("DELETE", path, options);

/** A path segment for a user-supplied name. */
export const seg = encodeURIComponent;
