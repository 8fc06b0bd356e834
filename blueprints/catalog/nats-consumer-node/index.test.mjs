import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { BadReading, decode, handler } from './index.mjs';

const load = (name) => JSON.parse(readFileSync(new URL(`./events/${name}`, import.meta.url), 'utf8'));

const record = (sequence, payload) => ({
  stream: 'TELEMETRY', subject: 'telemetry.x', sequence, timestamp: '2026-12-03T06:00:00Z',
  headers: {}, data: Buffer.from(payload).toString('base64'),
});

// run calls the handler and returns its answer and the JSON lines it logged.
async function run(t, event) {
  const logs = [];
  t.mock.method(console, 'log', (line) => logs.push(JSON.parse(line)));
  return [await handler(event, {}), logs];
}

test('good batch', async (t) => {
  const [resp, logs] = await run(t, load('batch.json'));
  assert.deepEqual(resp, { batchItemFailures: [] });
  assert.deepEqual(logs.map((l) => [l.msg, l.sensor, l.msgId]), [['ok', 't-01', 't-01-1796277600'], ['alert', 't-07', null]]);
});

test('a bad message is reported and the rest handled', async (t) => {
  const [resp, logs] = await run(t, load('batch-with-bad-record.json'));
  assert.deepEqual(resp, { batchItemFailures: [{ itemIdentifier: '1043' }] });
  assert.deepEqual(logs.filter((l) => l.msg !== 'bad reading').map((l) => l.sequence), [1042, 1044]);
});

test('bad payloads', () => {
  for (const payload of ['', 'x', '[]', 'null', '{"celsius": 1}', '{"sensor": "a"}', '{"sensor": "a", "celsius": true}',
    '{"sensor": "a", "celsius": "20"}']) {
    assert.throws(() => decode(record(1, payload)), BadReading, payload);
  }
});

test('empty batch', async (t) => {
  assert.deepEqual((await run(t, { eventSource: 'nimbus:nats', records: [] }))[0], { batchItemFailures: [] });
});
