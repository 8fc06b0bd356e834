import { useState } from 'preact/hooks';
import { consoleApi, post } from '../api.js';

// Login signs in with an access key of the gateway's config; the gateway
// answers with a session cookie (HttpOnly) and the CSRF token for writes.
export function Login({ onLogin }) {
  const [keyId, setKeyId] = useState('');
  const [secret, setSecret] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      const s = await post(consoleApi.login, { accessKeyId: keyId.trim(), secretAccessKey: secret });
      setSecret('');
      onLogin(s);
    } catch (err) {
      setError(err.status === 401 ? 'Those keys were not accepted.' : err.message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="card login" aria-labelledby="login-title">
      <h1 id="login-title">Sign in</h1>
      <p class="muted">Use an access key from this gateway's configuration.</p>
      <form class="form" onSubmit={submit}>
        <label for="login-key">Access key ID</label>
        <input id="login-key" name="accessKeyId" autocomplete="username" required value={keyId} onInput={(e) => setKeyId(e.currentTarget.value)} />
        <label for="login-secret">Secret access key</label>
        <input
          id="login-secret"
          name="secretAccessKey"
          type="password"
          autocomplete="current-password"
          required
          value={secret}
          onInput={(e) => setSecret(e.currentTarget.value)}
        />
        <p class="alert" role="alert" aria-live="assertive">
          {error}
        </p>
        <button class="btn primary" type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </section>
  );
}
