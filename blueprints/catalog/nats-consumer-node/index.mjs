// Checks sensor readings delivered by a NATS JetStream event source.
//
// Each record has the stream, subject, stream sequence, timestamp, headers
// (every value of every header) and the payload, base64. The answer names
// the messages that failed by sequence: {"batchItemFailures":
// [{"itemIdentifier": "1043"}]}. The handler goes on after a failure: on a
// work-queue stream only the failed messages come again; on a limits stream
// the gateway retries from the first failed one, so later messages may be
// seen twice (keep the work idempotent).

const ALERT_CELSIUS = 35;

export class BadReading extends Error {}

export function decode(record) {
  let reading;
  try {
    reading = JSON.parse(Buffer.from(record.data ?? '', 'base64').toString('utf8'));
  } catch (e) {
    throw new BadReading(`payload is not JSON: ${e.message}`);
  }
  if (reading === null || typeof reading !== 'object' || typeof reading.sensor !== 'string') {
    throw new BadReading('a reading needs a sensor');
  }
  if (typeof reading.celsius !== 'number' || !Number.isFinite(reading.celsius)) {
    throw new BadReading(`celsius is not a number: ${JSON.stringify(reading.celsius)}`);
  }
  return reading;
}

// Do the work for one reading; replace with yours (throw to fail the message).
async function processReading(reading, record) {
  const level = reading.celsius >= ALERT_CELSIUS ? 'alert' : 'ok';
  console.log(JSON.stringify({
    msg: level, sensor: reading.sensor, celsius: reading.celsius,
    subject: record.subject, sequence: record.sequence, msgId: record.headers?.['Nats-Msg-Id']?.[0] ?? null,
  }));
  return level;
}

export const handler = async (event) => {
  const batchItemFailures = [];
  for (const record of event.records ?? []) {
    try {
      await processReading(decode(record), record);
    } catch (e) {
      if (!(e instanceof BadReading)) throw e;
      console.log(JSON.stringify({ msg: 'bad reading', sequence: record.sequence, error: e.message }));
      batchItemFailures.push({ itemIdentifier: String(record.sequence) });
    }
  }
  return { batchItemFailures };
};
