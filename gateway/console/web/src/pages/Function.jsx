import { useCallback, useEffect, useState } from 'preact/hooks';
import { get, lambda } from '../api.js';
import { StateBadge } from '../ui.jsx';
import { formatTime } from '../util.js';
import { ConfigurationTab } from './tabs/Configuration.jsx';
import { VersionsTab } from './tabs/Versions.jsx';
import { AliasesTab } from './tabs/Aliases.jsx';
import { TriggersTab } from './tabs/Triggers.jsx';
import { AsyncTab } from './tabs/Async.jsx';
import { TestTab } from './tabs/Test.jsx';
import { MonitorTab } from './tabs/Monitor.jsx';
import { LogsTab } from './tabs/Logs.jsx';

const tabs = [
  ['configuration', 'Configuration', ConfigurationTab],
  ['test', 'Test', TestTab],
  ['monitor', 'Monitor', MonitorTab],
  ['logs', 'Logs', LogsTab],
  ['versions', 'Versions', VersionsTab],
  ['aliases', 'Aliases', AliasesTab],
  ['triggers', 'Triggers', TriggersTab],
  ['async', 'Async', AsyncTab],
];

// FunctionPage is one function: a summary header and a tab per concern.
export function FunctionPage({ name, tab, session }) {
  const [fn, setFn] = useState(null);
  const [error, setError] = useState('');

  const reload = useCallback(
    () =>
      get(lambda.fn(name))
        .then((f) => {
          setFn(f);
          setError('');
        })
        .catch((e) => setError(e.status === 404 ? `There is no function ${name}.` : e.message)),
    [name],
  );
  useEffect(() => {
    setFn(null);
    reload();
  }, [reload]);

  // A function being created or updated settles within seconds: follow it
  // until it does, so the state shown (and whether it can be invoked) is current.
  const state = fn && fn.Configuration && fn.Configuration.State;
  const update = fn && fn.Configuration && fn.Configuration.LastUpdateStatus;
  useEffect(() => {
    if (state !== 'Pending' && update !== 'InProgress') return undefined;
    const t = setInterval(reload, 1000);
    return () => clearInterval(t);
  }, [state, update, reload]);

  const current = tabs.find((t) => t[0] === tab) || tabs[0];
  const Tab = current[2];
  const cfg = fn && fn.Configuration;
  return (
    <section aria-labelledby="fn-title">
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href="#/functions">Functions</a> / <span aria-current="page">{name}</span>
      </nav>
      <div class="page-head">
        <h1 id="fn-title">{name}</h1>
        <div class="facts" aria-label="Summary">
          <span>{cfg ? cfg.Runtime || cfg.PackageType : '…'}</span>
          <span>{cfg ? `${cfg.MemorySize} MB` : '…'}</span>
          <span class="hide-narrow">{cfg ? `modified ${formatTime(cfg.LastModified)}` : '…'}</span>
          <span id="fn-state" data-state={cfg ? cfg.State : ''} data-update={cfg ? cfg.LastUpdateStatus || '' : ''}>
            <StateBadge state={cfg ? cfg.State : '…'} />
            <span class={`upd small ${update === 'Failed' ? 'status error' : 'muted'}`}>{update === 'InProgress' ? 'updating…' : update === 'Failed' ? 'update failed' : ''}</span>
          </span>
        </div>
      </div>
      {error && (
        <p class="alert" role="alert">
          {error}
        </p>
      )}
      <nav class="tabs" aria-label="Function sections">
        {tabs.map(([id, label]) => (
          <a key={id} href={`#/functions/${encodeURIComponent(name)}/${id}`} aria-current={id === current[0] ? 'page' : undefined} id={`tab-${id}`}>
            {label}
          </a>
        ))}
      </nav>
      <div class="tab-body" aria-labelledby={`tab-${current[0]}`}>
        {fn ? <Tab key={`${name}/${current[0]}`} name={name} fn={fn} reload={reload} session={session} /> : !error && <div class="placeholder">Loading…</div>}
      </div>
    </section>
  );
}
