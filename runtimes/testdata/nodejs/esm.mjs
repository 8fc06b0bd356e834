// An ES module handler with top-level await.
const prefix = await Promise.resolve('esm');

export const handler = async (event, context) => ({ kind: prefix, requestId: context.awsRequestId });
