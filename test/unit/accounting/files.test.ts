/**
 * Issue 15, accounting: the CSV export (RFC 4180 quoting, formula guard) and the JSON-lines sink
 * (one record per line, CR/LF escaped, size rotation keeping N files).
 */
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cdrLine, cdrsCsv, csvCell, jsonLinesSink, type CdrJson, type CdrRecord } from '../../../services/accounting';

const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);
const record = (i: number, over: Partial<CdrRecord> = {}): CdrRecord => ({
  kind: 'stop',
  callId: `call-${i}`,
  at: T0 + 60_000,
  setupAt: T0,
  connectAt: T0 + 1000,
  endAt: T0 + 60_000,
  duration: 59,
  calling: '+3225551234',
  called: '+3225559999',
  source: '192.0.2.7:5060',
  destination: 'sip:gw1.example.com',
  status: 200,
  reason: 'OK',
  logic: 'route',
  variables: { customer: 'acme' },
  fields: { plan: 'gold' },
  ...over,
});

const EVIL = '"Evil, Inc"\r\n=cmd|\' /C calc\'!A0';

describe('CSV export', () => {
  test('RFC 4180 quoting and the formula guard', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('a\r\nb')).toBe('"a\r\nb"');
    for (const c of ['=', '+', '-', '@', '\t', '\r']) expect(csvCell(`${c}1+1`).replace(/^"/, '')).toMatch(/^'/);
    expect(csvCell('=HYPERLINK("http://x")')).toBe('"\'=HYPERLINK(""http://x"")"');
    expect(csvCell(-5)).toBe('-5');
    expect(csvCell(null)).toBe('');
  });

  test('rows: standard columns, variables and custom fields as columns; an evil display name is one quoted, guarded cell', () => {
    const row: CdrJson = {
      ...record(1),
      id: 1,
      at: new Date(T0).toISOString(),
      setupAt: new Date(T0).toISOString(),
      connectAt: null,
      endAt: null,
      calling: EVIL,
      fields: { note: '@SUM(A1)' },
    } as CdrJson;
    const csv = cdrsCsv([row], ['customer', 'trunk']);
    const lines = csv.split('\r\n');
    expect(lines[0]).toBe(
      'id,kind,callId,at,setupAt,connectAt,endAt,duration,calling,called,source,destination,status,reason,logic,variables.customer,variables.trunk,fields.note',
    );
    // one quoted cell (the CR LF inside it), the next cell starts right after it
    expect(csv).toContain(`,"""Evil, Inc""\r\n=cmd|' /C calc'!A0",'+3225559999,`);
    expect(cdrsCsv([{ ...row, calling: "=cmd|' /C calc'!A0" }])).toContain(`,'=cmd|' /C calc'!A0,`);
    expect(csv).toContain(",acme,,'@SUM(A1)\r\n");
    expect(csv.endsWith('\r\n')).toBe(true);
  });
});

describe('JSON-lines sink', () => {
  test('one record per line; CR LF and quotes escaped, so a line is one record', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-cdr-'));
    const file = path.join(dir, 'sub', 'cdrs.jsonl');
    const sink = jsonLinesSink({ file, rotateBytes: 1 << 20, keep: 2 });
    await sink.write([record(1, { calling: EVIL }), record(2)]);
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('');
    expect(JSON.parse(lines[0])).toMatchObject({ callId: 'call-1', calling: EVIL, setupAt: new Date(T0).toISOString(), variables: { customer: 'acme' } });
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  test('rotation by size keeps N files, a batch never split, nothing lost within the kept files', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-cdr-'));
    const file = path.join(dir, 'cdrs.jsonl');
    const lineBytes = Buffer.byteLength(cdrLine(record(10)));
    const rotateBytes = lineBytes * 5 + 10; // 5 records per file
    const sink = jsonLinesSink({ file, rotateBytes, keep: 2 });
    for (let i = 0; i < 6; i++) await sink.write([10 + 2 * i, 11 + 2 * i].map((n) => record(n))); // 12 records, 2 per batch
    expect(readdirSync(dir).sort()).toEqual(['cdrs.jsonl', 'cdrs.jsonl.1', 'cdrs.jsonl.2']);
    const ids = (f: string) =>
      readFileSync(path.join(dir, f), 'utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { callId: string }).callId);
    expect(ids('cdrs.jsonl.2')).toEqual(['call-10', 'call-11', 'call-12', 'call-13']);
    expect(ids('cdrs.jsonl.1')).toEqual(['call-14', 'call-15', 'call-16', 'call-17']);
    expect(ids('cdrs.jsonl')).toEqual(['call-18', 'call-19', 'call-20', 'call-21']);
    for (const f of readdirSync(dir)) expect(statSync(path.join(dir, f)).size).toBeLessThanOrEqual(rotateBytes);
    // one more rotation: the oldest kept file goes
    for (let i = 0; i < 2; i++) await sink.write([record(30 + 2 * i), record(31 + 2 * i)]);
    expect(readdirSync(dir).sort()).toEqual(['cdrs.jsonl', 'cdrs.jsonl.1', 'cdrs.jsonl.2']);
    expect(ids('cdrs.jsonl.2')).toEqual(['call-14', 'call-15', 'call-16', 'call-17']);
  });

  test('a restarted sink continues the existing file and rotates on its size', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-cdr-'));
    const file = path.join(dir, 'cdrs.jsonl');
    const rotateBytes = Buffer.byteLength(cdrLine(record(10))) * 3 + 10;
    await jsonLinesSink({ file, rotateBytes, keep: 1 }).write([record(10), record(11)]);
    const again = jsonLinesSink({ file, rotateBytes, keep: 1 });
    await again.write([record(12), record(13)]);
    expect(readdirSync(dir).sort()).toEqual(['cdrs.jsonl', 'cdrs.jsonl.1']);
    expect(readFileSync(`${file}.1`, 'utf8').trim().split('\n')).toHaveLength(2);
  });
});
