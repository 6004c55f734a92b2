/**
 * The benchmark user set, for SIPp, Kamailio and sipflow (replaces the kit's gen_users.py: same
 * files, same contents, plus sipflow's import CSV).
 *
 *   node dist/bench/sip/gen-users.js N OUTDIR [DOMAIN]
 *
 * Writes
 *   OUTDIR/users.csv            SIPp injection file (SEQUENTIAL): field0 = username, field1 = password,
 *                               field2 = "[authentication username=<user> password=<pw>]" (SIPp 3.6
 *                               cannot nest [field0] inside [authentication …], so the whole keyword
 *                               is one field and the scenario sends [field2]).
 *   OUTDIR/dbtext/version       db_text 'version' table (subscriber:7, Kamailio 5.6)
 *   OUTDIR/dbtext/subscriber    db_text 'subscriber' table (id:username:domain:password:ha1:ha1b);
 *                               the kit's run.sh also \copy-loads it into PostgreSQL (AUTH=pgsql)
 *   OUTDIR/kamailio.sqlite      SQLite DB with Kamailio's 'version' + 'subscriber' schema (as in
 *                               /usr/share/kamailio/db_sqlite/{standard,auth_db}-create.sql) and the
 *                               same users; built with the sqlite3 command-line tool
 *   OUTDIR/customers.csv        `sipflow import --customers` file: name,username,password,aor
 * Users: user00001 … userNNNNN, password pw00001 … (digits identical to the username).
 */
import { execFileSync } from 'child_process';
import { createHash } from 'crypto';
import { mkdirSync, rmSync, writeFileSync } from 'fs';
import path from 'path';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

export interface GeneratedUsers {
  n: number;
  dir: string;
  domain: string;
}

export function generateUsers(n: number, out: string, domain = 'example.test'): GeneratedUsers {
  if (!Number.isInteger(n) || n < 1) throw new Error(`gen-users: N must be a whole number ≥ 1 (got ${n})`);
  const width = Math.max(5, String(n).length);
  mkdirSync(path.join(out, 'dbtext'), { recursive: true });

  const csv: string[] = ['SEQUENTIAL'];
  const sub: string[] = ['id(int,auto) username(string) domain(string) password(string) ha1(string) ha1b(string)'];
  const customers: string[] = ['name,username,password,aor'];
  const sql: string[] = [
    'PRAGMA journal_mode = DELETE;',
    'BEGIN;',
    `CREATE TABLE version (
    id INTEGER PRIMARY KEY NOT NULL,
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_table_name_idx UNIQUE (table_name)
);`,
    "INSERT INTO version (table_name, table_version) values ('version','1');",
    `CREATE TABLE subscriber (
    id INTEGER PRIMARY KEY NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT '' NOT NULL,
    password VARCHAR(64) DEFAULT '' NOT NULL,
    ha1 VARCHAR(128) DEFAULT '' NOT NULL,
    ha1b VARCHAR(128) DEFAULT '' NOT NULL,
    CONSTRAINT subscriber_account_idx UNIQUE (username, domain)
);`,
    'CREATE INDEX subscriber_username_idx ON subscriber (username);',
    "INSERT INTO version (table_name, table_version) values ('subscriber','7');",
  ];
  for (let i = 1; i <= n; i++) {
    const num = String(i).padStart(width, '0');
    const user = `user${num}`;
    const pw = `pw${num}`;
    csv.push(`${user};${pw};[authentication username=${user} password=${pw}]`);
    const ha1 = md5(`${user}:${domain}:${pw}`);
    const ha1b = md5(`${user}@${domain}:${domain}:${pw}`);
    sub.push(`${i}:${user}:${domain}:${pw}:${ha1}:${ha1b}`);
    customers.push(`${user},${user},${pw},${user}@${domain}`);
    sql.push(`INSERT INTO subscriber VALUES (${i},'${user}','${domain}','${pw}','${ha1}','${ha1b}');`);
  }
  sql.push('COMMIT;');

  writeFileSync(path.join(out, 'users.csv'), csv.join('\n') + '\n');
  writeFileSync(path.join(out, 'dbtext', 'subscriber'), sub.join('\n') + '\n');
  writeFileSync(path.join(out, 'dbtext', 'version'), 'id(int,auto) table_name(string) table_version(int)\n1:version:1\n2:subscriber:7\n');
  writeFileSync(path.join(out, 'customers.csv'), customers.join('\n') + '\n');

  const dbfile = path.join(out, 'kamailio.sqlite');
  rmSync(dbfile, { force: true });
  try {
    execFileSync('sqlite3', [dbfile], { input: sql.join('\n') + '\n', stdio: ['pipe', 'ignore', 'pipe'] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === 'ENOENT') throw new Error('gen-users: the sqlite3 command is missing (apt-get install -y sqlite3)', { cause: e });
    throw new Error(`gen-users: sqlite3 failed: ${err.stderr?.toString() ?? err.message}`, { cause: e });
  }
  return { n, dir: out, domain };
}

if (require.main === module) {
  const [nArg, out, domain] = process.argv.slice(2);
  if (!nArg || !out) {
    console.error('usage: gen-users N OUTDIR [DOMAIN]');
    process.exit(2);
  }
  const r = generateUsers(Number(nArg), path.resolve(out), domain);
  console.error(`gen-users: ${r.n} users for ${r.domain} in ${r.dir}`);
}
