/** Building `.slid` documents in tests: one node as the editor exports it (name `n<id>`, placed at 0,0). */
export const slidNode = (id: number, type: string, values: Record<string, unknown>) => ({
  id,
  name: `n${id}`,
  type,
  description: '',
  values,
  archived: false,
  x: 0,
  y: 0,
});
