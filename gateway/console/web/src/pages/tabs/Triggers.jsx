import { useEffect, useState } from 'preact/hooks';
import { get, lambda, listAll, nimbus, put } from '../../api.js';
import { SkeletonRows, StateBadge, Status, useAction } from '../../ui.jsx';
import { formatTime, lagOf } from '../../util.js';

// refreshEvery is how often the mappings and their engine status reload
// while the tab is open.
const refreshEvery = 5000;

// TriggersTab lists the function's event-source mappings (the Lambda
// mapping API), with what the gateway's event-source engine reports of
// each (/nimbus/v1/event-sources: state, last processing result, records
// and lag, which Lambda's API does not carry), and turns them on and off.
export function TriggersTab({ name }) {
  const [maps, setMaps] = useState(null);
  const [engine, setEngine] = useState({});
  const [error, setError] = useState('');
  const [loadedAt, setLoadedAt] = useState(null);
  const { busy, msg, run } = useAction();
  const load = () =>
    Promise.all([
      listAll(lambda.mappings(name), 'EventSourceMappings'),
      get(nimbus.eventSources(name)).catch(() => ({ EventSourceMappings: [] })),
    ])
      .then(([m, st]) => {
        const byUUID = {};
        for (const s of (st && st.EventSourceMappings) || []) byUUID[s.uuid] = s;
        setMaps(m);
        setEngine(byUUID);
        setError('');
        setLoadedAt(new Date());
      })
      .catch((e) => {
        setMaps((old) => old || []);
        setError(e.message);
      });
  useEffect(() => {
    setMaps(null);
    load();
    const t = setInterval(load, refreshEvery);
    return () => clearInterval(t);
  }, [name]);
  const toggle = async (m, enabled) => {
    await run(() => put(lambda.mapping(m.UUID), { Enabled: enabled }), `${enabled ? 'Enabling' : 'Disabling'} ${m.UUID}.`);
    load();
  };
  const source = (m) => m.EventSourceArn || (m.SelfManagedEventSource ? Object.values(m.SelfManagedEventSource.Endpoints || {}).flat().join(', ') : '—');
  return (
    <section class="card" aria-labelledby="esm-title">
      <div class="page-head">
        <h2 id="esm-title">Event-source mappings</h2>
        <button type="button" class="btn small" onClick={load}>
          Refresh
        </button>
      </div>
      <p class="muted small" id="esm-refreshed" aria-live="off">
        {loadedAt ? `Refreshed ${loadedAt.toLocaleTimeString()}, every ${refreshEvery / 1000} s. Records and lag are this gateway's engine's.` : 'Loading…'}
      </p>
      {error && (
        <p class="alert" role="alert">
          {error}
        </p>
      )}
      <div class="table-wrap">
        <table class="data" id="esm-table">
          <thead>
            <tr>
              <th scope="col">Source</th>
              <th scope="col">State</th>
              <th scope="col" class="num">
                Batch size
              </th>
              <th scope="col">Last result</th>
              <th scope="col" class="num">
                Records in / done / failed
              </th>
              <th scope="col" class="num">
                Lag
              </th>
              <th scope="col">Modified</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {!maps && <SkeletonRows cols={8} rows={2} />}
            {maps && maps.length === 0 && (
              <tr>
                <td colSpan={8} class="empty">
                  No event sources invoke this function.
                </td>
              </tr>
            )}
            {(maps || []).map((m) => {
              const on = m.State === 'Enabled' || m.State === 'Enabling' || m.State === 'Creating';
              const st = engine[m.UUID];
              const lag = lagOf(st);
              const result = (st && st.last_processing_result) || m.LastProcessingResult;
              return (
                <tr key={m.UUID} data-uuid={m.UUID}>
                  <td class="mono wrap">
                    {source(m)}
                    {m.Topics && m.Topics.length ? ` (${m.Topics.join(', ')})` : ''}
                    {m.Queues && m.Queues.length ? ` (${m.Queues.join(', ')})` : ''}
                  </td>
                  <td>
                    <StateBadge state={m.State} />
                    {m.StateTransitionReason && <div class="muted small">{m.StateTransitionReason}</div>}
                    {st && st.last_error && <div class="muted small wrap">Last error: {st.last_error}</div>}
                  </td>
                  <td class="num">{m.BatchSize ?? '—'}</td>
                  <td data-field="result">
                    {result || '—'}
                    {st && st.last_batch_at && <div class="muted small">last batch {formatTime(st.last_batch_at)}</div>}
                  </td>
                  <td class="num" data-field="records">
                    {st ? `${st.records_in} / ${st.records_done} / ${st.records_failed}` : '—'}
                  </td>
                  <td class="num" data-field="lag" data-records={lag.records ?? ''}>
                    {lag.records === null ? '—' : `${lag.records} records`}
                    {lag.age && <div class="muted small">oldest {lag.age}</div>}
                  </td>
                  <td>{m.LastModified ? formatTime(m.LastModified) : '—'}</td>
                  <td>
                    <button type="button" class="btn small" disabled={busy} onClick={() => toggle(m, !on)}>
                      {on ? 'Disable' : 'Enable'}
                      <span class="sr-only"> mapping {m.UUID}</span>
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <Status msg={msg} />
    </section>
  );
}
