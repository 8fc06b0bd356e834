// Response streaming handlers for the nodejs bootstrap tests (ES module).
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

// A function URL response: prelude, a first line, then (once the file the
// event names exists) a second line.
export const prelude = awslambda.streamifyResponse(async (event, responseStream, context) => {
  const stream = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 201,
    headers: { 'content-type': 'text/plain', 'x-request-id': context.awsRequestId },
    cookies: ['a=1'],
  });
  stream.write('first\n');
  while (event.gate && !fs.existsSync(event.gate)) await sleep(5);
  stream.write('second\n');
  stream.end();
});

// Writes and returns without ending the stream: the runtime ends it.
export const plain = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.setContentType('text/plain');
  responseStream.write('a');
  responseStream.write(Buffer.from('b'));
});

export const failsEarly = awslambda.streamifyResponse(async () => {
  throw new TypeError('before any byte');
});

export const failsMidway = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.write('partial');
  await sleep(1);
  throw new RangeError('midway');
});
