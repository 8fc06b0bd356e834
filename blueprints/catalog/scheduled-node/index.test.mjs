import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { beforeEach, test, mock } from 'node:test';

import { NotAScheduledEvent, handler } from './index.mjs';

const load = (name) => JSON.parse(readFileSync(new URL(`./events/${name}`, import.meta.url), 'utf8'));

beforeEach(() => mock.method(console, 'log', () => {}));

test('the report covers the day before the tick', async () => {
  const out = await handler(load('tick.json'), {});
  assert.deepEqual(out.window, { start: '2026-12-02T03:00:00Z', end: '2026-12-03T03:00:00Z' });
  assert.equal(out.rule, 'nightly');
  assert.equal(out.eventId, '3f5a1c2e-8b7d-4e2a-9c1f-6d3b2a1e0f9c');
});

test('the window crosses a month', async () => {
  const out = await handler({ ...load('tick.json'), time: '2027-03-01T00:00:00Z' }, {});
  assert.equal(out.window.start, '2027-02-28T00:00:00Z');
});

test('rejects other events', async () => {
  for (const event of [load('not-a-schedule.json'), null, [], { ...load('tick.json'), time: 'yesterday' },
    { ...load('tick.json'), time: null }, { ...load('tick.json'), time: '2026-13-45T99:00:00Z' }]) {
    await assert.rejects(handler(event, {}), NotAScheduledEvent, JSON.stringify(event));
  }
});
