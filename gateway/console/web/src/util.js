// Small pure helpers: encodings, the REPORT line, formatting.

// base64OfBuffer encodes an ArrayBuffer (a code zip) for CreateFunction's ZipFile.
export function base64OfBuffer(buf) {
  const bytes = new Uint8Array(buf);
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

// textOfBase64 decodes X-Amz-Log-Result (base64 of UTF-8 text).
export function textOfBase64(b64) {
  if (!b64) return '';
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}

const reportFields = [
  ['Duration', 'duration', 'ms'],
  ['Billed Duration', 'billedDuration', 'ms'],
  ['Memory Size', 'memorySize', 'MB'],
  ['Max Memory Used', 'maxMemoryUsed', 'MB'],
  ['Init Duration', 'initDuration', 'ms'],
];

// parseReport reads the last REPORT line of a log tail:
// "REPORT RequestId: id\tDuration: 1.23 ms\tBilled Duration: 2 ms\t…".
// It answers null when the tail has none (it may have been cut).
export function parseReport(log) {
  const lines = (log || '').split('\n').filter((l) => l.startsWith('REPORT RequestId:'));
  if (lines.length === 0) return null;
  const line = lines[lines.length - 1];
  const out = { requestId: '', fields: [] };
  for (const part of line.split('\t')) {
    const m = /^(?:REPORT )?([A-Za-z ]+):\s*(.*)$/.exec(part.trim());
    if (!m) continue;
    if (m[1] === 'RequestId') {
      out.requestId = m[2];
      continue;
    }
    const f = reportFields.find((r) => r[0] === m[1]);
    if (f) {
      const v = /^([0-9.]+)\s*(\w+)?$/.exec(m[2]);
      out.fields.push({ label: f[0], key: f[1], value: v ? v[1] : m[2], unit: v && v[2] ? v[2] : f[2] });
    }
  }
  return out;
}

export function prettyJSON(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export function formatTime(v) {
  if (!v) return '—';
  const d = typeof v === 'number' ? new Date(v * 1000) : new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  return d.toLocaleString();
}

export function formatClock(v) {
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  return d.toLocaleTimeString([], { hour12: false });
}

// defaultHandler is Lambda's conventional handler for a runtime.
export function defaultHandler(runtime) {
  if (!runtime) return '';
  if (runtime.startsWith('python')) return 'lambda_function.lambda_handler';
  if (runtime.startsWith('nodejs')) return 'index.handler';
  return 'bootstrap';
}

export const runtimes = ['provided.al2023', 'provided.al2', 'python3.13', 'python3.12', 'python3.11', 'nodejs22.x', 'nodejs20.x'];

// classNames joins the truthy arguments.
export function cx(...a) {
  return a.filter(Boolean).join(' ');
}

// lagOf summarises one mapping's backlog as /nimbus/v1/event-sources
// reports it: records not yet consumed (summed over partitions, null when
// the source does not report lag) and the age of the oldest record
// buffered or in flight ('' when none).
export function lagOf(status) {
  if (!status) return { records: null, age: '' };
  const parts = status.lag || [];
  const records = parts.length ? parts.reduce((n, p) => n + (p.records || 0), 0) : null;
  return { records, age: status.oldest_record_age || '' };
}
