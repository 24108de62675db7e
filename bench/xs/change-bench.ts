/**
 * Runs inside XS for `npm run bench`: the firmware's change-maker on the
 * worst case the issue names (16 coin types, amounts up to 10,000 units) and
 * on real currencies' coin sets, with the tube counts the bench chooses.
 */
import { ChangeMaker } from '../../firmware/money/change.js';

const g = globalThis as unknown as Record<string, unknown>;
let maker: ChangeMaker | undefined;
let counts = new Uint8Array(16).fill(255);

/** 16 coin types whose greatest common divisor is 1, up to the 255 units a changer's one-byte credit allows (bench/lib/change-cases.ts). */
export const WORST_VALUES = [1, 2, 3, 5, 7, 10, 20, 25, 30, 50, 70, 100, 120, 150, 200, 250];

/** `searchNodes`: a lower node budget, so the exact fallback does the work (its cost alone). */
g['benchChangeSetup'] = (maxAmount: number, values?: number[], searchNodes?: number): number => {
  maker = searchNodes === undefined ? new ChangeMaker(values ?? WORST_VALUES, maxAmount) : new ChangeMaker(values ?? WORST_VALUES, maxAmount, searchNodes);
  counts = new Uint8Array(maker.types).fill(255);
  return maker.footprint;
};

/** Tube counts for the next plans (all full after setup). */
g['benchChangeCounts'] = (tubes: number[]): void => {
  counts = Uint8Array.from(tubes);
};

g['benchChangeSolve'] = (amount: number): number => {
  const plan = maker!.solve(amount, counts);
  return plan.count;
};

/** Planning in slices (start, then resume until settled), one crank each: 1 once settled, else 0. */
g['benchChangeStart'] = (amount: number): number => (maker!.start(amount, counts) === undefined ? 0 : 1);
g['benchChangeResume'] = (): number => (maker!.resume() === undefined ? 0 : 1);

/** The last plan: coins, proven (1) or not (0), search nodes, of them the last stage's; as text (only an ArrayBuffer crosses back). */
g['benchChangeLast'] = (): ArrayBuffer => new TextEncoder().encode(`${maker!.plan.count} ${maker!.plan.optimal ? 1 : 0} ${maker!.nodes} ${maker!.lastNodes}`).buffer as ArrayBuffer;
