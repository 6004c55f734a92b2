/**
 * Mutation fuzzing of the parser: 120,000 inputs derived from valid REGISTER and INVITE
 * messages (and the RFC 4475 corpus when present) by byte flips, truncations, duplications,
 * insertions of CR/LF/NUL/quotes/angle brackets, header deletion/duplication and huge numbers.
 * The PRNG is seeded: a failure prints the seed and iteration, and reruns identically
 * (FUZZ_SEED=<n> to try other seeds, FUZZ_N=<n> for more iterations).
 * Properties: parseMessage never throws and never takes its internal-error branch; results are
 * ok- or error-shaped; an accepted message serializes, and the serialized form parses again
 * with the same start line and header names; the checks never throw on accepted messages.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseMessage, type ParseResult } from '../../../sip/parser';
import { checkRequest, checkResponse, isRequest } from '../../../sip/message';
import { buildResponse, serializeMessage } from '../../../sip/serializer';

const SEED = Number(process.env.FUZZ_SEED ?? 4475);
const N = Number(process.env.FUZZ_N ?? 120000);

/** mulberry32: tiny, fast, good enough for mutation choices. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const REGISTER = [
  'REGISTER sip:example.com SIP/2.0',
  'Via: SIP/2.0/UDP [2001:db8::10]:5060;branch=z9hG4bK776asdhds;rport',
  'Max-Forwards: 70',
  'From: "Alice \\"A\\"" <sip:alice@example.com>;tag=456248',
  'To: <sip:alice@example.com>',
  'Call-ID: 843817637684230@998sdasdh09',
  'CSeq: 1826 REGISTER',
  'Contact: <sip:alice@192.0.2.10:5060;transport=udp>;expires=3600, "B" <sip:b@h>;q=0.5',
  'Authorization: Digest username="alice", realm="example.com", nonce="abc", uri="sip:example.com", response="0123"',
  'Expires: 3600',
  'l: 0',
  '',
  '',
].join('\r\n');
const INVITE = [
  'INVITE sip:bob@biloxi.example.com;user=phone SIP/2.0',
  'v: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9, SIP/2.0/UDP 10.0.0.1;received=10.0.0.2',
  'Max-Forwards: 70',
  'f: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl',
  't: Bob <sip:bob@biloxi.example.com>',
  'i: 3848276298220188511@atlanta.example.com',
  'CSeq: 1 INVITE',
  'Route: <sip:p1.example.com;lr>,<sip:p2.example.com;lr>',
  'm: <sip:alice@client.atlanta.example.com;transport=tcp>',
  'Date: Sat, 15 Oct 2005 04:44:56 GMT',
  'c: application/sdp',
  'Content-Length: 31',
  '',
  'v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\n',
].join('\r\n');

function seeds(): Buffer[] {
  const out = [Buffer.from(REGISTER), Buffer.from(INVITE)];
  const dir = path.resolve(__dirname, '../../../../shared/conformance/rfc4475');
  if (fs.existsSync(dir)) for (const f of fs.readdirSync(dir).sort()) if (f.endsWith('.dat')) out.push(fs.readFileSync(path.join(dir, f)));
  return out;
}

const SPECIAL = [13, 10, 0, 34, 60, 62, 44, 59, 58, 32, 9, 92, 37, 64, 0xff, 0xc3, 0x7f];
const HUGE = ['99999999999999999999999', '-1', '4294967296', '4294967295', '0', '65536', '2147483648', '1e9', ''];

function mutate(src: Buffer, rnd: () => number): Buffer {
  let b = Buffer.from(src);
  const ops = 1 + Math.floor(rnd() * 4);
  const at = (len: number) => Math.floor(rnd() * (len + 1));
  for (let k = 0; k < ops; k++) {
    switch (Math.floor(rnd() * 10)) {
      case 0: {
        if (b.length) b[at(b.length - 1)] = Math.floor(rnd() * 256);
        break;
      } // byte replace
      case 1: {
        if (b.length) {
          const i = at(b.length - 1);
          b[i] ^= 1 << Math.floor(rnd() * 8);
        }
        break;
      } // bit flip
      case 2:
        b = b.subarray(0, at(b.length));
        break; // truncate
      case 3: {
        const i = at(b.length);
        const j = Math.min(b.length, i + Math.floor(rnd() * 64)); // duplicate a slice
        b = Buffer.concat([b.subarray(0, j), b.subarray(i, j), b.subarray(j)]);
        break;
      }
      case 4: {
        const i = at(b.length);
        const c = SPECIAL[Math.floor(rnd() * SPECIAL.length)]; // insert special byte(s)
        const run = Buffer.alloc(1 + Math.floor(rnd() * 3), c);
        b = Buffer.concat([b.subarray(0, i), run, b.subarray(i)]);
        break;
      }
      case 5:
      case 6: {
        // delete / duplicate / swap header lines
        const lines = b.toString('latin1').split('\r\n');
        const i = 1 + Math.floor(rnd() * Math.max(1, lines.length - 2));
        const r = rnd();
        if (r < 0.4) lines.splice(i, 1);
        else if (r < 0.8) lines.splice(i, 0, lines[i] ?? '');
        else {
          const j = 1 + Math.floor(rnd() * Math.max(1, lines.length - 2));
          [lines[i], lines[j]] = [lines[j], lines[i]];
        }
        b = Buffer.from(lines.join('\r\n'), 'latin1');
        break;
      }
      case 7: {
        // numbers → huge/negative/empty
        const s = b.toString('latin1');
        const nums = [...s.matchAll(/\d+/g)];
        if (nums.length) {
          const m = nums[Math.floor(rnd() * nums.length)];
          const rep = HUGE[Math.floor(rnd() * HUGE.length)];
          b = Buffer.from(s.slice(0, m.index) + rep + s.slice(m.index! + m[0].length), 'latin1');
        }
        break;
      }
      case 8: {
        const i = at(b.length);
        const j = Math.min(b.length, i + Math.floor(rnd() * 16)); // delete a slice
        b = Buffer.concat([b.subarray(0, i), b.subarray(j)]);
        break;
      }
      default: {
        const i = at(b.length); // fold / unfold
        const ins = rnd() < 0.5 ? '\r\n ' : '\r\n\r\n';
        b = Buffer.concat([b.subarray(0, i), Buffer.from(ins), b.subarray(i)]);
      }
    }
  }
  return b;
}

function assertShape(r: ParseResult, ctx: string): void {
  if (r.ok) {
    const m = r.message;
    if (typeof m.headers !== 'object' || !(typeof m.body === 'string' || Buffer.isBuffer(m.body))) throw new Error(`${ctx}: bad ok shape`);
    if (isRequest(m) ? typeof m.method !== 'string' || typeof m.uri !== 'string' : !Number.isInteger(m.status)) throw new Error(`${ctx}: bad start line`);
  } else {
    if (typeof r.error !== 'string' || r.error.startsWith('internal')) throw new Error(`${ctx}: ${r.error}`);
    if (r.status !== undefined && r.status !== 400) throw new Error(`${ctx}: status ${r.status}`);
  }
}

test(`parser survives ${N} mutated messages (seed ${SEED})`, () => {
  const rnd = prng(SEED);
  const base = seeds();
  const t0 = Date.now();
  let accepted = 0;
  for (let n = 0; n < N; n++) {
    const input = mutate(base[n % base.length], rnd);
    const ctx = `seed ${SEED} iteration ${n} input ${JSON.stringify(input.toString('latin1'))}`;
    let r: ParseResult;
    try {
      r = parseMessage(input);
    } catch (e) {
      throw new Error(`${ctx}: threw ${(e as Error).message}`, { cause: e });
    }
    assertShape(r, ctx);
    if (!r.ok) {
      if (r.partial) serializeMessage(buildResponse(r.partial, 400));
      continue;
    }
    accepted++;
    const m = r.message;
    if (isRequest(m)) {
      checkRequest(m);
      serializeMessage(buildResponse(m, 200));
    } else checkResponse(m);
    // round trip: what we write, we read back the same way
    const again = parseMessage(serializeMessage(m));
    if (!again.ok) throw new Error(`${ctx}: re-parse failed: ${again.error}`);
    const a = again.message;
    const same = isRequest(m) ? isRequest(a) && a.method === m.method && a.uri === m.uri : !isRequest(a) && a.status === m.status;
    if (!same) throw new Error(`${ctx}: start line changed on round trip`);
    const names = (x: typeof m) =>
      Object.keys(x.headers)
        .filter((k) => k !== 'content-length')
        .sort()
        .join();
    if (names(a) !== names(m)) throw new Error(`${ctx}: header names changed: ${names(m)} → ${names(a)}`);
  }
  const secs = (Date.now() - t0) / 1000;
  console.log(`fuzz: ${N} inputs, ${accepted} accepted, ${secs.toFixed(1)} s`);
  expect(accepted).toBeGreaterThan(N / 20); // the mutations are not all fatal: both paths are exercised
  expect(accepted).toBeLessThan(N);
});

test('adversarial shapes stay linear and never throw', () => {
  const big = (s: string, n: number) => s.repeat(n);
  const inputs = [
    '',
    '\r\n\r\n',
    'SIP/2.0',
    'SIP/2.0 200',
    'INVITE',
    ' \r\n',
    ':\r\n\r\n',
    `INVITE sip:a@b SIP/2.0\r\nVia: ${big('"', 50000)}\r\n\r\n`,
    `INVITE sip:a@b SIP/2.0\r\nTo: ${big('<', 50000)}\r\n\r\n`,
    `INVITE sip:a@b SIP/2.0\r\nContact: ${big(';', 50000)}\r\n\r\n`,
    `INVITE sip:a@b SIP/2.0\r\nContact: ${big('<sip:a@b>,', 20000)}\r\n\r\n`,
    `INVITE sip:a@b SIP/2.0\r\n${big('X: y\r\n', 20000)}\r\n`,
    `INVITE sip:a@b SIP/2.0\r\nX: y${big('\r\n z', 20000)}\r\n\r\n`,
    `INVITE sip:a@b SIP/2.0\r\nFrom: "${big('\\', 50001)}" <sip:a@b>\r\n\r\n`,
    `INVITE sip:a@b SIP/2.0\r\nContent-Length: ${big('9', 5000)}\r\n\r\n`,
    `INVITE sip:a@b SIP/2.0\r\n__proto__: x\r\nconstructor: y\r\n\r\n`,
  ];
  const t0 = Date.now();
  for (const s of inputs) assertShape(parseMessage(s), JSON.stringify(s.slice(0, 60)));
  expect(Date.now() - t0).toBeLessThan(5000);
  const proto = parseMessage('OPTIONS sip:a@b SIP/2.0\r\n__proto__: x\r\nconstructor: y\r\n\r\n');
  expect(proto.ok && proto.message.headers['__proto__']).toEqual(['x']);
  expect(proto.ok && proto.message.headers['constructor']).toEqual(['y']);
});
