import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { before, test } from 'node:test';

// The runtime's awslambda global, as far as the handler uses it: a
// streaming handler is called with (event, responseStream, context), and
// HttpResponseStream.from writes the JSON prelude and eight NUL bytes.
globalThis.awslambda = {
  streamifyResponse: (handler) => handler,
  HttpResponseStream: {
    from(stream, prelude) {
      stream.write(JSON.stringify(prelude));
      stream.write(new Uint8Array(8));
      return stream;
    },
  },
};

let handler;
before(async () => {
  process.env.ROW_DELAY_MS = '0';
  ({ handler } = await import('./index.mjs'));
});

const load = (name) => JSON.parse(readFileSync(new URL(`./events/${name}`, import.meta.url), 'utf8'));

// invoke runs the handler into a stream that records each write.
async function invoke(event) {
  const writes = [];
  const stream = new Writable({
    write(chunk, encoding, callback) {
      writes.push(Buffer.from(chunk));
      callback();
    },
  });
  await handler(event, stream, { awsRequestId: 'req-1' });
  await finished(stream);
  const all = Buffer.concat(writes);
  const sep = all.indexOf(Buffer.alloc(8));
  return { writes, prelude: JSON.parse(all.subarray(0, sep)), body: all.subarray(sep + 8).toString() };
}

test('streams one row per write', async () => {
  const { writes, prelude, body } = await invoke(load('url-get.json'));
  assert.deepEqual(prelude, { statusCode: 200, headers: { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' } });
  const lines = body.trimEnd().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((r) => [r.row, r.of]), [[1, 5], [2, 5], [3, 5], [4, 5], [5, 5]]);
  assert.equal(writes.length, 2 + 5); // prelude, separator, then each row by itself
});

test('default count', async () => {
  const event = load('url-get.json');
  delete event.queryStringParameters;
  const { body } = await invoke(event);
  assert.equal(body.trimEnd().split('\n').length, 10);
});

test('bad counts answer 400', async () => {
  for (const count of ['lots', '0', '10001', '1.5', '-1']) {
    const event = load('bad-count.json');
    event.queryStringParameters.count = count;
    const { prelude, body } = await invoke(event);
    assert.equal(prelude.statusCode, 400, count);
    assert.match(JSON.parse(body).error, /count must be/);
  }
});
