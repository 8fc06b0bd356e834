import { useEffect, useState } from 'preact/hooks';
import { del, get, lambda, listAll, nimbus, put, request } from '../../api.js';
import { Field, Status, useAction } from '../../ui.jsx';
import { parseReport, prettyJSON, textOfBase64 } from '../../util.js';

// The gateway's rule for a saved event's name.
const eventNameRE = /^[A-Za-z0-9_-]{1,25}$/;

// TestTab keeps named test events per function (the gateway stores them)
// and invokes the function with one, showing the answer, the function
// error if any, the REPORT figures and the log tail.
export function TestTab({ name }) {
  const [events, setEvents] = useState(null);
  const [selected, setSelected] = useState('');
  const [eventName, setEventName] = useState('');
  const [body, setBody] = useState('{\n  "key": "value"\n}');
  const [qualifiers, setQualifiers] = useState(['$LATEST']);
  const [qualifier, setQualifier] = useState('$LATEST');
  const [result, setResult] = useState(null);
  const saving = useAction();
  const invoking = useAction();

  const load = async (pick) => {
    try {
      const r = await get(nimbus.testEvents(name));
      const l = (r && r.events) || [];
      setEvents(l);
      const want = pick !== undefined ? pick : selected || (l[0] && l[0].name) || '';
      choose(want, l);
    } catch (e) {
      setEvents([]);
      saving.setMsg({ error: true, text: `Saved events are unavailable: ${e.message}` });
    }
  };
  const choose = (n, list = events || []) => {
    setSelected(n);
    const ev = list.find((x) => x.name === n);
    if (ev) {
      setEventName(ev.name);
      setBody(JSON.stringify(ev.event, null, 2));
    }
  };
  useEffect(() => {
    load();
    Promise.all([listAll(lambda.versions(name), 'Versions'), listAll(lambda.aliases(name), 'Aliases')])
      .then(([v, a]) => setQualifiers(['$LATEST', ...v.map((x) => x.Version).filter((x) => x !== '$LATEST'), ...a.map((x) => x.Name)]))
      .catch(() => {});
  }, [name]);

  const parsed = () => {
    try {
      return { value: JSON.parse(body) };
    } catch (e) {
      return { error: `The event is not valid JSON: ${e.message}` };
    }
  };

  const save = async () => {
    if (!eventNameRE.test(eventName)) {
      saving.setMsg({ error: true, text: 'An event name is 1 to 25 letters, digits, hyphens or underscores.' });
      return;
    }
    const p = parsed();
    if (p.error) {
      saving.setMsg({ error: true, text: p.error });
      return;
    }
    const ok = await saving.run(() => put(nimbus.testEvent(name, eventName), p.value).then(() => true), `Saved test event ${eventName}.`);
    if (ok) load(eventName);
  };
  const remove = async () => {
    if (!selected) return;
    const n = selected;
    const ok = await saving.run(() => del(nimbus.testEvent(name, n)).then(() => true), `Deleted test event ${n}.`);
    if (ok) load('');
  };

  const invoke = async (e) => {
    e.preventDefault();
    const p = parsed();
    if (p.error) {
      invoking.setMsg({ error: true, text: p.error });
      return;
    }
    const r = await invoking.run(async () => {
      const res = await request('POST', lambda.invoke(name, qualifier === '$LATEST' ? '' : qualifier), {
        body: JSON.stringify(p.value),
        headers: { 'Content-Type': 'application/json', 'X-Amz-Log-Type': 'Tail', 'X-Amz-Invocation-Type': 'RequestResponse' },
        raw: true,
      });
      const log = textOfBase64(res.headers.get('X-Amz-Log-Result'));
      return {
        payload: await res.text(),
        functionError: res.headers.get('X-Amz-Function-Error') || '',
        version: res.headers.get('X-Amz-Executed-Version') || '',
        requestId: res.headers.get('X-Amzn-RequestId') || '',
        log,
        report: parseReport(log),
      };
    });
    if (r) setResult(r);
  };

  return (
    <div class="stack">
      <form class="card form" onSubmit={invoke} aria-labelledby="test-title">
        <h2 id="test-title">Test event</h2>
        <div class="row">
          <Field id="test-saved" label="Saved event">
            <select id="test-saved" value={selected} onChange={(e) => choose(e.currentTarget.value)} disabled={!events}>
              <option value="">{events ? (events.length ? '— new event —' : 'No saved events') : 'Loading…'}</option>
              {(events || []).map((ev) => (
                <option key={ev.name} value={ev.name}>
                  {ev.name}
                </option>
              ))}
            </select>
          </Field>
          <Field id="test-name" label="Event name">
            <input id="test-name" value={eventName} onInput={(e) => setEventName(e.currentTarget.value)} autocomplete="off" />
          </Field>
        </div>
        <Field id="test-body" label="Event JSON">
          <textarea id="test-body" class="mono" rows={8} spellcheck={false} value={body} onInput={(e) => setBody(e.currentTarget.value)} />
        </Field>
        <div class="actions">
          <button type="button" class="btn" onClick={save} disabled={saving.busy} id="test-save">
            Save event
          </button>
          <button type="button" class="btn" onClick={remove} disabled={saving.busy || !selected}>
            Delete event
          </button>
        </div>
        <Status msg={saving.msg} />
        <div class="row invoke-row">
          <Field id="test-qualifier" label="Version or alias">
            <select id="test-qualifier" value={qualifier} onChange={(e) => setQualifier(e.currentTarget.value)}>
              {qualifiers.map((q) => (
                <option key={q} value={q}>
                  {q}
                </option>
              ))}
            </select>
          </Field>
          <div class="actions">
            <button class="btn primary" type="submit" disabled={invoking.busy} id="test-invoke">
              {invoking.busy ? 'Invoking…' : 'Invoke'}
            </button>
          </div>
        </div>
        <Status msg={invoking.msg} />
      </form>
      <Result result={result} />
    </div>
  );
}

function Result({ result }) {
  const r = result;
  return (
    <section class="card result" aria-labelledby="result-title" aria-live="polite" id="invoke-result">
      <h2 id="result-title">Execution result</h2>
      {!r && <p class="muted">Invoke the function to see its answer here.</p>}
      {r && (
        <>
          <p class={r.functionError ? 'outcome bad' : 'outcome ok'} id="invoke-outcome">
            {r.functionError ? `Function error (${r.functionError})` : 'Succeeded'}
            {r.version && <span class="muted"> · version {r.version}</span>}
            {r.report && r.report.requestId && <span class="muted mono"> · {r.report.requestId}</span>}
          </p>
          <h3>Response</h3>
          <pre class="code" id="invoke-response">
            {prettyJSON(r.payload)}
          </pre>
          <h3>Summary</h3>
          {r.report ? (
            <dl class="report" id="invoke-report">
              {r.report.fields.map((f) => (
                <div key={f.key} data-key={f.key}>
                  <dt>{f.label}</dt>
                  <dd>
                    {f.value} {f.unit}
                  </dd>
                </div>
              ))}
            </dl>
          ) : (
            <p class="muted">The log tail has no REPORT line.</p>
          )}
          <h3>Log output (tail)</h3>
          <pre class="code log" id="invoke-log">
            {r.log || '(empty)'}
          </pre>
        </>
      )}
    </section>
  );
}
