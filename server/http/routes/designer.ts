/**
 * What the visual designer needs beyond the flows and engine routes, as one fastify plugin:
 *
 *   GET /api/v1/node-types         the node type catalogue (type, title, category, description, summary, valuesSchema)
 *   GET /api/v1/directory/schema   the directory's tables and columns (for the designer's pickers)
 *   GET /designer/…                the built web app (designer/dist, `npm run build:designer`)
 *
 * The API routes sit behind the bearer token like the rest of /api. The web app's static files
 * carry no secret and must load without the token (a browser navigation sends no Authorization
 * header): the app asks for the token once and sends it on every API call.
 *
 * Register at the root (not under the /api/v1 prefix): `await app.register(designerPlugin, { directory: runtime.directory })`.
 */
import { existsSync } from 'fs';
import path from 'path';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import fastifyStatic from '@fastify/static';
import { NODE_CATEGORIES } from '../../../engine/node-type';
import type { NodeRegistry } from '../../../engine/registry';
import { builtinRegistry } from '../../../nodes';
import type { ForeignKey } from '../../../services/directory/schema';
import type { DirectorySchema } from '../../../services/directory/types';

export interface DesignerPluginOptions {
  /** Source of the directory schema (the runtime's directory port). */
  directory: { schema(): Promise<DirectorySchema> };
  /** The directory's foreign keys (services/directory/schema.ts): a column that references another says so. */
  foreignKeys?: () => Promise<ForeignKey[]>;
  /** Node types offered (default: the built-in registry). */
  registry?: NodeRegistry;
  /** Built web app (default: `designer/dist` of the repository). */
  distDir?: string;
  /** Prefix of the API routes (default `/api/v1`). */
  apiPrefix?: string;
  /** Schemas (`schema.table`) hidden from the designer's pickers (default: sipflow's own bookkeeping). */
  hiddenSchemas?: string[];
}

/** `designer/dist` relative to this file, from the sources (ts-jest, tsx) or from the build (dist/server/…). */
export function defaultDesignerDist(): string {
  const candidates = [path.resolve(__dirname, '../../../designer/dist'), path.resolve(__dirname, '../../../../designer/dist')];
  return candidates.find((d) => existsSync(path.join(d, 'index.html'))) ?? candidates[0];
}

const nodeTypeSchema = {
  type: 'object',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    category: { type: 'string', enum: [...NODE_CATEGORIES] },
    description: { type: 'string' },
    summary: {
      type: 'string',
      description: "template of the line a node shows on the designer's canvas, over its values (designer/src/essence.ts); absent: a generic line",
    },
    valuesSchema: {
      type: 'object',
      additionalProperties: true,
      description: 'JSON Schema of `values`, with the x-exit/x-exit-label/x-writes/x-var/x-column/x-table/x-logic annotations',
    },
  },
  required: ['type', 'title', 'category', 'description', 'valuesSchema'],
};

const errorBody = {
  type: 'object',
  properties: { statusCode: { type: 'integer' }, error: { type: 'string' }, message: { type: 'string' } },
  required: ['statusCode', 'error', 'message'],
  additionalProperties: true,
};

const designerPluginImpl: FastifyPluginAsync<DesignerPluginOptions> = async (app: FastifyInstance, o) => {
  const registry = o.registry ?? builtinRegistry();
  const prefix = o.apiPrefix ?? '/api/v1';
  const hidden = new Set(o.hiddenSchemas ?? ['sipflow']);
  const TAG = ['designer'];

  // The catalogue never changes while the process runs: built once.
  const catalogue = registry.list().map((t) => ({
    type: t.type,
    title: t.title,
    category: t.category,
    description: t.description,
    ...(t.summary ? { summary: t.summary } : {}),
    valuesSchema: t.valuesSchema,
  }));

  app.get(
    `${prefix}/node-types`,
    {
      schema: {
        tags: TAG,
        summary: "Node type catalogue: every node type with the JSON Schema of its values (the designer's palette and forms)",
        response: { 200: { type: 'array', items: nodeTypeSchema }, 401: errorBody },
      },
    },
    async () => catalogue,
  );

  app.get(
    `${prefix}/directory/schema`,
    {
      schema: {
        tags: TAG,
        summary: "Directory tables (`schema.table`) and their columns with data types (the designer's pickers)",
        response: {
          200: {
            type: 'object',
            properties: {
              tables: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    name: { type: 'string', description: '`schema.table` as flows name it' },
                    columns: {
                      type: 'array',
                      items: {
                        type: 'object',
                        properties: {
                          name: { type: 'string' },
                          type: { type: 'string' },
                          references: { type: 'string', description: 'foreign key: the `schema.table.column` this column references' },
                        },
                        required: ['name', 'type'],
                      },
                    },
                  },
                  required: ['name', 'columns'],
                },
              },
            },
            required: ['tables'],
          },
          401: errorBody,
          503: errorBody,
        },
      },
    },
    async () => {
      const [schema, keys] = await Promise.all([o.directory.schema(), o.foreignKeys?.() ?? []]);
      const references = new Map(keys.map((k) => [k.from, k.to]));
      const tables = Object.entries(schema)
        .filter(([name]) => !hidden.has(name.split('.')[0]))
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([name, cols]) => ({
          name,
          columns: Object.entries(cols).map(([c, type]) => {
            const to = references.get(`${name}.${c}`);
            return to === undefined ? { name: c, type } : { name: c, type, references: to };
          }),
        }));
      return { tables };
    },
  );

  // ------------------------------------------------------------ the web app
  const dist = o.distDir ?? defaultDesignerDist();
  const built = existsSync(path.join(dist, 'index.html'));
  const hide = { schema: { hide: true } };
  if (built) {
    await app.register(fastifyStatic, {
      root: dist,
      prefix: '/designer/',
      decorateReply: false,
      index: ['index.html'],
      redirect: false,
      wildcard: true,
      cacheControl: false,
      // index.html names content-hashed assets: it must never be cached, the assets may be forever.
      setHeaders(res, file) {
        res.setHeader('Cache-Control', file.endsWith('index.html') ? 'no-cache' : 'public, max-age=31536000, immutable');
        // the documented link carries ?token=: never pass the page URL on as a Referer
        res.setHeader('Referrer-Policy', 'no-referrer');
      },
    });
    app.get('/designer', hide, async (_req, reply) => reply.redirect('/designer/'));
  } else {
    const notBuilt = async (_req: unknown, reply: { code(n: number): { type(t: string): { send(b: string): unknown } } }) =>
      reply.code(404).type('text/plain; charset=utf-8').send(`the designer is not built: run \`npm run build:designer\` (expected ${dist}/index.html)\n`);
    app.get('/designer', hide, notBuilt);
    app.get('/designer/*', hide, notBuilt);
  }
};

/** The designer plugin (not encapsulated in a prefix: it names its own routes). */
export const designerPlugin = designerPluginImpl;
export default designerPlugin;
