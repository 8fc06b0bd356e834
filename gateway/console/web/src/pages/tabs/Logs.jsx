import { useEffect, useRef, useState } from 'preact/hooks';
import { nimbus } from '../../api.js';
import { Field } from '../../ui.jsx';
import { formatClock } from '../../util.js';

const maxLines = 2000;
const keyOf = (e) => `${e.time}|${e.instance}|${e.stream}|${e.requestId}|${e.message}`;

// LogsTab shows the last 15 minutes of the function's logs across its
// instances and then follows them live (server-sent events), optionally
// for one request id.
export function LogsTab({ name }) {
  const [filter, setFilter] = useState('');
  const [applied, setApplied] = useState('');
  const [lines, setLines] = useState([]);
  const [state, setState] = useState('connecting');
  const [paused, setPaused] = useState(false);
  const seen = useRef(new Set());
  const pausedRef = useRef(false);
  const view = useRef(null);
  pausedRef.current = paused;

  useEffect(() => {
    seen.current = new Set();
    setLines([]);
    setState('connecting');
    const params = new URLSearchParams();
    if (applied) params.set('requestId', applied);
    const add = (evs) => {
      const fresh = evs.filter((e) => {
        const k = keyOf(e);
        if (seen.current.has(k)) return false;
        seen.current.add(k);
        return true;
      });
      if (fresh.length) setLines((l) => [...l, ...fresh].slice(-maxLines));
    };
    // One stream: the lines of the last 15 minutes, then live ones. A
    // reconnect asks for the same window again; seen drops the repeats.
    params.set('since', new Date(Date.now() - 15 * 60 * 1000).toISOString());
    params.set('follow', '1');
    const es = new EventSource(nimbus.logs(name, params.toString()));
    es.onopen = () => setState('live');
    es.onerror = () => setState(es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
    es.onmessage = (m) => {
      try {
        add([JSON.parse(m.data)]);
      } catch {
        // a keep-alive or a malformed line: nothing to show
      }
    };
    return () => {
      es.close();
    };
  }, [name, applied]);

  useEffect(() => {
    const el = view.current;
    if (el && !pausedRef.current) el.scrollTop = el.scrollHeight;
  }, [lines]);

  const apply = (e) => {
    e.preventDefault();
    setApplied(filter.trim());
  };
  return (
    <section aria-labelledby="logs-title">
      <div class="page-head">
        <h2 id="logs-title">Logs</h2>
        <span class={`live ${state}`} role="status" id="logs-state">
          {state === 'live' ? 'Live' : state === 'connecting' ? 'Connecting…' : state === 'reconnecting' ? 'Reconnecting…' : 'Closed'}
        </span>
      </div>
      <form class="toolbar" onSubmit={apply}>
        <Field id="logs-request" label="Request ID">
          <input id="logs-request" class="mono" placeholder="all requests" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
        </Field>
        <div class="actions">
          <button class="btn" type="submit">
            Filter
          </button>
          {applied && (
            <button
              class="btn"
              type="button"
              onClick={() => {
                setFilter('');
                setApplied('');
              }}
            >
              Clear filter
            </button>
          )}
          <button class="btn" type="button" aria-pressed={paused} onClick={() => setPaused(!paused)}>
            {paused ? 'Resume scrolling' : 'Pause scrolling'}
          </button>
        </div>
      </form>
      <div class="logview" ref={view} tabIndex={0} aria-label={`Log lines of ${name}`} id="log-lines">
        {lines.length === 0 && <p class="muted">{applied ? `No lines for request ${applied} yet.` : 'No log lines in the last 15 minutes yet.'}</p>}
        {lines.map((e) => (
          <div class={`logline ${e.stream}`} key={keyOf(e)} data-request-id={e.requestId}>
            <span class="t">{formatClock(e.time)}</span>
            <span class="v">{e.version}</span>
            <span class="rid" title={e.requestId}>
              {(e.requestId || '').slice(0, 8)}
            </span>
            <span class="m">{e.message}</span>
          </div>
        ))}
      </div>
    </section>
  );
}
