// Streams an export as NDJSON (one JSON object per line) through a function
// URL in RESPONSE_STREAM mode: GET /?count=N sends N rows, each as soon as
// it is made.
//
// awslambda is a global of the Node.js runtime (Lambda's and Nimbus's):
// streamifyResponse marks the handler as streaming, HttpResponseStream.from
// sends the status and headers before the body.
import { setTimeout as sleep } from 'node:timers/promises';

const MAX_ROWS = 10000;
const ROW_DELAY_MS = Number(process.env.ROW_DELAY_MS ?? 0);

// rows makes the export, one row at a time; replace with your source (a
// database cursor, a paginated API, a model's tokens).
export async function* rows(count) {
  for (let i = 1; i <= count; i++) {
    if (ROW_DELAY_MS > 0) await sleep(ROW_DELAY_MS);
    yield { row: i, of: count, value: Math.round(1000 * Math.sin(i)) / 1000 };
  }
}

function parseCount(query) {
  const raw = query?.count ?? '10';
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  return n >= 1 && n <= MAX_ROWS ? n : undefined;
}

export const handler = awslambda.streamifyResponse(async (event, responseStream) => {
  const count = parseCount(event.queryStringParameters);
  if (count === undefined) {
    const out = awslambda.HttpResponseStream.from(responseStream, {
      statusCode: 400,
      headers: { 'content-type': 'application/json' },
    });
    out.end(JSON.stringify({ error: `count must be a whole number from 1 to ${MAX_ROWS}` }));
    return;
  }
  const out = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 200,
    headers: { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' },
  });
  for await (const row of rows(count)) {
    // write returns false when the client reads slower than we write: wait.
    if (!out.write(`${JSON.stringify(row)}\n`)) await new Promise((resolve) => out.once('drain', resolve));
  }
  out.end();
});
