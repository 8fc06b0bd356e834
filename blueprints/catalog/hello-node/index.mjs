// Says hello, to a direct invocation or to a function URL request.

const GREETING = process.env.GREETING || 'Hello';

export const greet = (name) => `${GREETING}, ${name || 'world'}!`;

export const handler = async (event, context) => {
  if (event?.requestContext) {
    // A function URL request (payload format 2.0): ?name=… in the query.
    const name = event.queryStringParameters?.name;
    return {
      statusCode: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ message: greet(name), requestId: context.awsRequestId }),
    };
  }
  // A direct invocation: {"name": "…"}.
  return { message: greet(event?.name), requestId: context.awsRequestId };
};
