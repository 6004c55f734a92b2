/** JSON Schema of the `.slid` envelope: logic id → { name, description, nodes }. Unknown keys are allowed (kept on save). */
export const nodeIdSchema = { type: ['integer', 'string'] };

export const slidNodeSchema = {
  type: 'object',
  required: ['id', 'type', 'values'],
  properties: {
    id: nodeIdSchema,
    name: { type: 'string' },
    type: { type: 'string', minLength: 1 },
    description: { type: ['string', 'null'] },
    values: { type: 'object' },
    archived: { type: ['boolean', 'null'] },
    x: { type: 'number' },
    y: { type: 'number' },
  },
};

export const slidLogicSchema = {
  type: 'object',
  required: ['name', 'nodes'],
  properties: {
    name: { type: 'string' },
    description: { type: ['string', 'null'] },
    nodes: {
      type: ['object', 'array'],
      additionalProperties: slidNodeSchema,
      items: slidNodeSchema,
    },
  },
};

export const slidEnvelopeSchema = {
  $id: 'https://sipflow.dev/schemas/slid.json',
  title: 'sipflow service logic file (.slid)',
  type: 'object',
  minProperties: 1,
  additionalProperties: slidLogicSchema,
};
