/**
 * The sipflow CLI run in process (cli/main.ts `main`), with what it prints captured: console.log
 * and console.table (as JSON) into `out`, console.error and process.stderr (commander's usage
 * errors) into `err`. The spies are restored whatever happens.
 */
import { main } from '../../cli/main';

export async function runCli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = jest.spyOn(console, 'log').mockImplementation((...a) => void out.push(a.join(' ')));
  const table = jest.spyOn(console, 'table').mockImplementation((rows) => void out.push(JSON.stringify(rows)));
  const error = jest.spyOn(console, 'error').mockImplementation((...a) => void err.push(a.join(' ')));
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    err.push(String(chunk));
    return true;
  });
  try {
    const code = await main(['node', 'sipflow', ...args]);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mockRestore();
    table.mockRestore();
    error.mockRestore();
    stderr.mockRestore();
  }
}
