import fc from 'fast-check';
import { Backoff } from '../../../guest-agent/src/backoff.js';

describe('Backoff', () => {
  test('without jitter it doubles from the initial delay and stays at the cap', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, factor: 2, jitter: 0 });
    expect(Array.from({ length: 7 }, () => b.next())).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
    b.reset();
    expect(b.next()).toBe(100);
  });

  test('with jitter every delay lies in [ceiling*(1-jitter), ceiling] and never exceeds the cap', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 0.999999, noNaN: true }), { minLength: 1, maxLength: 40 }),
        (rs) => {
          let i = 0;
          const b = new Backoff(
            { initialMs: 50, maxMs: 5000, factor: 2, jitter: 0.5 },
            () => rs[i++ % rs.length] as number,
          );
          let ceiling = 50;
          for (let k = 0; k < rs.length; k++) {
            const d = b.next();
            expect(d).toBeLessThanOrEqual(ceiling);
            expect(d).toBeGreaterThanOrEqual(Math.floor(ceiling * 0.5));
            ceiling = Math.min(5000, ceiling * 2);
          }
        },
      ),
    );
  });

  test('nonsense options are refused', () => {
    expect(() => new Backoff({ initialMs: 0, maxMs: 10, factor: 2, jitter: 0 })).toThrow(RangeError);
    expect(() => new Backoff({ initialMs: 100, maxMs: 10, factor: 2, jitter: 0 })).toThrow(RangeError);
    expect(() => new Backoff({ initialMs: 1, maxMs: 10, factor: 2, jitter: 2 })).toThrow(RangeError);
  });
});
