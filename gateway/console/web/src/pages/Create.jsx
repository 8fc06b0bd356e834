import { useEffect, useState } from 'preact/hooks';
import { get, lambda, nimbus, post, request } from '../api.js';
import { base64OfBuffer, defaultHandler, runtimes } from '../util.js';
import { Field, Status, useAction } from '../ui.jsx';

const nameRE = /^[a-zA-Z0-9_-]{1,64}$/;

// CreateFunction creates a function through CreateFunction with its code
// inline (ZipFile): a blueprint's code.zip from the gateway, or a zip the
// user picks.
export function CreateFunction() {
  const [source, setSource] = useState('blueprint');
  const [blueprints, setBlueprints] = useState(null);
  const [bpError, setBpError] = useState('');
  const [blueprint, setBlueprint] = useState('');
  const [name, setName] = useState('');
  const [runtime, setRuntime] = useState('provided.al2023');
  const [handler, setHandler] = useState('bootstrap');
  const [handlerTouched, setHandlerTouched] = useState(false);
  const [memory, setMemory] = useState(128);
  const [timeout, setTimeoutS] = useState(3);
  const [file, setFile] = useState(null);
  const { busy, msg, run, setMsg } = useAction();

  useEffect(() => {
    get(nimbus.blueprints())
      .then((r) => {
        const l = (r && r.blueprints) || [];
        setBlueprints(l);
        const first = l.find((b) => !b.needsBuild);
        if (first) setBlueprint(first.name);
        if (l.length === 0) {
          setSource('zip');
          setBpError('This gateway offers no blueprints.');
        }
      })
      .catch((e) => {
        setBlueprints([]);
        setBpError(e.status === 404 ? 'This gateway offers no blueprints.' : e.message);
        setSource('zip');
      });
  }, []);

  const bp = (blueprints || []).find((b) => b.name === blueprint);
  const effectiveRuntime = source === 'blueprint' ? (bp && bp.runtime) || '' : runtime;
  const effectiveHandler = source === 'blueprint' && !handlerTouched ? (bp && bp.handler) || defaultHandler(effectiveRuntime) : handler;

  const onRuntime = (v) => {
    setRuntime(v);
    if (!handlerTouched) setHandler(defaultHandler(v));
  };

  const submit = async (e) => {
    e.preventDefault();
    if (!nameRE.test(name)) {
      setMsg({ error: true, text: 'A function name is 1 to 64 letters, digits, hyphens or underscores.' });
      return;
    }
    const created = await run(async () => {
      let zip;
      if (source === 'blueprint') {
        if (!bp) throw new Error('Pick a blueprint.');
        if (bp.needsBuild) throw new Error(`Blueprint ${bp.name} needs a build: use nimbus init with it, then upload the zip.`);
        const res = await request('GET', nimbus.blueprintZip(bp.name, name), { raw: true });
        zip = await res.arrayBuffer();
      } else {
        if (!file) throw new Error('Choose a .zip file.');
        zip = await file.arrayBuffer();
      }
      return post(lambda.functions(), {
        FunctionName: name,
        Runtime: effectiveRuntime,
        Handler: effectiveHandler,
        MemorySize: Number(memory),
        Timeout: Number(timeout),
        Code: { ZipFile: base64OfBuffer(zip) },
      });
    });
    if (created) location.hash = `#/functions/${encodeURIComponent(created.FunctionName || name)}/test`;
  };

  return (
    <section aria-labelledby="create-title">
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href="#/functions">Functions</a> / <span aria-current="page">Create</span>
      </nav>
      <h1 id="create-title">Create function</h1>
      <form class="card form" onSubmit={submit}>
        <fieldset>
          <legend>Code</legend>
          <div class="radios">
            <label>
              <input type="radio" name="source" value="blueprint" checked={source === 'blueprint'} disabled={!blueprints || blueprints.length === 0} onChange={() => setSource('blueprint')} />
              From a blueprint
            </label>
            <label>
              <input type="radio" name="source" value="zip" checked={source === 'zip'} onChange={() => setSource('zip')} />
              Upload a .zip
            </label>
          </div>
          {bpError && <p class="muted">{bpError}</p>}
          {source === 'blueprint' && (
            <Field id="create-blueprint" label="Blueprint">
              <select id="create-blueprint" value={blueprint} onChange={(e) => setBlueprint(e.currentTarget.value)}>
                {(blueprints || []).map((b) => (
                  <option key={b.name} value={b.name} disabled={b.needsBuild}>
                    {b.name} — {b.runtime}
                    {b.needsBuild ? ' (needs a build)' : ''}
                  </option>
                ))}
              </select>
              {bp && <small class="hint">{bp.description}</small>}
            </Field>
          )}
          {source === 'zip' && (
            <>
              <Field id="create-zip" label="Code zip" hint="A Lambda deployment package: the handler file (or bootstrap) at the top of the zip.">
                <input id="create-zip" type="file" accept=".zip,application/zip" onChange={(e) => setFile(e.currentTarget.files[0] || null)} aria-describedby="create-zip-hint" />
              </Field>
              <Field id="create-runtime" label="Runtime">
                <select id="create-runtime" value={runtime} onChange={(e) => onRuntime(e.currentTarget.value)}>
                  {runtimes.map((r) => (
                    <option key={r} value={r}>
                      {r}
                    </option>
                  ))}
                </select>
              </Field>
            </>
          )}
        </fieldset>
        <fieldset>
          <legend>Settings</legend>
          <Field id="create-name" label="Function name" hint="Letters, digits, hyphens and underscores; up to 64.">
            <input id="create-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} aria-describedby="create-name-hint" autocomplete="off" />
          </Field>
          <Field id="create-handler" label="Handler">
            <input
              id="create-handler"
              value={effectiveHandler}
              onInput={(e) => {
                setHandlerTouched(true);
                setHandler(e.currentTarget.value);
              }}
            />
          </Field>
          <div class="row">
            <Field id="create-memory" label="Memory (MB)">
              <input id="create-memory" type="number" min={128} max={10240} step={1} value={memory} onInput={(e) => setMemory(e.currentTarget.value)} />
            </Field>
            <Field id="create-timeout" label="Timeout (s)">
              <input id="create-timeout" type="number" min={1} max={900} value={timeout} onInput={(e) => setTimeoutS(e.currentTarget.value)} />
            </Field>
          </div>
        </fieldset>
        <div class="actions">
          <button class="btn primary" type="submit" disabled={busy}>
            {busy ? 'Creating…' : 'Create function'}
          </button>
          <a class="btn" href="#/functions">
            Cancel
          </a>
        </div>
        <Status msg={msg} />
      </form>
    </section>
  );
}
