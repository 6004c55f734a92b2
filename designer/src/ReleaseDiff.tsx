/**
 * The difference between two versions of a flow (./diff.ts), drawn per logic: nodes added, removed,
 * changed (each changed value, old → new), the moved-only nodes collapsed. `DiffView` draws a diff;
 * `ReleaseDiff` compares a release with the active one, the development copy or another release.
 */
import { useEffect, useState } from 'react';
import type { Api, FlowDetail } from './api';
import { diffDocs, showValue, type DocDiff } from './diff';

export function DiffView({ diff, before, after }: { diff: DocDiff; before: string; after: string }) {
  if (diff.same)
    return (
      <p className="hint" data-testid="diff-same">
        {before} and {after} are the same.
      </p>
    );
  const logics = diff.logics.filter((l) => l.status !== 'same');
  return (
    <div className="diff-view" data-testid="diff-view">
      <p className="hint">
        from <strong>{before}</strong> to <strong>{after}</strong>
        {diff.onlyMoves ? ' · only node positions changed' : ''}
      </p>
      {logics.map((l) => (
        <section key={l.id} className={`diff-logic diff-${l.status}`} data-testid={`diff-logic-${l.id}`}>
          <h4>
            logic {l.id} “{l.name}” {l.status === 'added' || l.status === 'removed' ? <span className={`pill diff-${l.status}`}>{l.status}</span> : null}
          </h4>
          {l.status === 'changed' && (
            <ul>
              {l.logicChanges.map((c) => (
                <li key={`l-${c.pointer}`} className="diff-changed">
                  <code>{c.pointer}</code> <del>{showValue(c.before)}</del> → <ins>{showValue(c.after)}</ins>
                </li>
              ))}
              {l.added.map((n) => (
                <li key={`a-${n.id}`} className="diff-added" data-testid="diff-added">
                  + node {n.id} “{n.name}” <span className="hint">{n.type}</span>
                </li>
              ))}
              {l.removed.map((n) => (
                <li key={`r-${n.id}`} className="diff-removed" data-testid="diff-removed">
                  − node {n.id} “{n.name}” <span className="hint">{n.type}</span>
                </li>
              ))}
              {l.changed.map((n) => (
                <li key={`c-${n.id}`} className="diff-changed" data-testid="diff-changed">
                  ~ node {n.id} “{n.name}”{' '}
                  <span className="hint">
                    {n.type}
                    {n.moved ? ' · moved' : ''}
                  </span>
                  <ul>
                    {n.changes.map((c) => (
                      <li key={c.pointer} data-testid="diff-value">
                        <code>{c.pointer}</code> <del>{showValue(c.before)}</del> → <ins>{showValue(c.after)}</ins>
                      </li>
                    ))}
                  </ul>
                </li>
              ))}
              {l.moved.length > 0 && (
                <li className="hint" data-testid="diff-moved">
                  <details>
                    <summary>{l.moved.length} node(s) only moved</summary>
                    {l.moved.map((n) => `${n.id} “${n.name}”`).join(', ')}
                  </details>
                </li>
              )}
            </ul>
          )}
        </section>
      ))}
    </div>
  );
}

type Side = number | 'development';
const label = (v: Side) => (v === 'development' ? 'development copy' : `v${v}`);

/** A release of `flow` against a base chosen in the view (default: the active release, else development). */
export function ReleaseDiff({ api, flow, detail, version }: { api: Api; flow: string; detail: FlowDetail; version: number }) {
  const active = detail.active?.version;
  const [base, setBase] = useState<Side>(active !== undefined && active !== version ? active : 'development');
  const [diff, setDiff] = useState<DocDiff | string | null>(null);
  useEffect(() => {
    let live = true;
    setDiff(null);
    Promise.all([api.exportText(flow, base), api.exportText(flow, version)])
      .then(([a, b]) => live && setDiff(diffDocs(JSON.parse(a), JSON.parse(b))))
      .catch((e: Error) => live && setDiff(e.message));
    return () => {
      live = false;
    };
  }, [api, flow, base, version]);
  return (
    <div className="release-diff" data-testid="release-diff">
      <label>
        compare v{version} with{' '}
        <select
          value={String(base)}
          onChange={(e) => setBase(e.target.value === 'development' ? 'development' : Number(e.target.value))}
          data-testid="diff-base"
        >
          <option value="development">the development copy</option>
          {detail.releases
            .filter((r) => r.version !== version)
            .map((r) => (
              <option key={r.version} value={r.version}>
                v{r.version}
                {r.version === active ? ' (active)' : ''}
              </option>
            ))}
        </select>
      </label>
      {diff === null ? (
        <p className="hint">loading…</p>
      ) : typeof diff === 'string' ? (
        <p className="error">{diff}</p>
      ) : (
        <DiffView diff={diff} before={label(base)} after={`v${version}`} />
      )}
    </div>
  );
}
