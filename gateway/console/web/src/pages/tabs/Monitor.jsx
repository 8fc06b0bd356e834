import { useEffect, useMemo, useState } from 'preact/hooks';
import { get, nimbus } from '../../api.js';
import { Chart } from '../../Chart.jsx';

const windows = [
  ['15m', '15 min'],
  ['1h', '1 hour'],
  ['1d', '1 day'],
];

const charts = [
  { id: 'invocations', title: 'Invocations, errors and throttles', agg: 'sum', series: [['invocations', 'Invocations', '#1f5fbf'], ['errors', 'Errors', '#b3261e'], ['throttles', 'Throttles', '#8a5a00']] },
  { id: 'duration', title: 'Duration (ms)', agg: 'max', unit: '', series: [['durationP50Ms', 'p50', '#1f5fbf'], ['durationP99Ms', 'p99', '#6b2fa3']] },
  { id: 'concurrency', title: 'Concurrent executions', agg: 'max', series: [['concurrency', 'Concurrency', '#0b7a55']] },
  { id: 'coldstarts', title: 'Cold starts', agg: 'sum', series: [['coldStarts', 'Cold starts', '#8a5a00']] },
  { id: 'asyncdepth', title: 'Async queue depth', agg: 'max', series: [['asyncDepth', 'Queued events', '#1f5fbf']] },
  { id: 'asyncage', title: 'Oldest queued event age (s)', agg: 'max', series: [['asyncAgeSeconds', 'Age (s)', '#b3261e']] },
];

const winLabel = (w) => windows.find((x) => x[0] === w)[1];

const fmt = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(2));

// MonitorTab charts the gateway's metrics history for the function and
// refreshes it every 10 seconds.
export function MonitorTab({ name }) {
  const [win, setWin] = useState('1h');
  const [hist, setHist] = useState(null);
  const [error, setError] = useState('');

  useEffect(() => {
    let live = true;
    const load = () =>
      get(nimbus.history(name, win))
        .then((h) => {
          if (!live) return;
          setHist({ ...h, win });
          setError('');
        })
        .catch((e) => live && setError(e.message));
    load();
    const t = setInterval(load, 10000);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, [name, win]);

  const pts = (hist && hist.points) || [];
  const xs = useMemo(() => pts.map((p) => p.t), [hist]);
  const data = useMemo(
    () =>
      charts.map((c) => ({
        ...c,
        lines: c.series.map(([key, label, color]) => {
          const values = pts.map((p) => p[key] ?? 0);
          const total = c.agg === 'sum' ? values.reduce((a, b) => a + b, 0) : values.reduce((a, b) => Math.max(a, b), 0);
          return { key, label, color, values, total };
        }),
      })),
    [hist],
  );

  return (
    <section aria-labelledby="mon-title">
      <div class="page-head">
        <h2 id="mon-title">Monitor</h2>
        <div class="segmented" role="group" aria-label="Time window">
          {windows.map(([w, label]) => (
            <button key={w} type="button" aria-pressed={w === win} class={w === win ? 'on' : ''} onClick={() => setWin(w)}>
              {label}
            </button>
          ))}
        </div>
      </div>
      <p class={`small ${error ? "status error" : "muted"}`} role="status" id="monitor-status">
        {error
          ? `Metrics are unavailable: ${error}`
          : hist && hist.win === win
            ? `${winLabel(win)}: ${pts.length} points, one per ${hist.step} s, from ${hist.gateways > 1 ? `${hist.gateways} gateways` : 'this gateway'}; refreshed every 10 s.`
            : 'Loading…'}
      </p>
      <div class="charts">
        {data.map((c) => (
          <figure class="card chart-card" key={c.id} data-chart={c.id}>
            <figcaption>
              <strong>{c.title}</strong>
              <span class="totals">
                {c.lines.map((l) => (
                  <span key={l.key} data-series={l.key} data-total={l.total}>
                    {l.label} {c.agg === 'sum' ? 'total' : 'max'}: {fmt(l.total)}
                  </span>
                ))}
              </span>
            </figcaption>
            {hist ? <Chart title={c.title} xs={xs} series={c.lines} unit={c.unit} /> : <div class="chart placeholder-chart" aria-hidden="true" />}
          </figure>
        ))}
      </div>
    </section>
  );
}
