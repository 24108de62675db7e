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

describe('machine configuration: broker addresses', () => {
  it('takes a list of brokers (a cluster), the first as host and port, or host and port followed by the list', () => {
    const c = parseConfig({ slots: [slot], uplink: { brokers: [{ host: 'n1', port: 1884 }, { host: 'n2' }, { host: 'n3', port: 1999 }] } });
    equal(c.uplink!.host, 'n1');
    equal(c.uplink!.port, 1884);
    equal(c.uplink!.brokers!.map((b) => `${b.host}:${b.port}`).join(' '), 'n1:1884 n2:1883 n3:1999');
    const d = parseConfig({ slots: [slot], uplink: { host: 'main', brokers: [{ host: 'spare', port: 1885 }] } });
    equal(d.uplink!.brokers!.map((b) => `${b.host}:${b.port}`).join(' '), 'main:1883 spare:1885');
    equal(parseConfig({ slots: [slot], uplink: { host: 'one' } }).uplink!.brokers, undefined);
  });

  it('names the broker address that is wrong', () => {
    const cases: [unknown, RegExp][] = [
      [[], /machine\.uplink\.brokers must be a list of 1 to 8/],
      [Array.from({ length: 9 }, () => ({ host: 'h' })), /machine\.uplink\.brokers must be a list of 1 to 8/],
      [[{ host: 'h' }, 'n2'], /machine\.uplink\.brokers\[1\] must be an object/],
      [[{ host: 'h', port: 0 }], /machine\.uplink\.brokers\[0\]\.port must be between 1 and 65535/],
      [[{ port: 1883 }], /machine\.uplink\.brokers\[0\]\.host must be a non-empty string/],
    ];
    for (const [brokers, re] of cases) throws(() => parseConfig({ slots: [slot], uplink: { brokers } }), re);
  });
});
