// Consumes order records from Kafka (Lambda's SelfManagedKafka event).
//
// The event groups records by "<topic>-<partition>"; keys and values are
// base64, header values arrays of (signed) bytes. The answer names the
// records not handled: {"batchItemFailures": [{"itemIdentifier": "<offset>"}]}.
// The gateway commits the partition up to the first named record and
// delivers it and the ones after it again; when the retries run out it gives
// up exactly the records named and counts the others as handled. So at a
// partition's first bad record the handler stops and names it and every
// later record of the partition: none of them ran.

export class BadRecord extends Error {}

// Kafka headers as {name: string}; values arrive as arrays of signed bytes.
export function headerValues(record) {
  const out = {};
  for (const header of record.headers ?? []) {
    for (const [name, value] of Object.entries(header)) {
      out[name] = Buffer.from(value.map((b) => b & 0xff)).toString('utf8');
    }
  }
  return out;
}

export function decodeOrder(record) {
  let order;
  try {
    order = JSON.parse(Buffer.from(record.value ?? '', 'base64').toString('utf8'));
  } catch (e) {
    throw new BadRecord(`value is not JSON: ${e.message}`);
  }
  if (order === null || typeof order !== 'object' || Array.isArray(order)) throw new BadRecord('value is not an object');
  if (typeof order.orderId !== 'string' || typeof order.amount !== 'number' || !(order.amount > 0)) {
    throw new BadRecord('an order needs an orderId and a positive amount');
  }
  return order;
}

// Do the work for one order; replace with yours (throw to fail the record).
async function processOrder(order, record) {
  console.log(JSON.stringify({
    msg: 'order', orderId: order.orderId, amount: order.amount,
    partition: record.partition, offset: record.offset, source: headerValues(record).source,
  }));
}

export const handler = async (event) => {
  const batchItemFailures = [];
  for (const key of Object.keys(event.records ?? {}).sort()) {
    const batch = event.records[key];
    for (const [i, record] of batch.entries()) {
      try {
        await processOrder(decodeOrder(record), record);
      } catch (e) {
        if (!(e instanceof BadRecord)) throw e;
        console.log(JSON.stringify({ msg: 'bad record', partition: key, offset: record.offset, error: e.message }));
        // This record and the rest of the partition did not run.
        for (const r of batch.slice(i)) batchItemFailures.push({ itemIdentifier: String(r.offset) });
        break;
      }
    }
  }
  return { batchItemFailures };
};
