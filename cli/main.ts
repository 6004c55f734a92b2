#!/usr/bin/env node
/** The `sipflow` command. */
import { Command, InvalidArgumentError } from 'commander';
import { readFileSync } from 'fs';
import path from 'path';
import { buildCallDescriptor, callDescriptorJson } from '../engine/cd';
import { formatProblem, loadSlidText, type LoadResult } from '../engine/load';
import { parseInstant } from '../engine/instant';
import { runLogic } from '../engine/run';
import { redactCallDescriptorJson, redactTrace } from '../engine/secrets';
import type { NodeRegistry } from '../engine/registry';
import { nodeReferenceMarkdown } from '../nodes/reference';
import { parseDigestCredentials } from '../services/auth';
import { maskPassword, migrate, openDirectory, seed, createSubscribers, type Subscribers } from '../services/directory';
import { ConfigError, configReferenceMarkdown, loadConfig } from '../server/config';
import { hardenDataDirs, restrictUmask } from '../server/data-dir';
import { loadNodePlugins, PluginError, registryOf } from '../server/node-plugins';
import { openRuntime } from '../server/runtime';
import { runDemo } from './demo';
import { secretDirs } from './paths';
import { runImport } from './import';
import { runTestCommand } from './test';
import { registerServe } from './serve';

const DEFAULT_DATA_DIR = process.env.SIPFLOW_DATA_DIR ?? '.data';

/** Errors the user can act on: printed as one line, exit code 1. */
export class UsageError extends Error {}

function readText(file: string, what: string): string {
  try {
    return file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export function loadFlowFile(file: string, registry: NodeRegistry): LoadResult {
  return loadSlidText(readText(file, 'service logic'), path.basename(file), registry);
}

/**
 * The node plug-ins of `--config` (and SIPFLOW_NODES_PLUGINS), as `serve` loads them: flows that
 * use a plug-in's node validate and run with the same configuration.
 */
function pluginsOf(configFile: string | undefined) {
  return loadNodePlugins(loadConfig(configFile).nodes.plugins);
}
const configOption = [
  '--config <file>',
  'configuration: nodes.plugins add node types (as serve loads them), nodes.* give the query nodes their servers',
] as const;

function directoryUrl(opts: { dataDir: string; directoryUrl?: string }): string {
  return opts.directoryUrl ?? process.env.SIPFLOW_DIRECTORY_URL ?? path.join(opts.dataDir, 'directory');
}

async function withSubscribers<T>(opts: { dataDir: string; directoryUrl?: string }, fn: (s: Subscribers) => Promise<T>): Promise<T> {
  const knex = openDirectory(directoryUrl(opts));
  try {
    await migrate(knex);
    return await fn(createSubscribers(knex));
  } finally {
    await knex.destroy();
  }
}

/** `--now`: the run's clock stands still at this instant (epoch ms). */
const instant = (v: string) => {
  const ms = parseInstant(v);
  if (ms instanceof Error) throw new InvalidArgumentError(ms.message);
  return ms;
};

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number');
  return n;
};

/** The exit status actions report (kept off process.exitCode so the CLI can run in-process, e.g. in tests). */
export interface Status {
  code: number;
}

export function buildProgram(status: Status = { code: 0 }): Command {
  const program = new Command('sipflow').description('Run SIP service logic (.slid) the way an SRE call processor does.').showHelpAfterError().exitOverride();

  // Every command: nothing it creates is readable by group/other (the data dir holds passwords,
  // the nonce secret, the API token). Commands with a data dir also tighten what is already there.
  program.hook('preAction', (_program, action) => {
    restrictUmask();
    const o = action.opts() as { dataDir?: unknown; directoryUrl?: string };
    if (action.name() === 'serve' || typeof o.dataDir !== 'string') return; // serve does it with its configuration
    hardenDataDirs(secretDirs(o.dataDir, directoryUrl({ dataDir: o.dataDir, directoryUrl: o.directoryUrl })), (message) =>
      console.error(`sipflow: warning: ${message}`),
    );
  });
  // PGlite creates its files with explicit modes (0666, 0644) whatever the umask: tighten them
  // again once the command is done (silently: they sit in a 0700 folder meanwhile).
  program.hook('postAction', (_program, action) => {
    const o = action.opts() as { dataDir?: unknown; directoryUrl?: string };
    if (action.name() === 'serve' || typeof o.dataDir !== 'string') return;
    hardenDataDirs(secretDirs(o.dataDir, directoryUrl({ dataDir: o.dataDir, directoryUrl: o.directoryUrl })), () => undefined);
  });

  const dataOpts = (c: Command) =>
    c
      .option('--data-dir <dir>', 'embedded data directory (PGlite directory, nonce secret)', DEFAULT_DATA_DIR)
      .option('--directory-url <url>', 'directory database: PGlite dir, memory:// or postgres://… (default <data-dir>/directory)');

  program
    .command('validate')
    .description('validate .slid files; prints every problem, exit 1 when any is an error')
    .argument('<files...>')
    .option(...configOption)
    .action((files: string[], o: { config?: string }) => {
      const registry = registryOf(pluginsOf(o.config));
      let errors = 0;
      let warnings = 0;
      for (const file of files) {
        const { problems } = loadFlowFile(file, registry);
        for (const p of problems) {
          console.log(`${p.severity}: ${formatProblem({ ...p, file })}`);
          if (p.severity === 'error') errors++;
          else warnings++;
        }
      }
      console.log(`${files.length} file(s): ${errors} error(s), ${warnings} warning(s)`);
      if (errors > 0) status.code = 1;
    });

  program
    .command('test')
    .description('run the test cases beside flows (<name>.tests.json) on a throw-away directory; exit 1 on any failure or bad file')
    .argument('<paths...>', '.slid files (each with its <name>.tests.json) or folders (every *.slid with one)')
    .option('--junit <file>', 'write JUnit XML: a testsuite per flow, a testcase per test')
    .option('--realm <realm>', 'digest realm (default: the From host)')
    .option(...configOption)
    .action(async (paths: string[], o: { junit?: string; realm?: string; config?: string }) => {
      const code = await runTestCommand(paths, o, registryOf(pluginsOf(o.config)), (line) => console.log(line));
      if (code !== 0) status.code = code;
    });

  dataOpts(program.command('run'))
    .description('run a logic once against a call descriptor; prints {"outcome","cd","trace"} as JSON')
    .argument('<file>', '.slid file')
    .requiredOption('--logic <id|name>', 'logic to run')
    .requiredOption('--cd <file>', 'call descriptor JSON (variables + "headers"); - for stdin')
    .option('--trace', 'include the trace of steps')
    .option('--realm <realm>', 'digest realm (default: the From host)')
    .option('--default-country <code>', 'country of national numbers for action.normalizeNumber nodes naming none (ISO 3166-1 alpha-2: FR, US)')
    .option('--reveal-secrets', 'print passwords, credentials headers and digest responses (default: "[redacted]", as the API)')
    .option(...configOption)
    .option('--now <instant>', 'run at this instant (ISO 8601 with offset, e.g. 2026-12-24T18:30:00+01:00): the clock the date and time nodes read', instant)
    .action(
      async (
        file: string,
        o: {
          logic: string;
          cd: string;
          trace?: boolean;
          dataDir: string;
          directoryUrl?: string;
          realm?: string;
          revealSecrets?: boolean;
          config?: string;
          now?: number;
          defaultCountry?: string;
        },
      ) => {
        const loaded = loadFlowFile(file, registryOf(pluginsOf(o.config)));
        const errors = loaded.problems.filter((p) => p.severity === 'error');
        if (!loaded.service) throw new UsageError(errors.map((p) => formatProblem({ ...p, file })).join('\n'));
        if (!loaded.service.find(o.logic)) {
          throw new UsageError(
            `${file} has no logic "${o.logic}" (logics: ${[...loaded.service.logics.values()].map((l) => `${l.id} "${l.name}"`).join(', ')})`,
          );
        }
        let input: unknown;
        try {
          input = JSON.parse(readText(o.cd, 'call descriptor'));
        } catch (e) {
          if (e instanceof UsageError) throw e;
          throw new UsageError(`call descriptor ${o.cd}: invalid JSON: ${(e as Error).message}`);
        }
        let cd;
        try {
          cd = buildCallDescriptor(input, { credentials: parseDigestCredentials });
        } catch (e) {
          throw new UsageError(`call descriptor ${o.cd}: ${(e as Error).message}`);
        }
        const rt = await openRuntime({
          dataDir: o.dataDir,
          directoryUrl: directoryUrl(o),
          realm: o.realm,
          numbers: { defaultCountry: o.defaultCountry?.toUpperCase() },
          provision: false,
          nodes: loadConfig(o.config).nodes,
        });
        try {
          await migrate(rt.knex);
          const now = o.now;
          const ctx = now === undefined ? rt.ctx : { ...rt.ctx, clock: { now: () => now } };
          const result = await runLogic(loaded.service, o.logic, cd, ctx, { trace: o.trace });
          const secrets = o.revealSecrets ? null : loaded.service.secrets;
          const cdJson = callDescriptorJson(result.cd);
          const out: Record<string, unknown> = { outcome: result.outcome, cd: secrets === null ? cdJson : redactCallDescriptorJson(cdJson, secrets) };
          if (result.trace) out.trace = secrets === null ? result.trace : redactTrace(result.trace, secrets);
          console.log(JSON.stringify(out, null, 2));
        } finally {
          await rt.close();
        }
      },
    );

  const db = program.command('db').description('directory database');
  dataOpts(db.command('migrate'))
    .description('create or update the directory tables')
    .action(async (o) => {
      const knex = openDirectory(directoryUrl(o));
      try {
        const done = await migrate(knex);
        console.log(done.length ? `applied: ${done.join(', ')}` : 'already up to date');
      } finally {
        await knex.destroy();
      }
    });
  dataOpts(db.command('seed'))
    .description("provision the note's sample subscriber (idempotent)")
    .action(async (o) => {
      const knex = openDirectory(directoryUrl(o));
      try {
        await migrate(knex);
        await seed(knex);
        console.log('sample subscriber provisioned (Netaxis NL / francesco, number 000112233)');
      } finally {
        await knex.destroy();
      }
    });

  const customers = program.command('customers').description('subscribers (PBXs)');
  dataOpts(customers.command('add'))
    .requiredOption('--name <name>')
    .option('--username <username>')
    .option('--password <password>')
    .option('--aor <aor>')
    .action(async (o) =>
      withSubscribers(o, async (s) => {
        const c = await s.addCustomer({ name: o.name, username: o.username ?? null, password: o.password ?? null, aor: o.aor ?? null });
        console.log(`customer ${c.id} "${c.name}" added`);
      }),
    );
  dataOpts(customers.command('list'))
    .option('--search <text>')
    .option('--limit <n>', 'rows', positiveInt, 50)
    .option('--offset <n>', 'skip', positiveInt, 0)
    .action(async (o) =>
      withSubscribers(o, async (s) => {
        const page = await s.listCustomers({ search: o.search, limit: o.limit, offset: o.offset });
        // passwords are secrets: listed as set/unset only
        console.table(page.rows.map((c) => ({ id: c.id, name: c.name, username: c.username, password: c.password ? '(set)' : null, aor: c.aor })));
        console.log(`${page.rows.length} of ${page.total}`);
      }),
    );

  const numbers = program.command('numbers').description('numbers (DIDs) of the subscribers');
  dataOpts(numbers.command('add'))
    .requiredOption('--number <number>')
    .option('--range', 'the number is a prefix for a range')
    .requiredOption('--customer <id|name>')
    .action(async (o) =>
      withSubscribers(o, async (s) => {
        const n = await s.addNumber({ number: o.number, is_range: Boolean(o.range), customer: /^\d+$/.test(o.customer) ? Number(o.customer) : o.customer });
        console.log(`number ${n.number}${n.is_range ? ' (range)' : ''} added to customer ${n.customer_id} "${n.customer_name}"`);
      }),
    );
  dataOpts(numbers.command('list'))
    .option('--search <text>')
    .option('--customer <id|name>')
    .option('--limit <n>', 'rows', positiveInt, 50)
    .option('--offset <n>', 'skip', positiveInt, 0)
    .action(async (o) =>
      withSubscribers(o, async (s) => {
        const page = await s.listNumbers({ search: o.search, customer: o.customer, limit: o.limit, offset: o.offset });
        console.table(page.rows);
        console.log(`${page.rows.length} of ${page.total}`);
      }),
    );

  dataOpts(program.command('import'))
    .description('batch import of customers and numbers from CSV: all rows or none')
    .option('--customers <file>', 'CSV with header name,username,password,aor')
    .option('--numbers <file>', 'CSV with header number,is_range,customer')
    .action(async (o) => {
      if (!o.customers && !o.numbers) throw new UsageError('import needs --customers and/or --numbers');
      const ok = await withSubscribers(o, (s) => runImport(s, { customers: o.customers, numbers: o.numbers }, readText));
      if (!ok) status.code = 1;
    });

  program
    .command('config')
    .description('configuration')
    .command('check')
    .argument('<file>', 'YAML or JSON configuration')
    .description('validate a configuration file (with SIPFLOW_* environment overrides) and load its node plug-ins; every error names its key or plug-in')
    .action((file: string) => {
      try {
        const c = loadConfig(file);
        // the plug-ins as serve loads them: one that cannot be used is found before a start
        const types = loadNodePlugins(c.nodes.plugins).flatMap((p) => p.types.map((t) => t.type));
        console.log(
          `${file}: OK (${c.sip.listeners.length} listener(s), directory ${c.directory.url ? maskPassword(c.directory.url) : path.join(c.dataDir, 'directory')}, location ${maskPassword(c.location.url)}${types.length ? `, plug-in node types ${types.join(', ')}` : ''})`,
        );
      } catch (e) {
        if (e instanceof ConfigError || e instanceof PluginError) {
          console.error(e.message);
          status.code = 1;
          return;
        }
        throw e;
      }
    });

  program
    .command('docs')
    .description('print a reference generated from the schemas: nodes (docs/nodes.md) or config (docs/configuration.md)')
    .argument('[what]', 'nodes or config', 'nodes')
    .option(...configOption)
    .action((what: string, o: { config?: string }) => {
      if (what === 'nodes') {
        const plugins = pluginsOf(o.config);
        const pluginOf = new Map(plugins.flatMap((p) => p.types.map((t) => [t.type, p.plugin] as const)));
        console.log(nodeReferenceMarkdown(registryOf(plugins).list(), (type) => pluginOf.get(type)));
      } else if (what === 'config') console.log(configReferenceMarkdown());
      else throw new UsageError(`docs: unknown reference "${what}" (nodes, config)`);
    });

  dataOpts(program.command('demo'))
    .description('the seed registration logic on the embedded directory: REGISTER → 401 → REGISTER with credentials → 200')
    .action(async (o) => runDemo({ dataDir: o.dataDir, directoryUrl: directoryUrl(o) }));

  registerServe(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const status: Status = { code: 0 };
  const program = buildProgram(status);
  try {
    await program.parseAsync(argv);
    return status.code;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string };
    if (err.code?.startsWith('commander.')) return err.exitCode ?? 1; // commander printed it already
    console.error(`sipflow: ${err.message ?? String(e)}`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
