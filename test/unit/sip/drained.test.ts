/**
 * drained() (sip/front-end.ts): how long a stopping front end keeps serving — until nothing has
 * been in progress for the linger, never beyond the grace (docs/operations.md "Stopping").
 */
import { drained } from '../../../sip/front-end';

const timed = async (busy: () => boolean, graceMs: number, lingerMs: number): Promise<number> => {
  const t0 = Date.now();
  await drained(busy, graceMs, lingerMs);
  return Date.now() - t0;
};

test('idle from the start: returns after the linger, not at once', async () => {
  const ms = await timed(() => false, 2000, 200);
  expect(ms).toBeGreaterThanOrEqual(200);
  expect(ms).toBeLessThan(1000);
});

test('busy for a while: the linger counts from the end of the last transaction', async () => {
  const until = Date.now() + 300;
  const ms = await timed(() => Date.now() < until, 2000, 200);
  expect(ms).toBeGreaterThanOrEqual(500);
  expect(ms).toBeLessThan(1500);
});

test('busy again during the linger (a BYE after the ACK): the linger starts over', async () => {
  const t0 = Date.now();
  const busy = () => {
    const t = Date.now() - t0;
    return t < 100 || (t >= 250 && t < 350);
  };
  const ms = await timed(busy, 2000, 200);
  expect(ms).toBeGreaterThanOrEqual(550);
  expect(ms).toBeLessThan(1500);
});

test('never idle: bounded by the grace; the linger never extends it', async () => {
  const ms = await timed(() => true, 400, 200);
  expect(ms).toBeGreaterThanOrEqual(400);
  expect(ms).toBeLessThan(900);
  const late = Date.now() + 350;
  const ms2 = await timed(() => Date.now() < late, 400, 200);
  expect(ms2).toBeLessThan(900);
});

test('a message while idle (a BYE relayed and answered between two looks at busy) starts the linger over', async () => {
  const t0 = Date.now();
  const ms = await timed2(
    () => false,
    2000,
    200,
    () => (Date.now() - t0 >= 150 ? t0 + 150 : 0),
  );
  expect(ms).toBeGreaterThanOrEqual(350);
  expect(ms).toBeLessThan(1200);
});

async function timed2(busy: () => boolean, graceMs: number, lingerMs: number, lastMessageAt: () => number): Promise<number> {
  const t0 = Date.now();
  await drained(busy, graceMs, lingerMs, lastMessageAt);
  return Date.now() - t0;
}
