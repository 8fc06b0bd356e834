import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { BadEntry, decode, handler } from './index.mjs';

const load = (name) => JSON.parse(readFileSync(new URL(`./events/${name}`, import.meta.url), 'utf8'));

function record(id, fields) {
  const data = 'data' in fields ? fields.data : JSON.stringify(fields);
  return { stream: 'payments', id, timestamp: Number(id.split('-')[0]), fields, data: Buffer.from(data).toString('base64') };
}

// run calls the handler and returns its answer and the JSON lines it logged.
async function run(t, event) {
  const logs = [];
  t.mock.method(console, 'log', (line) => logs.push(JSON.parse(line)));
  return [await handler(event, {}), logs];
}

test('good batch', async (t) => {
  const [resp, logs] = await run(t, load('batch.json'));
  assert.deepEqual(resp, { batchItemFailures: [] });
  // The refund has no "data" field: its data is the JSON of all fields.
  assert.deepEqual(logs.map((l) => [l.msg, l.paymentId, l.cents]), [['payment', 'pay-501', 1250], ['refund', 'pay-377', -400]]);
});

test('stops at the first bad entry and names the rest', async (t) => {
  const [resp, logs] = await run(t, load('batch-with-bad-record.json'));
  // pay-503 (1796277600456-1) did not run either: named too, so that it is
  // retried with the bad entry, or given up with it, never skipped.
  assert.deepEqual(resp, { batchItemFailures: [{ itemIdentifier: '1796277600456-0' }, { itemIdentifier: '1796277600456-1' }] });
  assert.deepEqual(logs.map((l) => l.paymentId), ['pay-501', 'pay-377', undefined]);
});

test('bad entries', () => {
  const good = { paymentId: 'p', amountCents: 5, currency: 'EUR' };
  for (const fields of [
    { data: 'nope' }, { data: '[]' }, { data: 'null' },
    { data: JSON.stringify({ ...good, amountCents: 0 }) },
    { data: JSON.stringify({ ...good, amountCents: 1.5 }) },
    { data: JSON.stringify({ ...good, amountCents: true }) },
    { data: JSON.stringify({ ...good, currency: 'XYZ' }) },
    { data: JSON.stringify(good), kind: 'chargeback' },
    { paymentId: 'p', amountCents: '-5', currency: 'EUR' },
  ]) {
    assert.throws(() => decode(record('1-0', fields)), BadEntry, JSON.stringify(fields));
  }
});
