/**
 * The change-maker's bench cases: the issue's 16-type worst case and real
 * currencies' coin sets, and for each the tube counts and amount that make
 * the planner's search work hardest, found in Node by trying every amount
 * on a seeded set of tube fillings (the search's node count, which the XS
 * compute follows).
 */
import { ChangeMaker } from '../../firmware/money/change.js';

export interface ChangeCase {
  name: string;
  values: number[];
  /** Planner sized for amounts up to this (minor units). */
  maxAmount: number;
}

/**
 * 16 coin types with gcd 1, as many distinct values as a changer can report up to 250 units (a coin's credit is one
 * byte of the scaling factor, MDB coin changer SETUP; the set it replaces went to 5,000 units, which no changer
 * reports and the planner now refuses): every unit up to the amount is an amount to plan.
 */
export const WORST_VALUES = [1, 2, 3, 5, 7, 10, 20, 25, 30, 50, 70, 100, 120, 150, 200, 250];

/** Coin values in minor units (JPY as a yen changer reports 10 to 500, scaling 10; INR's coins are whole rupees), credit up to the configuration's 30,000. */
export const CHANGE_CASES: ChangeCase[] = [
  { name: '16 types (1 ... 250, gcd 1)', values: WORST_VALUES, maxAmount: 10000 },
  { name: '16 types at the credit limit', values: WORST_VALUES, maxAmount: 30000 },
  { name: 'USD 1/5/10/25/50/100', values: [1, 5, 10, 25, 50, 100], maxAmount: 30000 },
  { name: 'EUR 1c-2', values: [1, 2, 5, 10, 20, 50, 100, 200], maxAmount: 30000 },
  { name: 'GBP 1p-2', values: [1, 2, 5, 10, 20, 50, 100, 200], maxAmount: 30000 },
  { name: 'INR 1-20', values: [100, 200, 500, 1000, 2000], maxAmount: 30000 },
  { name: 'JPY 10-500 (scaling 10)', values: [10, 50, 100, 500], maxAmount: 30000 },
];

/** Seeded tube fillings: full, then random counts (some nearly empty). */
export function tubeFillings(types: number, n: number, seed: number): number[][] {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  const out: number[][] = [new Array<number>(types).fill(255)];
  for (let i = 1; i < n; i++) out.push(Array.from({ length: types }, () => (next() < 0.3 ? Math.floor(next() * 4) : Math.floor(next() * 256))));
  return out;
}

/** The amount and tubes with the most search nodes (about 3,000 amounts spread over the range, each filling). */
export function hardest(c: ChangeCase): { amount: number; counts: number[]; nodes: number } {
  const cm = new ChangeMaker(c.values, c.maxAmount);
  let worst = { amount: c.maxAmount, counts: new Array<number>(c.values.length).fill(255), nodes: -1 };
  const unit = cm.unit;
  // An odd stride, so the amounts tried cover every residue of the coin values.
  const stride = unit * (Math.max(1, Math.floor(c.maxAmount / unit / 3000)) | 1);
  for (const counts of tubeFillings(c.values.length, 6, 17)) {
    for (let a = c.maxAmount; a >= unit; a -= a > c.maxAmount - 50 * unit ? unit : stride) {
      cm.solve(a, counts);
      if (cm.nodes > worst.nodes) worst = { amount: a, counts, nodes: cm.nodes };
    }
  }
  return worst;
}
