// Invoices an order, run asynchronously.
//
// The returned invoice is what the on_success destination receives as
// responsePayload. Throwing fails the invocation: Nimbus retries it
// (max_retries) and then sends it to on_failure and the dead-letter
// destination (see README).

const CURRENCIES = new Set(['EUR', 'USD', 'GBP']);
const MAX_QUANTITY = 1000;

// The order can never be invoiced; retries will not help.
export class InvalidOrder extends Error {
  constructor(message) {
    super(message);
    this.name = 'InvalidOrder';
  }
}

// Amounts are decimal strings ("4.95") or numbers; they are counted in
// cents (BigInt) so that no float rounding creeps into a total.
function cents(value, where) {
  const m = /^(\d+)(?:\.(\d{1,2}))?$/.exec(String(value));
  if (!m) throw new InvalidOrder(`${where}: ${JSON.stringify(value)} is not an amount`);
  return BigInt(m[1]) * 100n + BigInt((m[2] ?? '').padEnd(2, '0'));
}

const format = (c) => `${c / 100n}.${String(c % 100n).padStart(2, '0')}`;

export function invoice(order) {
  if (order === null || typeof order !== 'object' || Array.isArray(order)) {
    throw new InvalidOrder('the event is not an order object');
  }
  const { orderId, currency, items } = order;
  if (typeof orderId !== 'string' || !orderId) throw new InvalidOrder('orderId is missing');
  if (!CURRENCIES.has(currency)) {
    throw new InvalidOrder(`${orderId}: currency ${JSON.stringify(currency)} is not one of ${[...CURRENCIES].sort()}`);
  }
  if (!Array.isArray(items) || items.length === 0) throw new InvalidOrder(`${orderId}: no items`);
  let total = 0n;
  const lines = items.map((item, i) => {
    const where = `${orderId} item ${i}`;
    const qty = item?.quantity;
    if (!Number.isInteger(qty) || qty <= 0 || qty > MAX_QUANTITY) {
      throw new InvalidOrder(`${where}: quantity must be 1-${MAX_QUANTITY}`);
    }
    const amount = cents(item.unitPrice, where) * BigInt(qty);
    total += amount;
    return { sku: item.sku, quantity: qty, amount: format(amount) };
  });
  return { orderId, customer: order.customer, status: 'invoiced', currency, lines, total: format(total) };
}

export const handler = async (event, context) => {
  const result = invoice(event);
  // One structured log line per job; the request id ties it to the
  // destination record.
  console.log(JSON.stringify({ msg: 'invoiced', orderId: result.orderId, total: result.total, requestId: context.awsRequestId }));
  return result;
};
