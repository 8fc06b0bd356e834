import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { InvalidOrder, handler } from './index.mjs';

const context = { awsRequestId: 'req-1' };
const load = (name) => JSON.parse(readFileSync(new URL(`./events/${name}`, import.meta.url), 'utf8'));

test('invoices an order', async (t) => {
  t.mock.method(console, 'log', () => {});
  const out = await handler(load('order.json'), context);
  assert.equal(out.status, 'invoiced');
  assert.equal(out.orderId, 'ord-1001');
  assert.deepEqual(out.lines[0], { sku: 'TEA-GREEN-100G', quantity: 2, amount: '9.90' });
  assert.equal(out.total, '21.90');
});

test('the sample invalid order fails', async () => {
  await assert.rejects(handler(load('invalid-order.json'), context), { name: 'InvalidOrder', message: /quantity must be 1-1000/ });
});

test('rejects bad orders', async () => {
  const good = load('order.json');
  const item = good.items[0];
  const noId = { ...good };
  delete noId.orderId;
  const cases = {
    'not an object': [],
    null: null,
    'no id': noId,
    currency: { ...good, currency: 'DOGE' },
    'no items': { ...good, items: [] },
    'bool quantity': { ...good, items: [{ ...item, quantity: true }] },
    'fractional quantity': { ...good, items: [{ ...item, quantity: 1.5 }] },
    price: { ...good, items: [{ ...item, unitPrice: 'free' }] },
    'negative price': { ...good, items: [{ ...item, unitPrice: '-1' }] },
    'three decimals': { ...good, items: [{ ...item, unitPrice: '1.005' }] },
  };
  for (const [name, order] of Object.entries(cases)) {
    await assert.rejects(handler(order, context), InvalidOrder, name);
  }
});
