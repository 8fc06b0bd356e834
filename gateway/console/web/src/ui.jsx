// Shared bits of UI.
import { useState, useCallback } from 'preact/hooks';

export function SkeletonRows({ cols, rows = 3 }) {
  const r = [];
  for (let i = 0; i < rows; i++) {
    const c = [];
    for (let j = 0; j < cols; j++) {
      c.push(
        <td key={j}>
          <span class="skeleton" />
        </td>,
      );
    }
    r.push(
      <tr key={i} aria-hidden="true" class="skeleton-row">
        {c}
      </tr>,
    );
  }
  return r;
}

export function StateBadge({ state }) {
  const s = state || 'Unknown';
  const kind = { Active: 'ok', Enabled: 'ok', Pending: 'warn', Enabling: 'warn', Disabling: 'warn', Creating: 'warn', Updating: 'warn', Failed: 'bad', Inactive: 'muted', Disabled: 'muted' }[s] || 'muted';
  return <span class={`state ${kind}`}>{s}</span>;
}

// Status is a polite live region with a fixed height: messages after an
// action, errors in the alert colour.
export function Status({ msg }) {
  return (
    <p class={`status ${msg && msg.error ? 'error' : ''}`} role="status" aria-live="polite">
      {msg ? msg.text : ''}
    </p>
  );
}

// useAction runs an async action, recording its outcome for <Status>.
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [msg, setMsg] = useState(null);
  const run = useCallback(async (fn, okText) => {
    setBusy(true);
    setMsg(null);
    try {
      const r = await fn();
      if (okText) setMsg({ text: okText });
      return r;
    } catch (e) {
      setMsg({ error: true, text: e.type ? `${e.type}: ${e.message}` : e.message });
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, msg, run, setMsg };
}

// Field is a labelled input row.
export function Field({ id, label, hint, children }) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {children}
      {hint && (
        <small class="hint" id={`${id}-hint`}>
          {hint}
        </small>
      )}
    </div>
  );
}
