/**
 * Rolling restart, small (issue 18, point 5): bench/rolling-restart's run with 20 PBXs — two real
 * `sipflow serve` processes on one PostgreSQL database (a scratch database on the shared server),
 * SIPp registering the PBXs through both and calling them through both while A, then B, is
 * stopped with SIGTERM and started again. No acknowledged binding may be lost, every call that
 * reached a live instance must complete, and both instances must exit 0. The full run (200 PBXs,
 * --record-route, --mode write-through) is `npm run bench:rolling` (docs/rolling-restart.md).
 */
import path from 'path';
import { rollingRestart, table, type RollingResult } from '../../bench/rolling-restart/run';
import { scratchDatabase } from '../setup/servers';
import { configureSipp } from '../support/sipp';

const ARTIFACTS = path.resolve(__dirname, '../../test-artifacts/rolling-restart-e2e');

// SIPp installed by scripts/install-system-deps.sh when missing (the suite fails, never skips, without it)
beforeAll(() =>
  configureSipp({ host: '127.0.0.1', artifacts: ARTIFACTS, scenarios: path.resolve(__dirname, '../../bench/rolling-restart'), serverLog: () => '' }),
);

async function runSmall(name: string, o: { recordRoute: boolean; mode: 'db-only' | 'write-through' }): Promise<RollingResult> {
  const db = await scratchDatabase(`rolling_${name}`);
  try {
    return await rollingRestart({
      pbxs: 20,
      recordRoute: o.recordRoute,
      mode: o.mode,
      pgUrl: db.url,
      refreshPeriodSec: 6,
      callRate: 4,
      settleSec: 2,
      workers: 2,
      artifacts: path.join(ARTIFACTS, name),
      log: () => undefined,
    });
  } finally {
    await db.drop();
  }
}

function expectClean(r: RollingResult): void {
  const report = table(r);
  expect({ lost: r.lostBindings, failed: r.failedCalls, report }).toEqual({ lost: [], failed: [], report });
  expect(r.neverRegistered).toBe(0);
  for (const i of r.instances) {
    // each instance was stopped cleanly and served before and after its restart
    expect({ instance: i.name, exitCode: i.restart.exitCode }).toEqual({ instance: i.name, exitCode: 0 });
    expect(i.registrations.ok).toBeGreaterThan(20);
    expect(i.calls.completed).toBeGreaterThan(20);
    expect(i.restart.readyMs).toBeGreaterThan(i.restart.exitMs);
  }
  expect(r.ok).toBe(true);
}

test('db-only, no Record-Route: A then B restarted under load, no binding lost, no call that reached a live instance failed', async () => {
  expectClean(await runSmall('db_only', { recordRoute: false, mode: 'db-only' }));
}, 240_000);

test('write-through with Record-Route: the same', async () => {
  expectClean(await runSmall('write_through_rr', { recordRoute: true, mode: 'write-through' }));
}, 240_000);
