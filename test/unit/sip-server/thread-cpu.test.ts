import { performance } from 'node:perf_hooks';
import { threadCpuShare } from '../../../server/sip-threads/thread-cpu';

describe('threadCpuShare', () => {
  test('the share is CPU time over wall time since the previous reading, within 0–1', () => {
    let ns = 0;
    let ms = 1000;
    const share = threadCpuShare({ runtimeNs: () => ns, now: () => ms });
    ns += 125e6;
    ms += 250;
    expect(share()).toBeCloseTo(0.5, 6);
    ns += 10e6;
    ms += 250;
    expect(share()).toBeCloseTo(0.04, 6);
    ns += 400e6; // two threads' worth cannot happen for one thread; a clock step could
    ms += 250;
    expect(share()).toBe(1);
    expect(share()).toBe(0); // no time passed
  });

  test('without the runtime (another OS), or when it stops being readable, event-loop utilisation', () => {
    const never = threadCpuShare({
      runtimeNs: () => {
        throw new Error('ENOENT');
      },
    });
    const u = never();
    expect(u).toBeGreaterThanOrEqual(0);
    expect(u).toBeLessThanOrEqual(1);

    let readable = true;
    let ms = 0;
    const later = threadCpuShare({
      runtimeNs: () => {
        if (!readable) throw new Error('gone');
        return 0;
      },
      now: () => ms,
    });
    ms += 250;
    expect(later()).toBe(0);
    readable = false;
    const end = performance.now() + 30;
    while (performance.now() < end); // the event loop is busy: its utilisation says so
    expect(later()).toBeGreaterThan(0.5);
  });

  test('a thread blocked without running reads idle, where event-loop utilisation reads it busy', () => {
    const share = threadCpuShare();
    const loop = performance.eventLoopUtilization();
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 150); // off the CPU, loop not idle
    const blocked = share();
    expect(performance.eventLoopUtilization(performance.eventLoopUtilization(), loop).utilization).toBeGreaterThan(0.8);
    expect(blocked).toBeLessThan(0.3);

    const end = performance.now() + 150;
    while (performance.now() < end); // on the CPU (as much as the machine lets it)
    const spinning = share();
    expect(spinning).toBeGreaterThan(0.25);
    expect(spinning).toBeGreaterThan(blocked + 0.2);
  });
});
