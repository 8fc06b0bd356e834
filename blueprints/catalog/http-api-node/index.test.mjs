import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { beforeEach, test } from 'node:test';

import { NOTES, handler } from './index.mjs';

const load = (name) => JSON.parse(readFileSync(new URL(`./events/${name}`, import.meta.url), 'utf8'));
const body = (resp) => JSON.parse(resp.body);

function request(method, path, reqBody, cookies) {
  const event = load('health.json');
  event.rawPath = path;
  Object.assign(event.requestContext.http, { method, path });
  if (reqBody !== undefined) event.body = reqBody;
  if (cookies) event.cookies = cookies;
  return handler(event, {});
}

beforeEach(() => NOTES.clear());

test('health', async () => {
  const resp = await handler(load('health.json'), {});
  assert.equal(resp.statusCode, 200);
  assert.deepEqual(body(resp), { status: 'healthy' });
});

test('a new visitor gets a cookie', async () => {
  const resp = await handler(load('create-note.json'), {});
  assert.equal(resp.statusCode, 201);
  assert.equal(body(resp).note.text, 'Buy oat milk');
  assert.equal(resp.cookies.length, 1);
  assert.match(resp.cookies[0], /^visitor=v-[0-9a-f]{16}; /);
  assert.match(resp.cookies[0], /HttpOnly/);
  assert.match(resp.cookies[0], /Secure/);
});

test('notes belong to the visitor', async () => {
  const ada = ['visitor=v-ada'];
  const bob = ['visitor=v-bob'];
  const created = body(await request('POST', '/notes', JSON.stringify({ text: ' tea ' }), ada)).note;
  assert.equal(created.text, 'tea');
  const listed = await request('GET', '/notes', undefined, ada);
  assert.equal(listed.cookies, undefined); // known visitors keep their cookie
  assert.deepEqual(body(listed), { visitor: 'v-ada', notes: [created] });
  assert.deepEqual(body(await request('GET', '/notes', undefined, bob)).notes, []);
  assert.deepEqual(body(await request('GET', `/notes/${created.id}`, undefined, ada)).note, created);
  assert.equal((await request('GET', `/notes/${created.id}`, undefined, bob)).statusCode, 404);
});

test('delete', async () => {
  const ada = ['visitor=v-ada'];
  const { note } = body(await request('POST', '/notes', JSON.stringify({ text: 'x' }), ada));
  const resp = await request('DELETE', `/notes/${note.id}`, undefined, ada);
  assert.equal(resp.statusCode, 204);
  assert.equal(resp.body, undefined);
  assert.equal((await request('DELETE', `/notes/${note.id}`, undefined, ada)).statusCode, 404);
});

test('base64 body', async () => {
  const event = load('create-note.json');
  event.body = Buffer.from(JSON.stringify({ text: 'héllo' })).toString('base64');
  event.isBase64Encoded = true;
  assert.equal(body(await handler(event, {})).note.text, 'héllo');
});

test('bad requests', async () => {
  const resp = await handler(load('invalid-json.json'), {});
  assert.equal(resp.statusCode, 400);
  assert.equal(body(resp).error, 'invalid JSON body');
  for (const b of [{ text: '' }, ['text'], null, { text: 'x'.repeat(501) }]) {
    assert.equal((await request('POST', '/notes', JSON.stringify(b))).statusCode, 400, JSON.stringify(b));
  }
});

test('unknown route and method', async () => {
  const resp = await handler(load('unknown-route.json'), {});
  assert.equal(resp.statusCode, 404);
  assert.equal(body(resp).error, 'no route for GET /nope');
  const put = await request('PUT', '/notes');
  assert.equal(put.statusCode, 405);
  assert.equal(put.headers.allow, 'GET, POST');
});
