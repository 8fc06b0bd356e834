// Records payments read from a Redis stream.
//
// Each record has the stream key, the entry id ("1718000000000-0"), its
// millisecond timestamp, all its fields, and "data": base64 of the entry's
// "data" field, or of the JSON object of all fields when there is no "data"
// field. Entries come in stream order. The answer names the entries not
// handled: {"batchItemFailures": [{"itemIdentifier": "<entry id>"}]}. The
// gateway acknowledges the entries before the first named one and delivers
// it and the later ones again; when the retries run out it gives up exactly
// the entries named and counts the others as handled. So at the first bad
// entry the handler stops and names it and every later entry: none of them
// ran.

const CURRENCIES = new Set(['EUR', 'USD', 'GBP']);
const KINDS = new Set(['payment', 'refund']);

export class BadEntry extends Error {}

export function decode(record) {
  let payment;
  try {
    payment = JSON.parse(Buffer.from(record.data ?? '', 'base64').toString('utf8'));
  } catch (e) {
    throw new BadEntry(`data is not JSON: ${e.message}`);
  }
  if (payment === null || typeof payment !== 'object' || typeof payment.paymentId !== 'string') {
    throw new BadEntry('an entry needs a paymentId');
  }
  // Redis field values are strings; a JSON "data" field may hold numbers.
  let cents = payment.amountCents;
  if (typeof cents === 'string' && /^\d+$/.test(cents)) cents = Number(cents);
  if (!Number.isSafeInteger(cents) || cents <= 0) {
    throw new BadEntry(`amountCents must be a positive whole number, not ${JSON.stringify(cents)}`);
  }
  if (!CURRENCIES.has(payment.currency)) {
    throw new BadEntry(`currency ${JSON.stringify(payment.currency)} is not one of ${[...CURRENCIES].sort()}`);
  }
  const kind = record.fields?.kind ?? 'payment';
  if (!KINDS.has(kind)) throw new BadEntry(`kind ${JSON.stringify(kind)} is not one of ${[...KINDS].sort()}`);
  return { id: payment.paymentId, kind, cents, currency: payment.currency };
}

// Do the work for one entry; replace with yours (throw to fail the entry).
async function processPayment(payment, record) {
  const signed = payment.kind === 'payment' ? payment.cents : -payment.cents;
  console.log(JSON.stringify({ msg: payment.kind, paymentId: payment.id, cents: signed, currency: payment.currency, entry: record.id }));
}

export const handler = async (event) => {
  const records = event.records ?? [];
  for (const [i, record] of records.entries()) {
    try {
      await processPayment(decode(record), record);
    } catch (e) {
      if (!(e instanceof BadEntry)) throw e;
      console.log(JSON.stringify({ msg: 'bad entry', entry: record.id, error: e.message }));
      // This entry and the ones after it did not run.
      return { batchItemFailures: records.slice(i).map((r) => ({ itemIdentifier: r.id })) };
    }
  }
  return { batchItemFailures: [] };
};
