// A Nimbus function for the nodejs22.x runtime, answering function URL
// requests (payload format 2.0).
export const handler = async (event) => {
  const name = event?.queryStringParameters?.name ?? 'world';
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ message: `hello, ${name}` }),
  };
};
