// The console's only way to the gateway: the Lambda REST API and the
// /nimbus/v1 and /console/api endpoints, same origin, with the session
// cookie. Every write carries the session's CSRF token.

let csrfToken = '';
let onUnauthorized = () => {};

export function setCsrfToken(t) {
  csrfToken = t || '';
}

// setUnauthorizedHandler is called when a request is refused for want of
// a session (the session expired or was logged out elsewhere).
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export class ApiError extends Error {
  constructor(status, type, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.type = type || '';
  }
}

// The codes of a request that carried no (or no longer a valid) session.
const noCredential = new Set(['MissingAuthenticationTokenException', 'UnrecognizedClientException']);

async function errorOf(res) {
  let type = res.headers.get('X-Amzn-ErrorType') || '';
  let message = '';
  try {
    const body = await res.json();
    message = body.message || body.Message || body.errorMessage || '';
    type = type || body.Type || body.__type || '';
  } catch {
    // not JSON: the status says enough
  }
  type = type.split(':')[0];
  return new ApiError(res.status, type, message || `${res.status} ${res.statusText}`);
}

// request sends one call. body: a plain object (sent as JSON), a string,
// Blob or ArrayBuffer (sent as is). raw: return the Response itself
// (after the error check).
export async function request(method, path, { body, headers = {}, raw = false } = {}) {
  const h = { ...headers };
  let payload = body;
  if (body !== undefined && body !== null && typeof body === 'object' && !(body instanceof Blob) && !(body instanceof ArrayBuffer)) {
    payload = JSON.stringify(body);
    h['Content-Type'] = 'application/json';
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) {
    h['X-Nimbus-CSRF'] = csrfToken;
  }
  const res = await fetch(path, { method, headers: h, body: payload, credentials: 'same-origin' });
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401 || (res.status === 403 && noCredential.has(err.type))) onUnauthorized(err);
    throw err;
  }
  if (raw) return res;
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, { body: body ?? {} });
export const put = (path, body) => request('PUT', path, { body: body ?? {} });
export const del = (path) => request('DELETE', path);

// getOrNull answers null where the resource does not exist (404).
export async function getOrNull(path) {
  try {
    return await get(path);
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
}

const enc = encodeURIComponent;

// The session cookie is scoped to /console (no other path of the origin,
// function URLs above all, ever carries it): the console reaches the
// gateway's routes through its /console/api/gw mount.
export const GW = '/console/api/gw';

// Lambda REST paths, as the gateway's route tables have them.
export const lambda = {
  functions: () => `${GW}/2015-03-31/functions`,
  fn: (n) => `${GW}/2015-03-31/functions/${enc(n)}`,
  configuration: (n) => `${GW}/2015-03-31/functions/${enc(n)}/configuration`,
  invoke: (n, q) => `${GW}/2015-03-31/functions/${enc(n)}/invocations${q ? `?Qualifier=${enc(q)}` : ''}`,
  versions: (n) => `${GW}/2015-03-31/functions/${enc(n)}/versions`,
  aliases: (n) => `${GW}/2015-03-31/functions/${enc(n)}/aliases`,
  alias: (n, a) => `${GW}/2015-03-31/functions/${enc(n)}/aliases/${enc(a)}`,
  concurrency: (n) => `${GW}/2017-10-31/functions/${enc(n)}/concurrency`,
  provisioned: (n, q) => `${GW}/2019-09-30/functions/${enc(n)}/provisioned-concurrency?Qualifier=${enc(q)}`,
  provisionedList: (n) => `${GW}/2019-09-30/functions/${enc(n)}/provisioned-concurrency?List=ALL`,
  url: (n) => `${GW}/2021-10-31/functions/${enc(n)}/url`,
  eventInvokeConfig: (n) => `${GW}/2019-09-25/functions/${enc(n)}/event-invoke-config`,
  mappings: (n) => `${GW}/2015-03-31/event-source-mappings?FunctionName=${enc(n)}`,
  mapping: (uuid) => `${GW}/2015-03-31/event-source-mappings/${enc(uuid)}`,
};

export const nimbus = {
  summary: (w) => `${GW}/nimbus/v1/metrics/summary?window=${enc(w)}`,
  history: (n, w) => `${GW}/nimbus/v1/metrics/history?function=${enc(n)}&window=${enc(w)}`,
  logs: (n, params) => `${GW}/nimbus/v1/functions/${enc(n)}/logs${params ? `?${params}` : ''}`,
  testEvents: (n) => `${GW}/nimbus/v1/functions/${enc(n)}/test-events`,
  testEvent: (n, e) => `${GW}/nimbus/v1/functions/${enc(n)}/test-events/${enc(e)}`,
  invocations: (n, limit) => `${GW}/nimbus/v1/functions/${enc(n)}/invocations?limit=${limit}`,
  eventSources: (n) => `${GW}/nimbus/v1/event-sources?function=${enc(n)}`,
  blueprints: () => `${GW}/nimbus/v1/blueprints`,
  blueprintZip: (b, fn) => `${GW}/nimbus/v1/blueprints/${enc(b)}/code.zip?name=${enc(fn)}`,
};

export const consoleApi = {
  session: '/console/api/session',
  login: '/console/api/login',
  logout: '/console/api/logout',
};

// listAll follows Lambda's Marker/NextMarker pagination.
export async function listAll(path, key) {
  const out = [];
  let marker = '';
  for (let i = 0; i < 100; i++) {
    const sep = path.includes('?') ? '&' : '?';
    const page = await get(marker ? `${path}${sep}Marker=${encodeURIComponent(marker)}` : path);
    out.push(...((page && page[key]) || []));
    marker = page && page.NextMarker;
    if (!marker) break;
  }
  return out;
}
