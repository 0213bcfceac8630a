// The signed-in API key, kept in sessionStorage: it lives as long as the tab and is
// never written to localStorage or a cookie. At sign-in the key is exchanged for a
// short-lived token (POST /v1/tokens), which proves the key works, tells which scopes
// it holds (the operator pages need `admin`), and is what live feeds carry (a browser
// cannot set headers on a WebSocket, and a token that expires in minutes is what may
// travel in a URL).

const KEY = "tidegate.key";
const TOKEN = "tidegate.token";
const REFRESH_BEFORE_MS = 60_000;

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function signedIn() {
  return apiKey() !== null;
}

function storedToken() {
  try {
    return JSON.parse(sessionStorage.getItem(TOKEN) || "null");
  } catch {
    return null;
  }
}

export function scopes() {
  const token = storedToken();
  return token ? token.scopes : [];
}

export function isOperator() {
  return scopes().includes("admin");
}

/** Ask the gateway for a token for `key`; raw fetch, since the key is not yet stored. */
async function exchange(key) {
  const response = await fetch("/v1/tokens", {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, Accept: "application/json" },
    credentials: "omit",
    cache: "no-store",
  });
  return response;
}

function keep(reply) {
  const token = {
    access_token: reply.access_token,
    expires_at: Date.now() + reply.expires_in * 1000,
    scopes: (reply.scope || "").split(" ").filter(Boolean),
  };
  sessionStorage.setItem(TOKEN, JSON.stringify(token));
  return token;
}

/**
 * Sign in with `key`: resolves to null when the gateway accepted it, else to the
 * Response that refused it (for the caller to explain).
 */
export async function signIn(key) {
  const response = await exchange(key);
  if (response.status !== 201) return response;
  keep(await response.json());
  sessionStorage.setItem(KEY, key);
  return null;
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(TOKEN);
}

/** A token valid for at least another minute, renewed with the key when needed. */
export async function accessToken() {
  const token = storedToken();
  if (token && token.expires_at - Date.now() > REFRESH_BEFORE_MS) return token.access_token;
  const key = apiKey();
  if (key === null) throw new Error("not signed in");
  const response = await exchange(key);
  if (response.status !== 201) throw new Error(`token refused (${response.status})`);
  return keep(await response.json()).access_token;
}
