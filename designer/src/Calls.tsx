/**
 * The "Calls" view: what real calls did, from the call history (GET /api/v1/calls, recorded by
 * the SIP front end as history.mode says). A search form and the list of calls, newest first; the
 * debug filter (numbers and AoRs recorded whatever the mode) shown and edited; a call opened as a
 * ladder diagram (./Ladder.tsx) with the full text of the message clicked, and its logic runs,
 * each of which opens in the editor with its path (App: onOpenRun) or in the simulator (onReplay).
 *
 * Everything a message or a call carries is shown as React text: a header holding markup stays
 * text. Redacted values ("[redacted]": digest responses, secret variables) are marked as such.
 */
import { useCallback, useEffect, useState } from 'react';
import { ApiFailure, REDACTED, type Api, type CallDetail, type CallOutcome, type CallQuery, type CallSummary } from './api';
import { Ladder } from './Ladder';
import { formatOffset } from './ladder';

const OUTCOMES: CallOutcome[] = ['success', 'redirect', 'challenged', 'failed'];
const DEFAULT_LIMIT = 100;

interface Props {
  api: Api;
  /** Whether the view is shown (the list loads when it first is). */
  active: boolean;
  onOpenRun(call: CallDetail, run: number): void;
  onReplay(call: CallDetail, run: number): void;
}

interface Form {
  callId: string;
  number: string;
  aor: string;
  /** `datetime-local` values, this browser's zone. */
  from: string;
  to: string;
  outcome: CallOutcome | '';
  limit: string;
}

const EMPTY: Form = { callId: '', number: '', aor: '', from: '', to: '', outcome: '', limit: String(DEFAULT_LIMIT) };

function toQuery(f: Form): CallQuery {
  const instant = (v: string, what: string) => {
    if (!v) return undefined;
    const d = new Date(v);
    if (Number.isNaN(d.getTime())) throw new RangeError(`${what}: not a date and time`);
    return d.toISOString();
  };
  return {
    callId: f.callId.trim(),
    number: f.number.trim(),
    aor: f.aor.trim(),
    from: instant(f.from, 'from'),
    to: instant(f.to, 'to'),
    outcome: f.outcome,
    limit: f.limit ? Number(f.limit) : undefined,
  };
}

const when = (iso: string) => new Date(iso).toLocaleString();
const message = (e: unknown) => (e instanceof ApiFailure || e instanceof RangeError ? e.message : String(e));

/** Text with every "[redacted]" marked: plain React text, whatever it holds. */
export function RedactedText({ text }: { text: string }) {
  const parts = text.split(REDACTED);
  return (
    <>
      {parts.map((p, i) => (
        <span key={i}>
          {p}
          {i < parts.length - 1 && (
            <mark className="redacted" data-testid="message-redacted" title="redacted when recorded: the history never keeps secrets">
              {REDACTED}
            </mark>
          )}
        </span>
      ))}
    </>
  );
}

export function Calls({ api, active, onOpenRun, onReplay }: Props) {
  const [form, setForm] = useState<Form>(EMPTY);
  const [calls, setCalls] = useState<CallSummary[] | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [detail, setDetail] = useState<CallDetail | null>(null);
  const [picked, setPicked] = useState<number | null>(null);
  const [filter, setFilter] = useState<string[] | null>(null);
  const [filterText, setFilterText] = useState('');
  const [filterNote, setFilterNote] = useState<string | null>(null);

  const search = useCallback(
    async (f: Form) => {
      setLoading(true);
      setError(null);
      try {
        const list = await api.calls(toQuery(f));
        setCalls([...list].sort((a, b) => b.startedAt.localeCompare(a.startedAt)));
      } catch (e) {
        setError(message(e));
      } finally {
        setLoading(false);
      }
    },
    [api],
  );

  const loadFilter = useCallback(async () => {
    try {
      const f = await api.debugFilter();
      setFilter(f.numbers);
      setFilterText(f.numbers.join('\n'));
    } catch (e) {
      setFilterNote(`debug filter: ${message(e)}`);
    }
  }, [api]);

  const [loaded, setLoaded] = useState(false);
  useEffect(() => {
    if (!active || loaded) return;
    setLoaded(true);
    void search(EMPTY);
    void loadFilter();
  }, [active, loaded, search, loadFilter]);

  async function openCall(callId: string) {
    setError(null);
    try {
      setDetail(await api.call(callId));
      setPicked(null);
    } catch (e) {
      setError(message(e));
    }
  }

  async function saveFilter() {
    const numbers = filterText
      .split(/[\s,]+/)
      .map((n) => n.trim())
      .filter(Boolean);
    try {
      const f = await api.setDebugFilter(numbers);
      setFilter(f.numbers);
      setFilterText(f.numbers.join('\n'));
      setFilterNote(f.numbers.length ? `recording ${f.numbers.length} number(s) / AoR(s) whatever the mode` : 'debug filter off');
    } catch (e) {
      setFilterNote(`debug filter not saved: ${message(e)}`);
    }
  }

  const set = (k: keyof Form) => (e: { target: { value: string } }) => setForm((f) => ({ ...f, [k]: e.target.value }));
  const m = detail && picked !== null ? detail.messages[picked] : null;

  return (
    <div className="calls" data-testid="calls-view">
      <section className="calls-left">
        <form
          className="calls-search"
          data-testid="calls-search"
          onSubmit={(e) => {
            e.preventDefault();
            void search(form);
          }}
        >
          <label className="field">
            Call-ID
            <input value={form.callId} onChange={set('callId')} data-testid="calls-callId" />
          </label>
          <label className="field">
            number
            <input value={form.number} onChange={set('number')} data-testid="calls-number" placeholder="calling or called" />
          </label>
          <label className="field">
            AoR
            <input value={form.aor} onChange={set('aor')} data-testid="calls-aor" placeholder="user@domain" />
          </label>
          <label className="field">
            from
            <input type="datetime-local" step={1} value={form.from} onChange={set('from')} data-testid="calls-from" />
          </label>
          <label className="field">
            to
            <input type="datetime-local" step={1} value={form.to} onChange={set('to')} data-testid="calls-to" />
          </label>
          <label className="field">
            outcome
            <select value={form.outcome} onChange={set('outcome')} data-testid="calls-outcome">
              <option value="">any</option>
              {OUTCOMES.map((o) => (
                <option key={o} value={o}>
                  {o}
                </option>
              ))}
            </select>
          </label>
          <label className="field">
            limit
            <input type="number" min={1} value={form.limit} onChange={set('limit')} data-testid="calls-limit" />
          </label>
          <div className="row">
            <button className="primary" type="submit" disabled={loading} data-testid="calls-refresh">
              {loading ? 'Searching…' : 'Search / refresh'}
            </button>
            <button
              type="button"
              onClick={() => {
                setForm(EMPTY);
                void search(EMPTY);
              }}
            >
              Clear
            </button>
          </div>
        </form>
        {error && (
          <div className="error-box" data-testid="calls-error">
            {error}
          </div>
        )}
        <table className="calls-list" data-testid="calls-list">
          <thead>
            <tr>
              <th>time</th>
              <th>method</th>
              <th>calling → called / AoR</th>
              <th>outcome</th>
              <th>status</th>
              <th>logic</th>
              <th title="messages">msgs</th>
            </tr>
          </thead>
          <tbody>
            {(calls ?? []).map((c) => (
              <tr
                key={c.callId}
                className={`call-row${detail?.callId === c.callId ? ' on' : ''}`}
                data-testid="call-row"
                data-call-id={c.callId}
                tabIndex={0}
                title={`Call-ID ${c.callId} from ${c.source}`}
                onClick={() => void openCall(c.callId)}
                onKeyDown={(e) => {
                  if (e.key === 'Enter' || e.key === ' ') {
                    e.preventDefault();
                    void openCall(c.callId);
                  }
                }}
              >
                <td>{when(c.startedAt)}</td>
                <td>{c.method}</td>
                <td>{c.method === 'REGISTER' || (c.calling === null && c.called === null) ? (c.aor ?? '') : `${c.calling ?? '?'} → ${c.called ?? '?'}`}</td>
                <td>
                  <span className={`pill call-${c.outcome}`}>{c.outcome}</span>
                </td>
                <td>{c.status ?? '—'}</td>
                <td>{c.logic ?? '—'}</td>
                <td>{c.messageCount}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {calls && calls.length === 0 && <p className="hint">no recorded call matches (history.mode decides what is recorded)</p>}
        <section className="debug-filter" data-testid="debug-filter">
          <div className="panel-title">
            Debug filter <span className="hint">numbers or AoRs recorded whatever history.mode says, one per line</span>
          </div>
          <div className="hint" data-testid="debug-filter-current">
            {filter === null ? '…' : filter.length ? `on: ${filter.join(', ')}` : 'off'}
          </div>
          <textarea className="mono" rows={3} value={filterText} onChange={(e) => setFilterText(e.target.value)} data-testid="debug-filter-text" />
          <div className="row">
            <button onClick={() => void saveFilter()} data-testid="debug-filter-save">
              Save filter
            </button>
            {filterNote && <span className="hint">{filterNote}</span>}
          </div>
        </section>
      </section>

      <section className="calls-detail" data-testid="call-detail">
        {!detail ? (
          <p className="hint pad">Open a call to see its SIP messages and logic runs.</p>
        ) : (
          <>
            <div className="call-head">
              <strong>{detail.method}</strong> <span className="mono">{detail.callId}</span>{' '}
              <span className={`pill call-${detail.outcome}`}>{detail.outcome}</span> <span className="hint">{when(detail.startedAt)}</span>
              {detail.droppedMessages > 0 && <span className="hint"> · {detail.droppedMessages} more message(s) seen but not kept</span>}
            </div>
            <Ladder messages={detail.messages} selected={picked} onSelect={setPicked} />
            {m && (
              <div className="message-view" data-testid="message-view">
                <div className="section">
                  {m.direction === 'in' ? 'received' : 'sent'} over {m.transport} · {m.src} → {m.dst} · {new Date(m.at).toLocaleTimeString()} (
                  {formatOffset(m.at - detail.messages[0].at)}){m.truncated && <strong> · cut at history.maxMessageBytes</strong>}
                </div>
                <pre className="mono message-text" data-testid="message-text">
                  <RedactedText text={m.text} />
                </pre>
              </div>
            )}
            <div className="section">Logic runs</div>
            {detail.runs.length === 0 ? (
              <p className="hint">no logic ran for this call (or its runs were not recorded)</p>
            ) : (
              <table className="runs-list" data-testid="runs-list">
                <thead>
                  <tr>
                    <th>method</th>
                    <th>logic</th>
                    <th>outcome</th>
                    <th>status</th>
                    <th>duration</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {detail.runs.map((r, i) => (
                    <tr key={i} data-testid="run-row">
                      <td>{r.method}</td>
                      <td>
                        {r.logic} <span className="hint">{r.flow ? `${r.flow} · logic ${r.logicId}` : `logic ${r.logicId}`}</span>
                      </td>
                      <td>
                        <span className={`pill outcome-${r.outcome}`}>{r.outcome}</span>
                        {r.where && <span className="hint"> at {r.where}</span>}
                      </td>
                      <td>{r.status ?? '—'}</td>
                      <td>{r.durationMs < 10 ? r.durationMs.toFixed(2) : Math.round(r.durationMs)} ms</td>
                      <td className="nowrap">
                        <button className="small" onClick={() => onOpenRun(detail, i)} data-testid="run-open" title="open the flow with this run's path">
                          Open path
                        </button>{' '}
                        <button
                          className="small"
                          onClick={() => onReplay(detail, i)}
                          data-testid="run-replay"
                          title="copy its call descriptor into the simulator"
                        >
                          Replay in simulator
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </>
        )}
      </section>
    </div>
  );
}
