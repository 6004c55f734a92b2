/** Which variables are secrets (per node type, from the `x-secret` declarations), and the redaction of CDs and traces. */
import { readFileSync } from 'fs';
import path from 'path';
import { loadSlidText } from '../../../engine/load';
import type { NodeType } from '../../../engine/node-type';
import { NodeRegistry } from '../../../engine/registry';
import { REDACTED, isSecretVariable, redactCallDescriptorJson, redactTrace, redactValue, secretVariables } from '../../../engine/secrets';
import type { SlidDocument } from '../../../engine/slid';
import type { LogPort } from '../../../engine/ports';
import { NODE_TYPES } from '../../../nodes';
import { testContext } from '../../support/context';
import { compile, docOf, registry, runNodes, setVars, start, type NodeSpec } from './helpers';

const secretsOf = (nodes: NodeSpec[]) => [...(compile(docOf(nodes)).secrets ?? [])].sort();
const query = (id: number, fields: Array<[string, string]>, extra: Record<string, unknown> = {}): NodeSpec => [
  id,
  'query.queryDatabaseGeneric',
  { tables: ['registration.customers'], fields: fields.map(([field, storeInto]) => ({ field, storeInto })), ifRecordFound: 9, ifnoRecordFound: 9, ...extra },
];
const end: NodeSpec = [9, 'output.reply', { code: 200 }];

describe('secret variables, per node type', () => {
  test('database query: a variable stored from a password / HA1 / secret / token column', () => {
    expect(
      secretsOf([
        start(1),
        query(1, [
          ['customers.password', 'pw'],
          ['customers.name', 'customer_name'],
          ['customers.ha1', 'h'],
          ['customers.sip_secret', 's'],
          ['customers.api_token', 't'],
          ['customers.PassWd', 'p2'],
          ['customers.username', 'u'],
        ]),
        end,
      ]),
    ).toEqual(['h', 'p2', 'pw', 's', 't']);
  });

  test('database query: only the column name counts, not the table or schema name', () => {
    expect(
      secretsOf([
        start(1),
        [
          1,
          'query.queryDatabaseGeneric',
          {
            tables: ['tokens'],
            fields: [
              { field: 'tokens.id', storeInto: 'tid' },
              { field: 'tokens.owner', storeInto: 'owner' },
            ],
            ifRecordFound: 9,
            ifnoRecordFound: 9,
          },
        ],
        end,
      ]),
    ).toEqual([]);
  });

  test('authenticate: the variable it uses as its password, even one only the front end brings', () => {
    expect(secretsOf([start(1), [1, 'output.nit.registrar.authenticate', { password: 'pin' }], end])).toEqual(['pin']);
  });

  test('extract SIP header: a variable filled from Authorization or Proxy-Authorization (any case)', () => {
    expect(
      secretsOf([
        start(1),
        [
          1,
          'analysis.extractSipHeader',
          {
            extractions: [
              { header: 'Authorization', storeInto: 'creds' },
              { header: 'proxy-AUTHORIZATION', part: 'param', param: 'response', storeInto: 'resp' },
              { header: 'From', part: 'user', storeInto: 'caller' },
            ],
            next: 9,
          },
        ],
        end,
      ]),
    ).toEqual(['creds', 'resp']);
  });

  test('set variables and digits manipulation: a copy of a secret is a secret (by name or [placeholder]), to a fixed point', () => {
    // written in reverse order: the copy of the copy comes first in the file
    expect(
      secretsOf([
        start(1),
        setVars(
          3,
          [
            { variable: 'copy2', value: 'copy1' },
            { variable: 'unrelated', value: 'customer_name' },
          ],
          4,
        ),
        setVars(2, [{ variable: 'copy1', value: 'tmpl' }], 3),
        setVars(
          5,
          [
            { variable: 'tmpl', value: 'x-[pw]-y' },
            { variable: 'customer_name', value: 'ACME' },
          ],
          2,
        ),
        [4, 'action.digitsManipulation', { variable: 'copy2', storeInto: 'digits', next: 6 }],
        [6, 'action.digitsManipulation', { variable: 'customer_name', storeInto: 'plainDigits', next: 9 }],
        query(1, [['customers.password', 'pw']], { ifRecordFound: 5, ifnoRecordFound: 9 }),
        end,
      ]),
    ).toEqual(['copy1', 'copy2', 'digits', 'pw', 'tmpl']);
  });

  test('by its own name: any variable whose name matches /pass|secret|ha1|token/i', () => {
    expect(
      secretsOf([
        start(1),
        setVars(
          1,
          [
            { variable: 'sipPassword', value: 'x' },
            { variable: 'myToken', value: 'y' },
            { variable: 'plain', value: 'z' },
          ],
          9,
        ),
        end,
      ]),
    ).toEqual(['myToken', 'sipPassword']);
    expect(isSecretVariable('trunk_secret')).toBe(true);
    expect(isSecretVariable('authUsername')).toBe(false);
  });

  test('archived nodes declare nothing', () => {
    const doc = docOf([start(9), [1, 'output.nit.registrar.authenticate', { password: 'pin' }, { archived: true }], end]) as unknown as SlidDocument;
    expect([...secretVariables(doc, registry)]).toEqual([]);
  });

  test('the shipped registration logic: exactly its password variable', () => {
    const text = readFileSync(path.join(__dirname, '../../../flows/registration.slid'), 'utf8');
    const r = loadSlidText(text, 'registration.slid', registry);
    expect([...(r.service!.secrets ?? [])]).toEqual(['password']);
  });

  test('a new node type declares its secrets with `x-secret` in its values schema (no engine change)', () => {
    const vault: NodeType = {
      type: 'query.vault',
      title: 'Vault',
      category: 'query',
      description: 'reads a key',
      valuesSchema: {
        type: 'object',
        required: ['storeInto'],
        properties: { storeInto: { type: 'string', 'x-writes': true, 'x-secret': true }, next: { type: ['integer', 'string', 'null'], 'x-exit': true } },
      },
      compile: (_v, c) => {
        const next = c.exit('next');
        return () => next;
      },
    };
    const reg = new NodeRegistry([...NODE_TYPES, vault]);
    const doc = docOf([start(1), [1, 'query.vault', { storeInto: 'apiKey', next: 9 }], end]) as unknown as SlidDocument;
    expect([...secretVariables(doc, reg)]).toEqual(['apiKey']);
    // and every built-in schema still compiles under ajv strict mode with the annotation
    expect(reg.get('query.vault')).toBeDefined();
  });
});

describe('redaction of answers', () => {
  const secrets = new Set(['pw']);

  test('call descriptor: secret variables, credentials headers, digest credentials anywhere; the rest untouched', () => {
    const json = {
      pw: '123456',
      customer_name: 'ACME',
      authUsername: 'francesco',
      nothing: null,
      copied: 'Digest username="a", response="0123abcd"',
      records: [{ pw: 's3', name: 'n', password: 'p' }],
      headers: { authorization: ['Digest username="a", response="0123abcd"'], 'proxy-authorization': ['x', 'y'], from: ['<sip:a@b>'] },
    };
    const out = redactCallDescriptorJson(json, secrets);
    expect(out).toEqual({
      pw: REDACTED,
      customer_name: 'ACME',
      authUsername: 'francesco',
      nothing: null,
      copied: REDACTED,
      records: [{ pw: REDACTED, name: 'n', password: REDACTED }],
      headers: { authorization: [REDACTED], 'proxy-authorization': [REDACTED, REDACTED], from: ['<sip:a@b>'] },
    });
    expect(json.pw).toBe('123456'); // a copy: the run's CD is left alone
    expect(JSON.stringify(out)).not.toMatch(/123456|0123abcd|s3"/);
  });

  test('a null secret stays null (it tells "not found" without telling anything else)', () => {
    expect(redactValue('pw', null, secrets)).toBeNull();
    expect(redactValue('password', 'x')).toBe(REDACTED);
  });

  test('trace: the `set` of each step', () => {
    const trace = [
      { step: 1, logic: '1', nodeId: '1', nodeName: 'q', type: 't', exit: 'next', set: { pw: 'x', customer_name: 'ACME' } },
      { step: 2, logic: '1', nodeId: '2', nodeName: 'r', type: 't', exit: 'reply' },
    ];
    expect(redactTrace(trace, secrets)).toEqual([{ ...trace[0], set: { pw: REDACTED, customer_name: 'ACME' } }, trace[1]]);
  });
});

describe('log node', () => {
  test('a message reading a secret variable logs the placeholder, never the value', async () => {
    const lines: string[] = [];
    const log: LogPort = {
      log: (_level, message) => {
        lines.push(message);
      },
    };
    await runNodes(
      [
        start(1),
        setVars(
          1,
          [
            { variable: 'secretPin', value: '987654' },
            { variable: 'who', value: 'alice' },
          ],
          2,
        ),
        [2, 'action.log', { message: 'pin of [who] is [secretPin]', next: 3 }],
        [3, 'action.log', { message: 'secretPin', next: 9 }],
        end,
      ],
      {},
      { ...testContext(), log },
    );
    expect(lines).toEqual([`pin of alice is ${REDACTED}`, REDACTED]);
  });
});
