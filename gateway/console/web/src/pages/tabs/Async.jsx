import { useEffect, useState } from 'preact/hooks';
import { del, get, getOrNull, lambda, nimbus, put } from '../../api.js';
import { Field, SkeletonRows, StateBadge, Status, useAction } from '../../ui.jsx';
import { formatTime } from '../../util.js';

// AsyncTab edits the event invoke config (retries, age, destinations) and
// lists recent asynchronous invocations with their outcome.
export function AsyncTab({ name }) {
  return (
    <div class="stack">
      <EventInvokeConfig name={name} />
      <RecentInvocations name={name} />
    </div>
  );
}

function EventInvokeConfig({ name }) {
  const [cfg, setCfg] = useState(undefined);
  const [retries, setRetries] = useState(2);
  const [age, setAge] = useState(21600);
  const [onSuccess, setOnSuccess] = useState('');
  const [onFailure, setOnFailure] = useState('');
  const { busy, msg, run } = useAction();
  const fill = (c) => {
    setCfg(c);
    if (!c) return;
    setRetries(c.MaximumRetryAttempts ?? 2);
    setAge(c.MaximumEventAgeInSeconds ?? 21600);
    const d = c.DestinationConfig || {};
    setOnSuccess((d.OnSuccess && d.OnSuccess.Destination) || '');
    setOnFailure((d.OnFailure && d.OnFailure.Destination) || '');
  };
  useEffect(() => {
    getOrNull(lambda.eventInvokeConfig(name))
      .then(fill)
      .catch(() => fill(null));
  }, [name]);
  const save = async (e) => {
    e.preventDefault();
    const DestinationConfig = {};
    if (onSuccess.trim()) DestinationConfig.OnSuccess = { Destination: onSuccess.trim() };
    if (onFailure.trim()) DestinationConfig.OnFailure = { Destination: onFailure.trim() };
    const r = await run(
      () => put(lambda.eventInvokeConfig(name), { MaximumRetryAttempts: Number(retries), MaximumEventAgeInSeconds: Number(age), DestinationConfig }),
      'Asynchronous invocation settings saved.',
    );
    if (r) fill(r);
  };
  const remove = async () => {
    await run(() => del(lambda.eventInvokeConfig(name)), 'Settings removed: defaults apply (2 retries, 6 hours).');
    fill(null);
    setRetries(2);
    setAge(21600);
    setOnSuccess('');
    setOnFailure('');
  };
  return (
    <form class="card form" onSubmit={save} aria-labelledby="async-title">
      <h2 id="async-title">Asynchronous invocation</h2>
      <p class="muted">{cfg === undefined ? 'Loading…' : cfg ? 'Configured.' : 'Not configured: defaults apply (2 retries, 6 hours).'}</p>
      <div class="row">
        <Field id="async-retries" label="Retry attempts">
          <input id="async-retries" type="number" min={0} max={2} required value={retries} onInput={(e) => setRetries(e.currentTarget.value)} />
        </Field>
        <Field id="async-age" label="Maximum event age (s)">
          <input id="async-age" type="number" min={60} max={21600} required value={age} onInput={(e) => setAge(e.currentTarget.value)} />
        </Field>
      </div>
      <Field id="async-success" label="On-success destination" hint="A destination ARN or URL: a function, NATS subject, Kafka topic or webhook.">
        <input id="async-success" class="mono" value={onSuccess} onInput={(e) => setOnSuccess(e.currentTarget.value)} aria-describedby="async-success-hint" />
      </Field>
      <Field id="async-failure" label="On-failure destination">
        <input id="async-failure" class="mono" value={onFailure} onInput={(e) => setOnFailure(e.currentTarget.value)} />
      </Field>
      <div class="actions">
        <button class="btn primary" type="submit" disabled={busy}>
          Save asynchronous settings
        </button>
        {cfg && (
          <button class="btn" type="button" disabled={busy} onClick={remove}>
            Remove settings
          </button>
        )}
      </div>
      <Status msg={msg} />
    </form>
  );
}

function RecentInvocations({ name }) {
  const [list, setList] = useState(null);
  const [error, setError] = useState('');
  const load = () =>
    get(nimbus.invocations(name, 20))
      .then((r) => {
        setList((r && r.invocations) || []);
        setError('');
      })
      .catch((e) => {
        setList([]);
        setError(e.message);
      });
  useEffect(() => {
    load();
  }, [name]);
  return (
    <section class="card" aria-labelledby="inv-title">
      <div class="page-head">
        <h2 id="inv-title">Recent asynchronous invocations</h2>
        <button type="button" class="btn small" onClick={load}>
          Refresh
        </button>
      </div>
      {error && <p class="muted">{error}</p>}
      <div class="table-wrap">
        <table class="data">
          <thead>
            <tr>
              <th scope="col">Request ID</th>
              <th scope="col">State</th>
              <th scope="col" class="num">
                Attempts
              </th>
              <th scope="col">Version</th>
              <th scope="col">Enqueued</th>
              <th scope="col">Outcome</th>
            </tr>
          </thead>
          <tbody>
            {!list && <SkeletonRows cols={6} rows={3} />}
            {list && list.length === 0 && (
              <tr>
                <td colSpan={6} class="empty">
                  No asynchronous invocations in the retention window.
                </td>
              </tr>
            )}
            {(list || []).map((s) => (
              <tr key={s.requestId}>
                <td class="mono">{s.requestId}</td>
                <td>
                  <StateBadge state={s.state} />
                </td>
                <td class="num">{s.attempts}</td>
                <td>{s.executedVersion || s.qualifier || '—'}</td>
                <td>{formatTime(s.enqueuedAt)}</td>
                <td class="wrap">{[s.functionError, s.condition, s.error, ...(s.destinationErrors || [])].filter(Boolean).join(' · ') || '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
