import { useEffect, useState } from 'preact/hooks';
import { lambda, listAll, post, put } from '../../api.js';
import { Field, SkeletonRows, Status, useAction } from '../../ui.jsx';

// AliasesTab creates aliases and shifts traffic between an alias's version
// and a second one (UpdateAlias RoutingConfig.AdditionalVersionWeights).
export function AliasesTab({ name }) {
  const [aliases, setAliases] = useState(null);
  const [versions, setVersions] = useState([]);
  const load = () =>
    listAll(lambda.aliases(name), 'Aliases')
      .then((a) => setAliases(a.sort((x, y) => x.Name.localeCompare(y.Name))))
      .catch(() => setAliases([]));
  useEffect(() => {
    load();
    listAll(lambda.versions(name), 'Versions')
      .then((v) => setVersions(v.map((x) => x.Version)))
      .catch(() => setVersions([]));
  }, [name]);
  const published = versions.filter((v) => v !== '$LATEST');
  return (
    <div class="stack">
      <CreateAlias name={name} versions={versions} onCreated={load} />
      <section class="card" aria-labelledby="alias-list-title">
        <h2 id="alias-list-title">Aliases</h2>
        {!aliases && (
          <table class="data">
            <tbody>
              <SkeletonRows cols={3} rows={2} />
            </tbody>
          </table>
        )}
        {aliases && aliases.length === 0 && <p class="muted">No aliases yet.</p>}
        {(aliases || []).map((a) => (
          <AliasRow key={a.Name} name={name} alias={a} versions={published} onSaved={load} />
        ))}
      </section>
    </div>
  );
}

function CreateAlias({ name, versions, onCreated }) {
  const [alias, setAlias] = useState('');
  const [version, setVersion] = useState('');
  const { busy, msg, run } = useAction();
  useEffect(() => {
    if (!version && versions.length) setVersion(versions[versions.length - 1]);
  }, [versions]);
  const create = async (e) => {
    e.preventDefault();
    const r = await run(() => post(lambda.aliases(name), { Name: alias, FunctionVersion: version }), `Alias ${alias} created.`);
    if (r) {
      setAlias('');
      onCreated();
    }
  };
  return (
    <form class="card form" onSubmit={create} aria-labelledby="alias-create-title">
      <h2 id="alias-create-title">Create alias</h2>
      <div class="row">
        <Field id="alias-name" label="Alias name">
          <input id="alias-name" required pattern="(?!^[0-9]+$)([a-zA-Z0-9_-]+)" maxLength={128} value={alias} onInput={(e) => setAlias(e.currentTarget.value)} />
        </Field>
        <Field id="alias-version" label="Version">
          <select id="alias-version" value={version} onChange={(e) => setVersion(e.currentTarget.value)}>
            {versions.map((v) => (
              <option key={v} value={v}>
                {v}
              </option>
            ))}
          </select>
        </Field>
      </div>
      <div class="actions">
        <button class="btn primary" type="submit" disabled={busy || !version}>
          Create alias
        </button>
      </div>
      <Status msg={msg} />
    </form>
  );
}

function AliasRow({ name, alias, versions, onSaved }) {
  const weights = (alias.RoutingConfig && alias.RoutingConfig.AdditionalVersionWeights) || {};
  const [extra] = Object.keys(weights);
  const others = versions.filter((v) => v !== alias.FunctionVersion);
  const [second, setSecond] = useState(extra || others[others.length - 1] || '');
  const [pct, setPct] = useState(extra ? Math.round(weights[extra] * 100) : 0);
  const { busy, msg, run } = useAction();
  useEffect(() => {
    if (!second && others.length) setSecond(others[others.length - 1]);
  }, [versions.length]);
  const id = `alias-${alias.Name}`;
  const save = async (e) => {
    e.preventDefault();
    const RoutingConfig = { AdditionalVersionWeights: pct > 0 && second ? { [second]: pct / 100 } : {} };
    const r = await run(() => put(lambda.alias(name, alias.Name), { FunctionVersion: alias.FunctionVersion, RoutingConfig }), `Alias ${alias.Name} saved.`);
    if (r) onSaved();
  };
  const current = extra ? `${alias.FunctionVersion} ${100 - Math.round(weights[extra] * 100)}% · ${extra} ${Math.round(weights[extra] * 100)}%` : `${alias.FunctionVersion} 100%`;
  return (
    <form class="alias" onSubmit={save} aria-labelledby={`${id}-title`} data-alias={alias.Name}>
      <h3 id={`${id}-title`}>
        {alias.Name} <span class="muted">→ {alias.FunctionVersion}</span>
      </h3>
      <p class="muted" data-routing>
        Routing now: {current}
      </p>
      {others.length === 0 ? (
        <p class="muted">Publish another version to split traffic.</p>
      ) : (
        <div class="row">
          <Field id={`${id}-second`} label="Second version">
            <select id={`${id}-second`} value={second} onChange={(e) => setSecond(e.currentTarget.value)}>
              {others.map((v) => (
                <option key={v} value={v}>
                  {v}
                </option>
              ))}
            </select>
          </Field>
          <Field id={`${id}-weight`} label={`Traffic to version ${second || '—'}: ${pct}%`}>
            <input
              id={`${id}-weight`}
              class="slider"
              type="range"
              min={0}
              max={100}
              step={1}
              value={pct}
              aria-valuetext={`${pct}% to version ${second}, ${100 - pct}% to version ${alias.FunctionVersion}`}
              onInput={(e) => setPct(Number(e.currentTarget.value))}
            />
          </Field>
        </div>
      )}
      <div class="actions">
        <button class="btn primary" type="submit" disabled={busy || others.length === 0}>
          Save weights
        </button>
      </div>
      <Status msg={msg} />
    </form>
  );
}
