import { useEffect, useState } from 'preact/hooks';
import { del, get, getOrNull, lambda, listAll, post, put } from '../../api.js';
import { Field, Status, useAction } from '../../ui.jsx';

export function ConfigurationTab({ name, fn, reload }) {
  return (
    <div class="stack">
      <General name={name} cfg={fn.Configuration} reload={reload} />
      <Environment name={name} cfg={fn.Configuration} reload={reload} />
      <Reserved name={name} fn={fn} reload={reload} />
      <Provisioned name={name} />
      <FunctionURL name={name} />
    </div>
  );
}

function General({ name, cfg, reload }) {
  const [memory, setMemory] = useState(cfg.MemorySize);
  const [timeout, setTimeoutS] = useState(cfg.Timeout);
  const [description, setDescription] = useState(cfg.Description || '');
  const { busy, msg, run } = useAction();
  const save = async (e) => {
    e.preventDefault();
    // The message comes after the reload, so the header already shows the
    // update this started.
    await run(async () => {
      await put(lambda.configuration(name), { MemorySize: Number(memory), Timeout: Number(timeout), Description: description });
      await reload();
      return true;
    }, 'Saved.');
  };
  return (
    <form class="card form" onSubmit={save} aria-labelledby="cfg-general">
      <h2 id="cfg-general">General</h2>
      <div class="row">
        <Field id="cfg-memory" label="Memory (MB)">
          <input id="cfg-memory" type="number" min={128} max={10240} required value={memory} onInput={(e) => setMemory(e.currentTarget.value)} />
        </Field>
        <Field id="cfg-timeout" label="Timeout (s)">
          <input id="cfg-timeout" type="number" min={1} max={900} required value={timeout} onInput={(e) => setTimeoutS(e.currentTarget.value)} />
        </Field>
      </div>
      <Field id="cfg-description" label="Description">
        <input id="cfg-description" maxLength={256} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
      </Field>
      <dl class="kv">
        <dt>Handler</dt>
        <dd>{cfg.Handler || '—'}</dd>
        <dt>Code SHA-256</dt>
        <dd class="mono wrap">{cfg.CodeSha256 || '—'}</dd>
        <dt>ARN</dt>
        <dd class="mono wrap">{cfg.FunctionArn}</dd>
      </dl>
      <div class="actions">
        <button class="btn primary" type="submit" disabled={busy}>
          Save general settings
        </button>
      </div>
      <Status msg={msg} />
    </form>
  );
}

let rowSeq = 0;
const toRows = (vars) => Object.entries(vars || {}).map(([k, v]) => ({ id: ++rowSeq, k, v }));

function Environment({ name, cfg, reload }) {
  const [rows, setRows] = useState(() => toRows(cfg.Environment && cfg.Environment.Variables));
  const { busy, msg, run, setMsg } = useAction();
  const set = (id, field, value) => setRows(rows.map((r) => (r.id === id ? { ...r, [field]: value } : r)));
  const save = async (e) => {
    e.preventDefault();
    const vars = {};
    for (const r of rows) {
      const k = r.k.trim();
      if (!k) continue;
      if (!/^[a-zA-Z]\w*$/.test(k)) {
        setMsg({ error: true, text: `${k}: a variable name starts with a letter and has only letters, digits and underscores.` });
        return;
      }
      vars[k] = r.v;
    }
    await run(async () => {
      await put(lambda.configuration(name), { Environment: { Variables: vars } });
      await reload();
      return true;
    }, 'Environment saved.');
  };
  return (
    <form class="card form" onSubmit={save} aria-labelledby="cfg-env">
      <h2 id="cfg-env">Environment variables</h2>
      {rows.length === 0 && <p class="muted">None.</p>}
      {rows.map((r, i) => (
        <div class="row env-row" key={r.id}>
          <Field id={`env-k-${r.id}`} label={`Name ${i + 1}`}>
            <input id={`env-k-${r.id}`} name={`env-name-${i}`} class="mono" value={r.k} onInput={(e) => set(r.id, 'k', e.currentTarget.value)} />
          </Field>
          <Field id={`env-v-${r.id}`} label={`Value ${i + 1}`}>
            <input id={`env-v-${r.id}`} name={`env-value-${i}`} class="mono" value={r.v} onInput={(e) => set(r.id, 'v', e.currentTarget.value)} />
          </Field>
          <button type="button" class="btn small" onClick={() => setRows(rows.filter((x) => x.id !== r.id))} aria-label={`Remove variable ${r.k || i + 1}`}>
            Remove
          </button>
        </div>
      ))}
      <div class="actions">
        <button type="button" class="btn" onClick={() => setRows([...rows, { id: ++rowSeq, k: '', v: '' }])}>
          Add variable
        </button>
        <button class="btn primary" type="submit" disabled={busy}>
          Save environment
        </button>
      </div>
      <Status msg={msg} />
    </form>
  );
}

function Reserved({ name, fn, reload }) {
  const cur = fn.Concurrency && fn.Concurrency.ReservedConcurrentExecutions;
  const [value, setValue] = useState(cur ?? '');
  const { busy, msg, run } = useAction();
  const save = async (e) => {
    e.preventDefault();
    await run(async () => {
      await put(lambda.concurrency(name), { ReservedConcurrentExecutions: Number(value) });
      await reload();
      return true;
    }, 'Reserved concurrency saved.');
  };
  const remove = async () => {
    const ok = await run(() => del(lambda.concurrency(name)).then(() => true), 'Reserved concurrency removed: the function uses the unreserved pool.');
    if (ok) {
      setValue('');
      reload();
    }
  };
  return (
    <form class="card form" onSubmit={save} aria-labelledby="cfg-reserved">
      <h2 id="cfg-reserved">Reserved concurrency</h2>
      <p class="muted">{cur == null ? 'Not reserved: the function shares the account pool.' : `Reserved: ${cur} (0 stops all invocations).`}</p>
      <Field id="cfg-reserved-value" label="Reserved concurrent executions">
        <input id="cfg-reserved-value" type="number" min={0} required value={value} onInput={(e) => setValue(e.currentTarget.value)} />
      </Field>
      <div class="actions">
        <button class="btn primary" type="submit" disabled={busy}>
          Save reserved concurrency
        </button>
        <button class="btn" type="button" disabled={busy || cur == null} onClick={remove}>
          Remove reservation
        </button>
      </div>
      <Status msg={msg} />
    </form>
  );
}

function Provisioned({ name }) {
  const [configs, setConfigs] = useState(null);
  const [qualifiers, setQualifiers] = useState([]);
  const [qualifier, setQualifier] = useState('');
  const [value, setValue] = useState(1);
  const { busy, msg, run } = useAction();
  const load = () => {
    get(lambda.provisionedList(name))
      .then((r) => setConfigs((r && r.ProvisionedConcurrencyConfigs) || []))
      .catch(() => setConfigs([]));
  };
  useEffect(() => {
    load();
    Promise.all([listAll(lambda.versions(name), 'Versions'), listAll(lambda.aliases(name), 'Aliases')])
      .then(([v, a]) => {
        const q = [...a.map((x) => x.Name), ...v.map((x) => x.Version).filter((x) => x !== '$LATEST')];
        setQualifiers(q);
        if (q.length) setQualifier(q[0]);
      })
      .catch(() => setQualifiers([]));
  }, [name]);
  // Follow a request until Lambda's status settles (READY or FAILED).
  const pending = (configs || []).some((c) => c.Status === 'IN_PROGRESS');
  useEffect(() => {
    if (!pending) return undefined;
    const t = setInterval(load, 2000);
    return () => clearInterval(t);
  }, [pending, name]);
  const save = async (e) => {
    e.preventDefault();
    const ok = await run(() => put(lambda.provisioned(name, qualifier), { ProvisionedConcurrentExecutions: Number(value) }), `Provisioned concurrency for ${qualifier} requested.`);
    if (ok) load();
  };
  const remove = async (q) => {
    await run(() => del(lambda.provisioned(name, q)), `Provisioned concurrency for ${q} removed.`);
    load();
  };
  const qualOf = (c) => (c.FunctionArn || '').split(':').pop();
  return (
    <form class="card form" onSubmit={save} aria-labelledby="cfg-prov">
      <h2 id="cfg-prov">Provisioned concurrency</h2>
      <div class="table-wrap">
        <table class="data">
          <thead>
            <tr>
              <th scope="col">Qualifier</th>
              <th scope="col" class="num">
                Requested
              </th>
              <th scope="col" class="num">
                Allocated
              </th>
              <th scope="col">Status</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {configs === null && (
              <tr>
                <td colSpan={5} class="muted">
                  Loading…
                </td>
              </tr>
            )}
            {configs && configs.length === 0 && (
              <tr>
                <td colSpan={5} class="muted">
                  None configured.
                </td>
              </tr>
            )}
            {(configs || []).map((c) => (
              <tr key={c.FunctionArn} data-qualifier={qualOf(c)} data-status={c.Status}>
                <td>{qualOf(c)}</td>
                <td class="num">{c.RequestedProvisionedConcurrentExecutions}</td>
                <td class="num">{c.AllocatedProvisionedConcurrentExecutions}</td>
                <td>
                  {c.Status}
                  {c.StatusReason ? ` — ${c.StatusReason}` : ''}
                </td>
                <td>
                  <button type="button" class="btn small" onClick={() => remove(qualOf(c))} aria-label={`Remove provisioned concurrency of ${qualOf(c)}`}>
                    Remove
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {qualifiers.length === 0 ? (
        <p class="muted">Provisioned concurrency applies to a published version or an alias: publish a version first.</p>
      ) : (
        <div class="row">
          <Field id="cfg-prov-qualifier" label="Version or alias">
            <select id="cfg-prov-qualifier" value={qualifier} onChange={(e) => setQualifier(e.currentTarget.value)}>
              {qualifiers.map((q) => (
                <option key={q} value={q}>
                  {q}
                </option>
              ))}
            </select>
          </Field>
          <Field id="cfg-prov-value" label="Provisioned executions">
            <input id="cfg-prov-value" type="number" min={1} required value={value} onInput={(e) => setValue(e.currentTarget.value)} />
          </Field>
        </div>
      )}
      <div class="actions">
        <button class="btn primary" type="submit" disabled={busy || qualifiers.length === 0}>
          Save provisioned concurrency
        </button>
      </div>
      <Status msg={msg} />
    </form>
  );
}

const splitList = (s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

function FunctionURL({ name }) {
  const [url, setUrl] = useState(undefined);
  const [auth, setAuth] = useState('NONE');
  const [mode, setMode] = useState('BUFFERED');
  const [cors, setCors] = useState({ origins: '', methods: '', headers: '', expose: '', maxAge: '', credentials: false });
  const { busy, msg, run } = useAction();
  const fill = (u) => {
    setUrl(u);
    if (!u) return;
    setAuth(u.AuthType || 'NONE');
    setMode(u.InvokeMode || 'BUFFERED');
    const c = u.Cors || {};
    setCors({
      origins: (c.AllowOrigins || []).join(', '),
      methods: (c.AllowMethods || []).join(', '),
      headers: (c.AllowHeaders || []).join(', '),
      expose: (c.ExposeHeaders || []).join(', '),
      maxAge: c.MaxAge ?? '',
      credentials: !!c.AllowCredentials,
    });
  };
  useEffect(() => {
    getOrNull(lambda.url(name))
      .then(fill)
      .catch(() => setUrl(null));
  }, [name]);
  const setC = (k, v) => setCors({ ...cors, [k]: v });
  const save = async (e) => {
    e.preventDefault();
    const Cors = {
      AllowOrigins: splitList(cors.origins),
      AllowMethods: splitList(cors.methods),
      AllowHeaders: splitList(cors.headers),
      ExposeHeaders: splitList(cors.expose),
      AllowCredentials: cors.credentials,
    };
    if (cors.maxAge !== '') Cors.MaxAge = Number(cors.maxAge);
    const body = { AuthType: auth, InvokeMode: mode, Cors };
    const r = await run(() => (url ? put(lambda.url(name), body) : post(lambda.url(name), body)), url ? 'Function URL updated.' : 'Function URL created.');
    if (r) fill(r);
  };
  const remove = async () => {
    await run(() => del(lambda.url(name)), 'Function URL deleted.');
    setUrl(null);
  };
  return (
    <form class="card form" onSubmit={save} aria-labelledby="cfg-url">
      <h2 id="cfg-url">Function URL</h2>
      <p class="url-line">
        {url === undefined ? 'Loading…' : url ? (
          <a href={url.FunctionUrl} class="mono wrap" id="function-url">
            {url.FunctionUrl}
          </a>
        ) : (
          'No function URL.'
        )}
      </p>
      <div class="row">
        <Field id="url-auth" label="Auth type">
          <select id="url-auth" value={auth} onChange={(e) => setAuth(e.currentTarget.value)}>
            <option value="NONE">NONE (public)</option>
            <option value="AWS_IAM">AWS_IAM (SigV4)</option>
          </select>
        </Field>
        <Field id="url-mode" label="Invoke mode">
          <select id="url-mode" value={mode} onChange={(e) => setMode(e.currentTarget.value)}>
            <option value="BUFFERED">BUFFERED</option>
            <option value="RESPONSE_STREAM">RESPONSE_STREAM</option>
          </select>
        </Field>
      </div>
      <fieldset>
        <legend>CORS (comma-separated lists)</legend>
        <Field id="url-origins" label="Allow origins">
          <input id="url-origins" placeholder="https://example.com" value={cors.origins} onInput={(e) => setC('origins', e.currentTarget.value)} />
        </Field>
        <div class="row">
          <Field id="url-methods" label="Allow methods">
            <input id="url-methods" placeholder="GET, POST" value={cors.methods} onInput={(e) => setC('methods', e.currentTarget.value)} />
          </Field>
          <Field id="url-headers" label="Allow headers">
            <input id="url-headers" value={cors.headers} onInput={(e) => setC('headers', e.currentTarget.value)} />
          </Field>
        </div>
        <div class="row">
          <Field id="url-expose" label="Expose headers">
            <input id="url-expose" value={cors.expose} onInput={(e) => setC('expose', e.currentTarget.value)} />
          </Field>
          <Field id="url-maxage" label="Max age (s)">
            <input id="url-maxage" type="number" min={0} max={86400} value={cors.maxAge} onInput={(e) => setC('maxAge', e.currentTarget.value)} />
          </Field>
        </div>
        <label class="check">
          <input type="checkbox" checked={cors.credentials} onChange={(e) => setC('credentials', e.currentTarget.checked)} /> Allow credentials
        </label>
      </fieldset>
      <div class="actions">
        <button class="btn primary" type="submit" disabled={busy || url === undefined}>
          {url ? 'Update function URL' : 'Create function URL'}
        </button>
        {url && (
          <button class="btn" type="button" disabled={busy} onClick={remove}>
            Delete function URL
          </button>
        )}
      </div>
      <Status msg={msg} />
    </form>
  );
}
