import { useEffect, useState } from 'preact/hooks';
import { lambda, listAll, post } from '../../api.js';
import { Field, SkeletonRows, Status, useAction } from '../../ui.jsx';
import { formatTime } from '../../util.js';

export function VersionsTab({ name }) {
  const [versions, setVersions] = useState(null);
  const [description, setDescription] = useState('');
  const { busy, msg, run } = useAction();
  const load = () =>
    listAll(lambda.versions(name), 'Versions')
      .then(setVersions)
      .catch(() => setVersions([]));
  useEffect(() => {
    load();
  }, [name]);
  const publish = async (e) => {
    e.preventDefault();
    const v = await run(() => post(lambda.versions(name), description ? { Description: description } : {}));
    if (v) {
      setDescription('');
      await load();
      // The status after the list, so a screen reader hears it last.
      run(async () => v, `Published version ${v.Version}.`);
    }
  };
  return (
    <div class="stack">
      <form class="card form" onSubmit={publish} aria-labelledby="pub-title">
        <h2 id="pub-title">Publish a version</h2>
        <p class="muted">A version is an immutable snapshot of $LATEST's code and configuration.</p>
        <Field id="pub-description" label="Version description (optional)">
          <input id="pub-description" maxLength={256} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
        </Field>
        <div class="actions">
          <button class="btn primary" type="submit" disabled={busy} id="publish-version">
            Publish new version
          </button>
        </div>
        <Status msg={msg} />
      </form>
      <section class="card" aria-labelledby="ver-title">
        <h2 id="ver-title">Versions</h2>
        <div class="table-wrap">
          <table class="data" id="versions-table">
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Description</th>
                <th scope="col">Last modified</th>
                <th scope="col">Code SHA-256</th>
              </tr>
            </thead>
            <tbody>
              {!versions && <SkeletonRows cols={4} rows={2} />}
              {(versions || []).map((v) => (
                <tr key={v.Version} data-version={v.Version}>
                  <th scope="row">{v.Version}</th>
                  <td>{v.Description || '—'}</td>
                  <td>{formatTime(v.LastModified)}</td>
                  <td class="mono ellipsis" title={v.CodeSha256}>
                    {(v.CodeSha256 || '').slice(0, 16)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
    </div>
  );
}
