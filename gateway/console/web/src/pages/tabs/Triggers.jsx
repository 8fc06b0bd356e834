import { useEffect, useState } from 'preact/hooks';
import { lambda, listAll, put } from '../../api.js';
import { SkeletonRows, StateBadge, Status, useAction } from '../../ui.jsx';
import { formatTime } from '../../util.js';

// TriggersTab lists the function's event-source mappings and turns them on
// and off (UpdateEventSourceMapping Enabled).
export function TriggersTab({ name }) {
  const [maps, setMaps] = useState(null);
  const [error, setError] = useState('');
  const { busy, msg, run } = useAction();
  const load = () =>
    listAll(lambda.mappings(name), 'EventSourceMappings')
      .then(setMaps)
      .catch((e) => {
        setMaps([]);
        setError(e.message);
      });
  useEffect(() => {
    load();
  }, [name]);
  // Follow mappings that are between states until they settle.
  const moving = (maps || []).some((m) => /ing$/.test(m.State || ''));
  useEffect(() => {
    if (!moving) return undefined;
    const t = setInterval(load, 2000);
    return () => clearInterval(t);
  }, [moving, name]);
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
      {error && (
        <p class="alert" role="alert">
          {error}
        </p>
      )}
      <div class="table-wrap">
        <table class="data">
          <thead>
            <tr>
              <th scope="col">Source</th>
              <th scope="col">State</th>
              <th scope="col" class="num">
                Batch size
              </th>
              <th scope="col">Last result</th>
              <th scope="col">Modified</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {!maps && <SkeletonRows cols={6} rows={2} />}
            {maps && maps.length === 0 && (
              <tr>
                <td colSpan={6} class="empty">
                  No event sources invoke this function.
                </td>
              </tr>
            )}
            {(maps || []).map((m) => {
              const on = m.State === 'Enabled' || m.State === 'Enabling' || m.State === 'Creating';
              return (
                <tr key={m.UUID}>
                  <td class="mono wrap">
                    {source(m)}
                    {m.Topics && m.Topics.length ? ` (${m.Topics.join(', ')})` : ''}
                    {m.Queues && m.Queues.length ? ` (${m.Queues.join(', ')})` : ''}
                  </td>
                  <td>
                    <StateBadge state={m.State} />
                    {m.StateTransitionReason && <div class="muted small">{m.StateTransitionReason}</div>}
                  </td>
                  <td class="num">{m.BatchSize ?? '—'}</td>
                  <td>{m.LastProcessingResult || '—'}</td>
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
