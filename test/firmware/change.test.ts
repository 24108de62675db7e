import { ChangeMaker } from '../../firmware/money/change.js';
import { deepEqual, equal, ok, prng, throws } from '../lib/assert.js';

/** Fewest coins for every amount 0..max by exhaustive search over the tube counts. */
function bruteForce(values: number[], counts: number[], max: number): number[] {
  const best = new Array<number>(max + 1).fill(Infinity);
  const walk = (t: number, amount: number, coins: number): void => {
    if (amount > max) return;
    if (t === values.length) {
      if (coins < best[amount]!) best[amount] = coins;
      return;
    }
    for (let k = 0; k <= counts[t]!; k++) walk(t + 1, amount + k * values[t]!, coins + k);
  };
  walk(0, 0, 0);
  return best;
}

/** Independent oracle for large tube counts: the textbook bounded DP, trying every k. */
function naiveBounded(values: number[], counts: number[], max: number): number[] {
  let best = new Array<number>(max + 1).fill(Infinity);
  best[0] = 0;
  for (let t = 0; t < values.length; t++) {
    const next = best.slice();
    for (let a = 0; a <= max; a++) {
      for (let k = 1; k <= counts[t]! && k * values[t]! <= a; k++) {
        const c = best[a - k * values[t]!]! + k;
        if (c < next[a]!) next[a] = c;
      }
    }
    best = next;
  }
  return best;
}

/**
 * Every plan agrees with the oracle's fewest-coins table: exact when the
 * amount is payable, otherwise the best payable amount below it; never more
 * coins than a tube holds; the plan's coins add up to what it says it pays.
 */
function checkAgainst(values: number[], counts: number[], max: number, truth: number[], stride: () => number): void {
  const cm = new ChangeMaker(values, max);
  for (let amount = 0; amount <= max; amount += stride()) {
    const plan = cm.solve(amount, counts);
    const where = `values ${values} counts ${counts} amount ${amount}`;
    let below = amount;
    while (below > 0 && truth[below] === Infinity) below--;
    equal(plan.exact, below === amount, where);
    equal(plan.paid, below, `${where}: best payable`);
    equal(plan.count, truth[below], `${where}: coin count`);
    equal(planValue(values, plan.coins), plan.paid, `${where}: plan value`);
    for (let t = 0; t < values.length; t++) ok(plan.coins[t]! <= counts[t]!, `${where}: tube ${t} overdrawn`);
  }
}

function planValue(values: number[], coins: ArrayLike<number>): number {
  let v = 0;
  for (let t = 0; t < values.length; t++) v += coins[t]! * values[t]!;
  return v;
}

describe('change-making', () => {
  it('pays 30 from one 25 and three 10s as 10+10+10, not greedily', () => {
    const cm = new ChangeMaker([25, 10], 1000);
    const plan = cm.solve(30, [1, 3]);
    ok(plan.exact);
    deepEqual(Array.from(plan.coins), [0, 3]);
    equal(plan.count, 3);
  });

  it('uses the fewest coins when several exact answers exist', () => {
    const cm = new ChangeMaker([5, 10, 25, 100], 2000);
    // 65 = 25 + 25 + 10 + 5: four coins (not 13 fives, nor 6 tens and a five).
    const plan = cm.solve(65, [20, 20, 20, 0]);
    deepEqual(Array.from(plan.coins), [1, 1, 2, 0]);
    equal(plan.count, 4);
  });

  it('beats greedy on a non-canonical coin set', () => {
    // Greedy would take 4+1+1; the optimum is 3+3.
    const cm = new ChangeMaker([1, 3, 4], 100);
    const plan = cm.solve(6, [5, 5, 5]);
    equal(plan.count, 2);
    deepEqual(Array.from(plan.coins), [0, 2, 0]);
  });

  it('reports the most it can pay below an amount it cannot pay exactly', () => {
    const cm = new ChangeMaker([10, 25], 1000);
    const plan = cm.solve(45, [1, 1]);
    equal(plan.exact, false);
    equal(plan.paid, 35);
    equal(planValue([10, 25], plan.coins), 35);
  });

  it('never uses more coins than a tube holds', () => {
    const cm = new ChangeMaker([5, 10, 25], 1000);
    const plan = cm.solve(100, [20, 2, 1]);
    ok(plan.exact);
    ok(plan.coins[1]! <= 2 && plan.coins[2]! <= 1);
    equal(planValue([5, 10, 25], plan.coins), 100);
  });

  it('cannot pay amounts off the coin grid, nor above its limit', () => {
    const cm = new ChangeMaker([5, 10], 500);
    equal(cm.canPay(7, [10, 10]), false);
    equal(cm.canPay(600, [200, 200]), false);
    equal(cm.canPay(0, [0, 0]), true);
  });

  it('ignores coin types whose value is 0 (not in a tube)', () => {
    const cm = new ChangeMaker([0, 10, 0, 50], 500);
    const plan = cm.solve(70, [9, 9, 9, 9]);
    deepEqual(Array.from(plan.coins), [0, 2, 0, 1]);
  });

  it('tells whether the tubes cover every amount up to a limit', () => {
    const cm = new ChangeMaker([5, 10, 25], 1000);
    equal(cm.coversUpTo(100, [2, 5, 4]), true);
    equal(cm.coversUpTo(100, [0, 5, 4]), false);
  });

  it('rejects bad input clearly', () => {
    throws(() => new ChangeMaker([-1], 10), /non-negative/);
    throws(() => new ChangeMaker(new Array(17).fill(1), 10), /16 coin types/);
    throws(() => new ChangeMaker([1], 40000), /exceeds/);
    const cm = new ChangeMaker([1], 10);
    throws(() => cm.solve(-3, [1]), /non-negative/);
  });

  it('matches the textbook bounded DP with full and partly full tubes', () => {
    const rnd = prng(77);
    const pick = (n: number): number => Math.floor(rnd() * n);
    for (let round = 0; round < 60; round++) {
      const values: number[] = [];
      for (let t = 2 + pick(5); t > 0; t--) values.push(1 + pick(60));
      // Mix tubes that bind (a few coins) with tubes that never run out.
      const counts = values.map(() => (rnd() < 0.5 ? pick(4) : 50 + pick(206)));
      checkAgainst(values, counts, 300, naiveBounded(values, counts, 300), () => 1 + pick(3));
    }
  });

  it('matches exhaustive search on random coin sets, canonical or not', () => {
    const rnd = prng(20261124);
    const pick = (n: number): number => Math.floor(rnd() * n);
    for (let round = 0; round < 300; round++) {
      const values: number[] = [];
      for (let t = 1 + pick(4); t > 0; t--) values.push(1 + pick(40));
      const counts = values.map(() => pick(6));
      checkAgainst(values, counts, 150, bruteForce(values, counts, 150), () => 1);
    }
  });
});
