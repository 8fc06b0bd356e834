// A daily job run by a schedule event source.
//
// The event is EventBridge's scheduled event; its "time" is the tick (not
// the moment the function runs), so the report covers the 24 hours before
// the tick however late the run is. Its "id" is the same when a tick is
// fired again after a gateway failover: use it to skip a report already made.

const WINDOW_MS = 24 * 60 * 60 * 1000;

export class NotAScheduledEvent extends Error {
  constructor(message) {
    super(message);
    this.name = 'NotAScheduledEvent';
  }
}

function parseTime(value) {
  if (typeof value !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(value) || Number.isNaN(Date.parse(value))) {
    throw new NotAScheduledEvent(`time ${JSON.stringify(value)} is not an RFC 3339 UTC time`);
  }
  return new Date(value);
}

const fmt = (t) => t.toISOString().replace(/\.\d{3}Z$/, 'Z');

// Do the job's work for [start, end); replace with yours.
async function buildReport(start, end) {
  return { orders: 0, revenueCents: 0 };
}

export const handler = async (event) => {
  if (event === null || typeof event !== 'object' || event['detail-type'] !== 'Scheduled Event') {
    throw new NotAScheduledEvent(`expected EventBridge's Scheduled Event, got ${JSON.stringify(event).slice(0, 200)}`);
  }
  const end = parseTime(event.time);
  const start = new Date(end.getTime() - WINDOW_MS);
  const report = {
    report: 'daily',
    rule: (event.resources?.[0] ?? '?').split('/').pop(),
    eventId: event.id,
    window: { start: fmt(start), end: fmt(end) },
    totals: await buildReport(start, end),
  };
  console.log(JSON.stringify({ msg: 'report', eventId: report.eventId, window: report.window }));
  return report;
};
