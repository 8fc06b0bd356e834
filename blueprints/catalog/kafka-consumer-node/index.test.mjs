import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { BadRecord, decodeOrder, handler, headerValues } from './index.mjs';

const load = (name) => JSON.parse(readFileSync(new URL(`./events/${name}`, import.meta.url), 'utf8'));

const record = (offset, value, partition = 0) => ({
  topic: 'orders', partition, offset, timestamp: 1796277600000, timestampType: 'CREATE_TIME',
  key: Buffer.from('k').toString('base64'), value: Buffer.from(value).toString('base64'), headers: [],
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
  assert.deepEqual(logs.map((l) => [l.orderId, l.source]), [['ord-2001', 'web'], ['ord-2002', 'app']]);
});

test('a bad record stops its partition and names the rest', async (t) => {
  const [resp, logs] = await run(t, load('batch-with-bad-record.json'));
  // 4713 did not run either: named too, so that it is retried with 4712, or
  // given up with it, never skipped.
  assert.deepEqual(resp, { batchItemFailures: [{ itemIdentifier: '4712' }, { itemIdentifier: '4713' }] });
  assert.deepEqual(logs.filter((l) => l.msg === 'order').map((l) => l.orderId), ['ord-2001', 'ord-2002']);
});

test('partitions fail independently', async (t) => {
  const event = {
    eventSource: 'SelfManagedKafka',
    records: {
      'orders-1': [record(3, '{"orderId":"b","amount":0}', 1), record(4, '{"orderId":"c","amount":2}', 1)],
      'orders-0': [record(7, '{"orderId":"a","amount":1}'), record(8, '[]')],
    },
  };
  const [resp] = await run(t, event);
  assert.deepEqual(resp, { batchItemFailures: [{ itemIdentifier: '8' }, { itemIdentifier: '3' }, { itemIdentifier: '4' }] });
});

test('empty event', async (t) => {
  assert.deepEqual((await run(t, { eventSource: 'SelfManagedKafka', records: {} }))[0], { batchItemFailures: [] });
});

test('signed header bytes', () => {
  const rec = record(1, '{}');
  rec.headers = [{ who: [-61, -87] }]; // "é" in UTF-8
  assert.deepEqual(headerValues(rec), { who: 'é' });
});

test('bad values', () => {
  for (const value of ['', 'nope', '[1]', 'null', '{"orderId":"a"}', '{"orderId":"a","amount":true}', '{"amount":1}']) {
    assert.throws(() => decodeOrder(record(1, value)), BadRecord, value);
  }
});
