// Handlers for the nodejs bootstrap tests (CommonJS).
const fs = require('fs');

let calls = 0;

exports.sync = (event) => ({ event, calls: ++calls, pid: process.pid });

exports.asyncHandler = async (event) => {
  await new Promise((resolve) => setImmediate(resolve));
  return { async: true, event };
};

exports.callback = (event, context, callback) => {
  setTimeout(() => callback(null, { callback: true }), 1);
};

// The response must wait for the timer: the event loop is not empty yet.
exports.waits = (event, context, callback) => {
  callback(null, 'waited');
  setTimeout(() => fs.writeFileSync(event.marker, 'fired'), 20);
};

// An interval keeps the event loop busy for good; only not waiting answers.
exports.noWait = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = false;
  setInterval(() => {}, 1000);
  callback(null, 'early');
};

exports.undef = () => undefined;

exports.throws = () => {
  throw new TypeError('bad type');
};

exports.rejects = async () => {
  throw new Error('async boom');
};

exports.callbackError = (event, context, callback) => callback(new Error('callback boom'));

exports.stringError = (event, context, callback) => callback('plain failure');

exports.contextFail = (event, context) => {
  context.fail(new RangeError('context fail'));
};

exports.context = (event, context) => ({
  awsRequestId: context.awsRequestId,
  invokedFunctionArn: context.invokedFunctionArn,
  functionName: context.functionName,
  functionVersion: context.functionVersion,
  memoryLimitInMB: context.memoryLimitInMB,
  logGroupName: context.logGroupName,
  logStreamName: context.logStreamName,
  clientContext: context.clientContext,
  identity: context.identity,
  callbackWaitsForEmptyEventLoop: context.callbackWaitsForEmptyEventLoop,
  remainingMs: context.getRemainingTimeInMillis(),
  traceId: process.env._X_AMZN_TRACE_ID,
});

exports.nested = { deeper: { handler: async () => 'nested' } };

exports.notFn = 42;

exports.unhandled = async () => {
  Promise.reject(new Error('floating'));
  await new Promise((resolve) => setTimeout(resolve, 60000));
};

exports.neverSettles = async () => new Promise(() => {});

exports.log = () => {
  console.log('hello %s', 'world');
  console.error('multi\nline');
  return 'logged';
};

exports.circular = () => {
  const o = {};
  o.self = o;
  return o;
};

exports.layered = () => require('layerlib').where();
