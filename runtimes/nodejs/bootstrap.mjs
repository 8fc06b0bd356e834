#!/usr/bin/env node
// Nimbus bootstrap for the nodejsNN.x managed runtimes.
//
// A Lambda Runtime API client (API version 2018-06-01) using only Node.js
// built-ins (Node 18 and newer). It loads the handler named by _HANDLER
// ("file.function", the file relative to LAMBDA_TASK_ROOT, CommonJS or ES
// module) and serves invocations one at a time: GET next, run the handler
// (async, callback or plain return), POST the JSON result or Lambda's error
// JSON. Handlers wrapped in awslambda.streamifyResponse stream their
// response instead (see "response streaming" below). Init failures go to /runtime/init/error and the process exits. Any
// unexpected status from the Runtime API is fatal: Lambda treats the
// environment as broken, so do we.

import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import util from 'node:util';

const require = createRequire(import.meta.url);
const API_PREFIX = '/2018-06-01/runtime';
const ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type';
const ERROR_BODY_HEADER = 'Lambda-Runtime-Function-Error-Body';
const USER_AGENT = `nimbus-nodejs/${process.version}`;

// Exit codes Lambda's Node.js runtime uses for these crashes.
const EXIT_UNHANDLED_REJECTION = 128;
const EXIT_UNCAUGHT_EXCEPTION = 129;

// A runtime-side failure with a Lambda-defined errorType ("Runtime.<type>").
class RuntimeError extends Error {
  constructor(type, message) {
    super(message);
    this.name = `Runtime.${type}`;
  }
}

// The Runtime API answered with an unexpected status or not at all.
class RuntimeAPIError extends Error {}

// --- Runtime API client ------------------------------------------------------

if (!process.env.AWS_LAMBDA_RUNTIME_API) {
  process.stderr.write('nimbus bootstrap: AWS_LAMBDA_RUNTIME_API is not set\n');
  process.exit(1);
}
const apiURL = new URL(`http://${process.env.AWS_LAMBDA_RUNTIME_API}`);
// One kept-alive connection. Idle sockets are unref'd by the agent, so they
// do not keep the event loop (and an invocation waiting for it) alive.
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function request(method, apiPath, body, headers, want, retried = false) {
  return new Promise((resolve, reject) => {
    const fail = (msg) => reject(new RuntimeAPIError(`${method} ${apiPath}: ${msg}`));
    const hdrs = { 'User-Agent': USER_AGENT, ...headers };
    if (body !== undefined) hdrs['Content-Length'] = Buffer.byteLength(body);
    const req = http.request(
      {
        host: apiURL.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: apiURL.port || 80,
        method,
        path: API_PREFIX + apiPath,
        headers: hdrs,
        agent,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', (e) => fail(e.message));
        res.on('end', () => {
          const data = Buffer.concat(chunks);
          if (res.statusCode !== want) {
            fail(`status ${res.statusCode}: ${data.subarray(0, 512).toString()}`);
          } else {
            resolve({ headers: res.headers, body: data });
          }
        });
      },
    );
    req.on('error', (e) => {
      // A reused connection the server closed meanwhile: once more, fresh.
      if (req.reusedSocket && e.code === 'ECONNRESET' && !retried) {
        resolve(request(method, apiPath, body, headers, want, true));
      } else {
        fail(e.message);
      }
    });
    req.end(body);
  });
}

const client = {
  next: () => request('GET', '/invocation/next', undefined, {}, 200),
  postResponse: (id, body) =>
    request('POST', `/invocation/${encodeURIComponent(id)}/response`, body,
      { 'Content-Type': 'application/json' }, 202),
  postError: (id, err) => postErrorJSON(`/invocation/${encodeURIComponent(id)}/error`, err),
  postInitError: (err) => postErrorJSON('/init/error', err),
};

function postErrorJSON(apiPath, err) {
  const body = toErrorJSON(err);
  return request('POST', apiPath, JSON.stringify(body), {
    'Content-Type': 'application/json',
    [ERROR_TYPE_HEADER]: body.errorType || 'Runtime.Unknown',
  }, 202);
}

// --- errors as Lambda formats them ---------------------------------------------

function looksLikeError(v) {
  return v && typeof v.name === 'string' && typeof v.message === 'string' && typeof v.stack === 'string';
}

// toErrorJSON renders anything thrown, rejected or passed to a callback.
function toErrorJSON(err) {
  try {
    if (util.types.isNativeError(err) || looksLikeError(err)) {
      return { errorType: err.name, errorMessage: err.message, trace: err.stack.split('\n') };
    }
    return { errorType: typeof err, errorMessage: String(err), trace: [] };
  } catch {
    return {
      errorType: 'handled',
      errorMessage: 'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function logError(prefix, err) {
  const { errorType, errorMessage, trace } = toErrorJSON(err);
  console.error(prefix, `\t${JSON.stringify({ errorType, errorMessage, stack: trace })}`);
}

// --- logging -------------------------------------------------------------------

// Lambda's text log format: one line per call, embedded newlines as "\r".
let logRequestId; // undefined during init, as in Lambda's log lines
function patchConsole() {
  const writer = (level) => (...args) => {
    const line = `${new Date().toISOString()}\t${logRequestId}\t${level}\t${util.format(...args)}`;
    process.stdout.write(`${line.replace(/\n/g, '\r')}\n`);
  };
  console.trace = writer('TRACE');
  console.debug = writer('DEBUG');
  console.info = writer('INFO');
  console.log = writer('INFO');
  console.warn = writer('WARN');
  console.error = writer('ERROR');
}

// --- handler loading -------------------------------------------------------------

function packageTypeIsModule(dir) {
  for (;;) {
    if (dir.endsWith(`${path.sep}node_modules`)) return false;
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        return JSON.parse(fs.readFileSync(pj, 'utf8')).type === 'module';
      } catch {
        return false;
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return false;
    dir = parent;
  }
}

// loadModule finds the handler's file the way Lambda does: as given (CommonJS),
// then .js (ES module when the nearest package.json says "type": "module"),
// .mjs, .cjs, and finally a package resolvable from the task root or NODE_PATH.
async function loadModule(taskRoot, moduleRoot, name) {
  const file = path.resolve(taskRoot, moduleRoot, name);
  const isFile = (p) => fs.statSync(p, { throwIfNoEntry: false })?.isFile() ?? false;
  const esmImport = (p) => import(pathToFileURL(p).href);
  if (fs.existsSync(file)) return require(file);
  if (isFile(`${file}.js`)) {
    return packageTypeIsModule(path.dirname(file)) ? esmImport(`${file}.js`) : require(`${file}.js`);
  }
  if (isFile(`${file}.mjs`)) return esmImport(`${file}.mjs`);
  if (isFile(`${file}.cjs`)) return require(`${file}.cjs`);
  return require(require.resolve(name, { paths: [taskRoot, path.resolve(taskRoot, moduleRoot)] }));
}

async function loadHandler(taskRoot, handlerString) {
  if (handlerString.includes('..')) {
    throw new RuntimeError('MalformedHandlerName',
      `'${handlerString}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`);
  }
  const base = path.basename(handlerString);
  const moduleRoot = handlerString.slice(0, handlerString.length - base.length);
  const match = /^([^.]*)\.(.*)$/.exec(base);
  if (!match) throw new RuntimeError('MalformedHandlerName', 'Bad handler');
  const [, moduleName, handlerPath] = match;

  let mod;
  try {
    mod = await loadModule(taskRoot, moduleRoot, moduleName);
  } catch (e) {
    if (e instanceof SyntaxError) throw new RuntimeError('UserCodeSyntaxError', String(e));
    if (e?.code === 'MODULE_NOT_FOUND' || e?.code === 'ERR_MODULE_NOT_FOUND') {
      throw new RuntimeError('ImportModuleError', String(e));
    }
    throw e;
  }
  const fn = handlerPath.split('.').reduce((obj, key) => obj?.[key], mod);
  if (!fn) throw new RuntimeError('HandlerNotFound', `${handlerString} is undefined or not exported`);
  if (typeof fn !== 'function') throw new RuntimeError('HandlerNotFound', `${handlerString} is not a function`);
  return fn;
}

// --- response streaming ----------------------------------------------------------

// Lambda's Node.js runtime gives handlers the global awslambda:
// streamifyResponse(handler) marks a handler that takes (event, responseStream,
// context) and writes its response as it goes; HttpResponseStream.from(stream,
// {statusCode, headers, cookies}) starts a function URL response with that
// prelude. The response goes to the Runtime API as one chunked POST with
// Lambda-Runtime-Function-Response-Mode: streaming; an error after the first
// byte is reported in the request's trailers.
const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HIGH_WATER_MARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const HTTP_INTEGRATION_CT = 'application/vnd.awslambda.http-integration-response';

class HttpResponseStream {
  static from(stream, prelude) {
    stream.setContentType(HTTP_INTEGRATION_CT);
    stream.write(JSON.stringify(prelude ?? {}));
    stream.write(new Uint8Array(8)); // the prelude ends with eight NUL bytes
    return stream;
  }
}

globalThis.awslambda = {
  streamifyResponse(handler, options) {
    if (typeof handler !== 'function') throw new TypeError('streamifyResponse needs a handler function');
    handler[STREAMING] = 'response';
    if (options?.highWaterMark !== undefined) handler[HIGH_WATER_MARK] = options.highWaterMark;
    return handler;
  },
  HttpResponseStream,
};

// ResponseStream is the responseStream a streaming handler writes to. The
// POST starts with the first write (or end), so the content type can be set
// until then and a handler that fails before writing reports an ordinary
// error. It has a connection of its own: a failed POST cannot be sent again.
class ResponseStream extends Writable {
  constructor(id, highWaterMark) {
    super(highWaterMark === undefined ? {} : { highWaterMark });
    this.id = id;
    this.contentType = 'application/octet-stream';
    this.req = null;
    // Settles when the Runtime API has answered the POST.
    this.posted = null;
  }

  get started() {
    return this.req !== null;
  }

  setContentType(contentType) {
    if (this.started) throw new Error('the response has started: its content type is fixed');
    this.contentType = String(contentType);
  }

  open() {
    const apiPath = `/invocation/${encodeURIComponent(this.id)}/response`;
    this.req = http.request({
      host: apiURL.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: apiURL.port || 80,
      method: 'POST',
      path: API_PREFIX + apiPath,
      agent: false,
      headers: {
        'User-Agent': USER_AGENT,
        'Content-Type': this.contentType,
        'Lambda-Runtime-Function-Response-Mode': 'streaming',
        'Transfer-Encoding': 'chunked',
        Trailer: `${ERROR_TYPE_HEADER}, ${ERROR_BODY_HEADER}`,
      },
    });
    this.posted = new Promise((resolve, reject) => {
      const fail = (msg) => reject(new RuntimeAPIError(`POST ${apiPath}: ${msg}`));
      this.req.on('error', (e) => {
        fail(e.message);
        this.destroy(e);
      });
      this.req.on('response', (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', (e) => fail(e.message));
        res.on('end', () => {
          if (res.statusCode === 202) resolve();
          else fail(`status ${res.statusCode}: ${Buffer.concat(chunks).subarray(0, 512).toString()}`);
        });
      });
    });
    // Awaited by finish(); never an unhandled rejection before that.
    this.posted.catch(() => {});
  }

  _write(chunk, encoding, callback) {
    if (!this.started) this.open();
    this.req.write(chunk, callback);
  }

  _final(callback) {
    if (!this.started) this.open();
    this.req.end(callback);
  }

  // fail ends a started response with the error in the trailers.
  fail(err) {
    const body = toErrorJSON(err);
    this.req.addTrailers({
      [ERROR_TYPE_HEADER]: body.errorType || 'Runtime.Unknown',
      [ERROR_BODY_HEADER]: Buffer.from(JSON.stringify(body)).toString('base64'),
    });
    this.req.end();
  }
}

// runStreaming resolves with {} or {error} once the streaming handler's
// promise settles.
function runStreaming(handler, inv, event, stream, context) {
  return new Promise((resolve) => {
    const finish = (outcome) => {
      inv.onEmptyLoop = null;
      resolve(outcome);
    };
    inv.onEmptyLoop = () => finish({ error: new RuntimeError('NodeJsExit', 'Runtime exited without providing a reason') });
    let ret;
    try {
      ret = handler(event, stream, context);
    } catch (e) {
      finish({ error: e ?? 'handled' });
      return;
    }
    Promise.resolve(ret).then(() => finish({}), (e) => finish({ error: e ?? 'handled' }));
  });
}

// reportStreaming completes the invocation of a streaming handler: a
// handler that returned ends its stream if it did not; one that failed
// before writing posts an ordinary error, after writing the error trailers.
async function reportStreaming(id, stream, outcome) {
  if (!('error' in outcome)) {
    if (!stream.writableEnded) stream.end();
    try {
      await finished(stream);
    } catch (e) {
      if (!stream.started) outcome = { error: e };
      else throw e;
    }
    if (!('error' in outcome)) {
      await stream.posted;
      return;
    }
  }
  logError('Invoke Error', outcome.error);
  if (!stream.started) {
    stream.destroy();
    await client.postError(id, outcome.error);
    return;
  }
  if (!stream.req.writableEnded) stream.fail(outcome.error);
  await stream.posted;
}

// --- invocation ------------------------------------------------------------------

function parseHeaderJSON(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (e) {
    throw new Error(`Cannot parse ${name} as json: ${e}`);
  }
}

function buildContext(id, headers) {
  const env = process.env;
  const deadline = Number(headers['lambda-runtime-deadline-ms']) || 0;
  return {
    awsRequestId: id,
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE, // a string, as in Lambda
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parseHeaderJSON(headers['lambda-runtime-client-context'], 'ClientContext'),
    identity: parseHeaderJSON(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
  };
}

// The invocation in progress: {id, onEmptyLoop, reporting}.
let current = null;

// An emptied event loop ends a pending invocation, as in Lambda: a callback
// waiting for it completes, a forgotten callback means null, and an async
// handler whose promise can no longer settle fails.
process.on('beforeExit', () => {
  const finish = current?.onEmptyLoop;
  if (finish) {
    current.onEmptyLoop = null;
    finish();
  }
});

// runHandler resolves with {result} or {error} once the handler is done:
// its promise settles, it calls the callback (or context.succeed/fail/done),
// or, for handlers that take no callback, it returns a value synchronously.
function runHandler(handler, inv, event, context) {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (outcome) => {
      if (settled) return;
      settled = true;
      inv.onEmptyLoop = null;
      resolve(outcome);
    };
    const succeed = (result) => finish({ result });
    const fail = (error) => finish({ error: error ?? 'handled' });
    const callback = (err, result) => {
      if (err !== undefined && err !== null) fail(err);
      else if (context.callbackWaitsForEmptyEventLoop) inv.onEmptyLoop = () => succeed(result);
      else succeed(result);
    };
    Object.assign(context, {
      succeed,
      fail,
      done: (err, result) => (err !== undefined && err !== null ? fail(err) : succeed(result)),
    });

    const isAsync = handler.constructor?.name === 'AsyncFunction';
    inv.onEmptyLoop = isAsync
      ? () => fail(new RuntimeError('NodeJsExit', 'Runtime exited without providing a reason'))
      : () => succeed(null);

    let ret;
    try {
      ret = handler(event, context, callback);
    } catch (e) {
      fail(e);
      return;
    }
    if (typeof ret?.then === 'function') {
      Promise.resolve(ret).then(succeed, fail);
    } else if (ret !== undefined && handler.length < 3) {
      // Lambda ignores this value; returning it serves plain sync handlers.
      // A callback-style handler's return value (say, a timer) stays ignored.
      succeed(ret);
    }
  });
}

async function report(id, outcome) {
  if (!('error' in outcome)) {
    let body;
    try {
      // undefined, functions and symbols have no JSON: they answer null.
      body = JSON.stringify(outcome.result) ?? 'null';
    } catch (e) {
      outcome = { error: new Error(`Unable to stringify response body: ${e.message}`) };
    }
    if (body !== undefined) {
      await client.postResponse(id, body);
      return;
    }
  }
  logError('Invoke Error', outcome.error);
  await client.postError(id, outcome.error);
}

// --- crashes ---------------------------------------------------------------------

let initDone = false;
let crashing = false;

// crash reports an uncaught exception or unhandled rejection against the
// init phase or the invocation in progress, then exits as Lambda's runtime does.
async function crash(err, code) {
  if (crashing) return;
  crashing = true;
  logError('Uncaught Exception', err);
  try {
    if (!initDone) await client.postInitError(err);
    else if (current && !current.reporting) await client.postError(current.id, err);
  } catch (e) {
    process.stderr.write(`nimbus bootstrap: runtime API: ${e.message}\n`);
  }
  process.exit(code);
}

process.on('uncaughtException', (err) => crash(err, EXIT_UNCAUGHT_EXCEPTION));
process.on('unhandledRejection', (reason) =>
  crash(new RuntimeError('UnhandledPromiseRejection', String(reason)), EXIT_UNHANDLED_REJECTION));

// --- main loop -------------------------------------------------------------------

async function main() {
  patchConsole();
  const taskRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
  let handler;
  try {
    handler = await loadHandler(taskRoot, process.env._HANDLER || '');
  } catch (e) {
    logError('Init Error', e);
    await client.postInitError(e);
    process.exit(1);
  }
  initDone = true;

  for (;;) {
    const { headers, body } = await client.next();
    const id = headers['lambda-runtime-aws-request-id'] ?? '';
    const inv = { id, onEmptyLoop: null, reporting: false };
    current = inv;
    logRequestId = id;
    const traceId = headers['lambda-runtime-trace-id'];
    if (traceId) process.env._X_AMZN_TRACE_ID = traceId;
    else delete process.env._X_AMZN_TRACE_ID;

    const streaming = handler[STREAMING] === 'response';
    const stream = streaming ? new ResponseStream(id, handler[HIGH_WATER_MARK]) : null;
    let outcome;
    try {
      const context = buildContext(id, headers);
      const event = JSON.parse(body.toString('utf8'));
      outcome = streaming
        ? await runStreaming(handler, inv, event, stream, context)
        : await runHandler(handler, inv, event, context);
    } catch (e) {
      outcome = { error: e };
    }
    inv.reporting = true;
    if (streaming) await reportStreaming(id, stream, outcome);
    else await report(id, outcome);
    current = null;
  }
}

main().catch((e) => {
  process.stderr.write(`nimbus bootstrap: ${e instanceof RuntimeAPIError ? 'runtime API: ' : ''}${e.message}\n`);
  process.exit(1);
});
