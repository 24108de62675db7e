import { ConfigError, parseConfig } from '../../firmware/config.js';
import { formatMoney } from '../../firmware/money/format.js';
import { equal, ok, throws } from '../lib/assert.js';

const slot = { code: 'A1', product: 'Chips', price: 125, qty: 5 };

describe('machine configuration', () => {
  it('fills sensible defaults', () => {
    const c = parseConfig({ slots: [slot] });
    equal(c.changePolicy, 'refuse');
    equal(c.sessionTimeoutMs, 30000);
    equal(c.dropTimeoutMs, 5000);
    equal(c.currency, 'USD');
    equal(c.decimals, 2);
    equal(c.slots[0]!.capacity, 10);
    equal(c.slots[0]!.category, 'General');
    ok(c.maxCredit >= 5000);
  });

  it('names the field that is wrong', () => {
    const cases: [unknown, RegExp][] = [
      [null, /must be an object/],
      [{ slots: [] }, /machine\.slots must be a non-empty array/],
      [{ slots: [{ ...slot, price: 0 }] }, /machine\.slots\[0\]\.price must be between 1/],
      [{ slots: [{ ...slot, price: 1.5 }] }, /machine\.slots\[0\]\.price must be an integer/],
      [{ slots: [{ ...slot, code: 'a-1' }] }, /machine\.slots\[0\]\.code "a-1" is not valid/],
      [{ slots: [slot, slot] }, /machine\.slots\[1\]\.code "A1" is used twice/],
      [{ slots: [{ ...slot, qty: 20, capacity: 10 }] }, /qty 20 exceeds capacity 10/],
      [{ slots: [slot], changePolicy: 'greedy' }, /changePolicy must be "refuse" or "overpay"/],
      [{ slots: [slot], currency: 'dollars' }, /machine\.currency "dollars" is not valid/],
      [{ slots: [slot], sessionTimeoutMs: 10 }, /sessionTimeoutMs must be between 5000 and 600000/],
    ];
    for (const [input, pattern] of cases) {
      throws(() => parseConfig(input), pattern);
      try {
        parseConfig(input);
      } catch (e) {
        ok(e instanceof ConfigError, 'a ConfigError');
      }
    }
  });
});

describe('money formatting', () => {
  it('renders integer minor units without floating point', () => {
    equal(formatMoney(175, 2), '1.75');
    equal(formatMoney(5, 2), '0.05');
    equal(formatMoney(0, 2), '0.00');
    equal(formatMoney(123456789, 2), '1234567.89');
    equal(formatMoney(-250, 2), '-2.50');
    equal(formatMoney(500, 0), '500');
    equal(formatMoney(1005, 3), '1.005');
  });
});
