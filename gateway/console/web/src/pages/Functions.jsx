import { useEffect, useState } from 'preact/hooks';
import { get, lambda, listAll, nimbus } from '../api.js';
import { formatTime } from '../util.js';
import { SkeletonRows, StateBadge } from '../ui.jsx';

// FunctionsList is the landing page: every function with its last hour's
// invocations and errors from the gateway's metrics summary.
export function FunctionsList() {
  const [fns, setFns] = useState(null);
  const [summary, setSummary] = useState(null);
  const [error, setError] = useState('');
  const [query, setQuery] = useState('');

  useEffect(() => {
    listAll(lambda.functions(), 'Functions')
      .then((l) => setFns(l.sort((a, b) => a.FunctionName.localeCompare(b.FunctionName))))
      .catch((e) => setError(e.message));
    get(nimbus.summary('1h'))
      .then((s) => setSummary((s && s.functions) || {}))
      .catch(() => setSummary({}));
  }, []);

  const q = query.trim().toLowerCase();
  const shown = (fns || []).filter((f) => !q || f.FunctionName.toLowerCase().includes(q) || (f.Runtime || '').toLowerCase().includes(q));
  const metric = (name, key) => {
    if (!summary) return '…';
    const m = summary[name];
    return m ? m[key] ?? 0 : 0;
  };

  return (
    <section aria-labelledby="fns-title">
      <div class="page-head">
        <h1 id="fns-title">Functions</h1>
        <a class="btn primary" href="#/create">
          Create function
        </a>
      </div>
      <div class="toolbar">
        <label for="fn-search" class="sr-only">
          Search functions
        </label>
        <input id="fn-search" type="search" placeholder="Search by name or runtime" value={query} onInput={(e) => setQuery(e.currentTarget.value)} />
        <span class="muted" aria-live="polite">
          {fns ? `${shown.length} of ${fns.length}` : ''}
        </span>
      </div>
      {error && (
        <p class="alert" role="alert">
          {error}
        </p>
      )}
      <div class="table-wrap">
        <table class="data" id="functions-table">
          <caption class="sr-only">Functions with invocations and errors in the last hour</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Runtime</th>
              <th scope="col" class="num">
                Memory
              </th>
              <th scope="col">Last modified</th>
              <th scope="col">State</th>
              <th scope="col" class="num">
                Invocations (1 h)
              </th>
              <th scope="col" class="num">
                Errors (1 h)
              </th>
            </tr>
          </thead>
          <tbody>
            {!fns && !error && <SkeletonRows cols={7} rows={4} />}
            {fns &&
              shown.map((f) => (
                <tr key={f.FunctionName} data-function={f.FunctionName}>
                  <th scope="row">
                    <a href={`#/functions/${encodeURIComponent(f.FunctionName)}`}>{f.FunctionName}</a>
                  </th>
                  <td>{f.Runtime || f.PackageType || '—'}</td>
                  <td class="num">{f.MemorySize} MB</td>
                  <td>{formatTime(f.LastModified)}</td>
                  <td>
                    <StateBadge state={f.State} />
                  </td>
                  <td class="num" data-metric="invocations">
                    {metric(f.FunctionName, 'invocations')}
                  </td>
                  <td class="num" data-metric="errors">
                    {metric(f.FunctionName, 'errors')}
                  </td>
                </tr>
              ))}
            {fns && shown.length === 0 && (
              <tr>
                <td colSpan={7} class="empty">
                  {fns.length === 0 ? 'No functions yet. Create one from a blueprint or a zip.' : 'No function matches the search.'}
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </section>
  );
}
