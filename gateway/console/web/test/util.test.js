// Unit tests of the console's pure helpers: `npm test` (node's own runner,
// no dependencies), run by `make console-check`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { base64OfBuffer, defaultHandler, lagOf, parseReport, textOfBase64 } from '../src/util.js';

// The instance's REPORT line (driver/instance/invocation.go): tab separated,
// with a trailing tab, and Init Duration only on a cold start.
const cold =
  'START RequestId: 8f0c Version: $LATEST\n' +
  'hello from the function\n' +
  'END RequestId: 8f0c\n' +
  'REPORT RequestId: 8f0c\tDuration: 1.52 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 18 MB\tInit Duration: 10.25 ms\t\n';

test('parseReport reads every figure of a cold start', () => {
  const r = parseReport(cold);
  assert.equal(r.requestId, '8f0c');
  assert.deepEqual(
    r.fields.map((f) => [f.key, f.value, f.unit]),
    [
      ['duration', '1.52', 'ms'],
      ['billedDuration', '2', 'ms'],
      ['memorySize', '128', 'MB'],
      ['maxMemoryUsed', '18', 'MB'],
      ['initDuration', '10.25', 'ms'],
    ],
  );
});

test('parseReport has no Init Duration on a warm start and takes the last REPORT', () => {
  const warm = cold + 'REPORT RequestId: 9a1d\tDuration: 0.40 ms\tBilled Duration: 1 ms\tMemory Size: 256 MB\tMax Memory Used: 19 MB\t\n';
  const r = parseReport(warm);
  assert.equal(r.requestId, '9a1d');
  assert.equal(r.fields.find((f) => f.key === 'initDuration'), undefined);
  assert.equal(r.fields.find((f) => f.key === 'memorySize').value, '256');
});

test('parseReport answers null for a tail without REPORT (cut at 4 KB)', () => {
  assert.equal(parseReport('START RequestId: x\nsome output\n'), null);
  assert.equal(parseReport(''), null);
});

test('X-Amz-Log-Result decodes as UTF-8', () => {
  const b64 = Buffer.from('héllo ☁\n', 'utf8').toString('base64');
  assert.equal(textOfBase64(b64), 'héllo ☁\n');
  assert.equal(textOfBase64(null), '');
});

test('a zip buffer encodes as standard base64, also past one chunk', () => {
  const bytes = new Uint8Array(0x8000 * 2 + 7).map((_, i) => i % 251);
  assert.equal(base64OfBuffer(bytes.buffer), Buffer.from(bytes).toString('base64'));
});

test('defaultHandler follows Lambda conventions', () => {
  assert.equal(defaultHandler('python3.12'), 'lambda_function.lambda_handler');
  assert.equal(defaultHandler('nodejs20.x'), 'index.handler');
  assert.equal(defaultHandler('provided.al2023'), 'bootstrap');
});

test('lagOf sums the partitions and keeps the oldest record age', () => {
  assert.deepEqual(lagOf({ lag: [{ partition: '0', records: 3 }, { partition: '1', records: 4 }], oldest_record_age: '2.5s' }), { records: 7, age: '2.5s' });
  assert.deepEqual(lagOf({ lag: [{ partition: 'stream', records: 0 }] }), { records: 0, age: '' });
  // A source that reports no lag (a schedule) is not "0 behind".
  assert.deepEqual(lagOf({ state: 'Enabled' }), { records: null, age: '' });
  assert.deepEqual(lagOf(undefined), { records: null, age: '' });
});
