import { existsSync } from 'fs';
import path from 'path';

/** The shipped flows/ folder, from the sources (ts-jest) or from dist/. */
export function flowsDir(): string {
  for (const up of ['..', '../..']) {
    const dir = path.resolve(__dirname, up, 'flows');
    if (existsSync(dir)) return dir;
  }
  throw new Error('flows/ folder not found next to the sipflow installation');
}
