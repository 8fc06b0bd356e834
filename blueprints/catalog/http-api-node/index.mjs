// A small JSON API for a function URL (payload format 2.0).
//
// Routes:
//   GET    /health        200 {"status": "healthy"}
//   GET    /notes         200 {"visitor": …, "notes": [...]}
//   POST   /notes         201 {"note": {...}}   body: {"text": "…"}
//   GET    /notes/{id}    200 {"note": {...}} or 404
//   DELETE /notes/{id}    204 or 404
//
// Each browser gets a "visitor" cookie; notes belong to the visitor. The notes
// live in this environment's memory, so they are lost when it stops and are
// not shared between environments: replace NOTES with your database.

import { randomBytes } from 'node:crypto';

const MAX_TEXT = 500;
const COOKIE = 'visitor';
const COOKIE_ATTRS = 'Path=/; Max-Age=31536000; HttpOnly; Secure; SameSite=None';

// visitor id -> Map(note id -> note)
export const NOTES = new Map();

class HTTPError extends Error {
  constructor(status, message, headers = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

function response(status, body, headers = {}, cookies) {
  const out = { statusCode: status, headers: {} };
  if (body !== undefined) {
    out.headers['content-type'] = 'application/json';
    out.body = JSON.stringify(body);
  }
  Object.assign(out.headers, headers);
  if (cookies) out.cookies = cookies;
  return out;
}

function readCookies(event) {
  const jar = {};
  for (const c of event.cookies ?? []) {
    const i = c.indexOf('=');
    if (i > 0) jar[c.slice(0, i).trim()] = c.slice(i + 1).trim();
  }
  return jar;
}

function readJSON(event) {
  let body = event.body ?? '';
  if (event.isBase64Encoded) body = Buffer.from(body, 'base64').toString('utf8');
  try {
    return JSON.parse(body);
  } catch {
    throw new HTTPError(400, 'invalid JSON body');
  }
}

const notesOf = (visitor) => NOTES.get(visitor) ?? new Map();

function findNote(visitor, id) {
  const note = notesOf(visitor).get(id);
  if (!note) throw new HTTPError(404, `no note ${id}`);
  return note;
}

const health = () => [200, { status: 'healthy' }];

const listNotes = (visitor) => [200, {
  visitor,
  notes: [...notesOf(visitor).values()].sort((a, b) => a.createdAt - b.createdAt),
}];

function createNote(visitor, event) {
  const data = readJSON(event);
  const text = data !== null && typeof data === 'object' && !Array.isArray(data) ? data.text : undefined;
  if (typeof text !== 'string' || !text.trim()) throw new HTTPError(400, 'body needs a non-empty "text"');
  if (text.length > MAX_TEXT) throw new HTTPError(400, `text is longer than ${MAX_TEXT} characters`);
  const note = { id: randomBytes(6).toString('hex'), text: text.trim(), createdAt: Date.now() };
  if (!NOTES.has(visitor)) NOTES.set(visitor, new Map());
  NOTES.get(visitor).set(note.id, note);
  return [201, { note }];
}

const getNote = (visitor, event, id) => [200, { note: findNote(visitor, id) }];

function deleteNote(visitor, event, id) {
  findNote(visitor, id);
  NOTES.get(visitor).delete(id);
  return [204, undefined];
}

// [path pattern, {method: handler}]; groups of the pattern are passed on.
const ROUTES = [
  [/^\/health$/, { GET: health }],
  [/^\/notes$/, { GET: listNotes, POST: createNote }],
  [/^\/notes\/([0-9a-f]{12})$/, { GET: getNote, DELETE: deleteNote }],
];

function route(method, path) {
  for (const [pattern, methods] of ROUTES) {
    const m = pattern.exec(path);
    if (!m) continue;
    const fn = methods[method];
    if (!fn) {
      throw new HTTPError(405, `method ${method} not allowed on ${path}`, { allow: Object.keys(methods).sort().join(', ') });
    }
    return [fn, m.slice(1)];
  }
  throw new HTTPError(404, `no route for ${method} ${path}`);
}

export const handler = async (event) => {
  const { method, path: ctxPath } = event.requestContext.http;
  const path = event.rawPath || ctxPath;
  let visitor = readCookies(event)[COOKIE];
  let cookies;
  if (!visitor) {
    visitor = `v-${randomBytes(8).toString('hex')}`;
    cookies = [`${COOKIE}=${visitor}; ${COOKIE_ATTRS}`];
  }
  try {
    const [fn, args] = route(method, path);
    const [status, body] = fn(visitor, event, ...args);
    return response(status, body, {}, cookies);
  } catch (e) {
    if (!(e instanceof HTTPError)) throw e;
    return response(e.status, { error: e.message }, e.headers, cookies);
  }
};
