import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { handler } from './index.mjs';

const context = { awsRequestId: 'req-1', functionName: 'hello' };
const load = (name) => JSON.parse(readFileSync(new URL(`./events/${name}`, import.meta.url), 'utf8'));

test('direct invocation', async () => {
  assert.deepEqual(await handler(load('direct.json'), context), { message: 'Hello, Ada!', requestId: 'req-1' });
});

test('direct invocation without a name', async () => {
  assert.equal((await handler({}, context)).message, 'Hello, world!');
});

test('function URL request', async () => {
  const out = await handler(load('url-get.json'), context);
  assert.equal(out.statusCode, 200);
  assert.equal(out.headers['content-type'], 'application/json');
  assert.equal(JSON.parse(out.body).message, 'Hello, Grace!');
});

test('function URL request without a query', async () => {
  const event = load('url-get.json');
  delete event.queryStringParameters;
  assert.equal(JSON.parse((await handler(event, context)).body).message, 'Hello, world!');
});
