/**
 * CVRPLIB instances (TSPLIB's CVRP format) and their published best
 * solutions, to measure the van-routing heuristic (gateway/restock/vrp.ts)
 * against: the Augerat A and B sets in test/fixtures/cvrplib/, copied as
 * data from the CVRPLIB mirror at github.com/vidalt/CVRPLIB (see the
 * README there). Distances are TSPLIB's EUC_2D: Euclidean, rounded to the
 * nearest integer, which is how the published costs are counted.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planCost, solveVrp, type VrpProblem, type VrpSolution } from '../../gateway/restock/vrp.js';

export const CVRPLIB_DIR = fileURLToPath(new URL('../../../test/fixtures/cvrplib/', import.meta.url));

export interface CvrpInstance {
  name: string;
  problem: VrpProblem;
  /** Vehicles in the name (A-n32-k5: 5), the fewest the instance needs. */
  vehicles: number;
  /** The published optimal (or best known) cost. */
  best: number;
}

/** One instance from its .vrp text and its .sol text (the `Cost N` line). */
export function parseCvrp(vrp: string, sol: string): CvrpInstance {
  const lines = vrp.split(/\r?\n/).map((l) => l.trim());
  const header = (key: string): string | undefined => {
    const line = lines.find((l) => l.toUpperCase().startsWith(`${key} `) || l.toUpperCase().startsWith(`${key}:`));
    return line?.slice(line.indexOf(':') + 1).trim();
  };
  const name = header('NAME') ?? '?';
  const n = Number(header('DIMENSION'));
  const capacity = Number(header('CAPACITY'));
  if (header('EDGE_WEIGHT_TYPE') !== 'EUC_2D') throw new Error(`${name}: only EUC_2D instances are read`);
  if (!Number.isInteger(n) || n < 2 || !Number.isFinite(capacity)) throw new Error(`${name}: no DIMENSION or CAPACITY`);
  const section = (title: string): string[][] => {
    const at = lines.indexOf(title);
    if (at < 0) throw new Error(`${name}: no ${title}`);
    const rows: string[][] = [];
    for (let i = at + 1; i < lines.length && /^-?\d/.test(lines[i]!); i++) rows.push(lines[i]!.split(/\s+/));
    return rows;
  };
  const coords = section('NODE_COORD_SECTION');
  const demands = section('DEMAND_SECTION');
  const depot = Number(section('DEPOT_SECTION')[0]![0]);
  if (coords.length !== n || demands.length !== n) throw new Error(`${name}: ${coords.length} coordinates and ${demands.length} demands for ${n} nodes`);
  // Node numbers in the file are 1..n; the depot becomes 0 here.
  const order = [depot, ...coords.map((c) => Number(c[0])).filter((id) => id !== depot)];
  const byId = new Map(coords.map((c) => [Number(c[0]), [Number(c[1]), Number(c[2])] as const]));
  const demandOf = new Map(demands.map((d) => [Number(d[0]), Number(d[1])]));
  const xs = new Float64Array(n);
  const ys = new Float64Array(n);
  const demand = new Int32Array(n);
  order.forEach((id, i) => {
    xs[i] = byId.get(id)![0];
    ys[i] = byId.get(id)![1];
    demand[i] = demandOf.get(id)!;
  });
  const matrix = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) matrix[i * n + j] = Math.round(Math.hypot(xs[i]! - xs[j]!, ys[i]! - ys[j]!));
  const best = Number(/Cost\s+(\d+(?:\.\d+)?)/.exec(sol)?.[1]);
  if (!Number.isFinite(best)) throw new Error(`${name}: the solution file has no Cost line`);
  return {
    name,
    vehicles: Number(/-k(\d+)/.exec(name)?.[1] ?? 0),
    best,
    problem: { n, capacity, demand, dist: (a, b) => matrix[a * n + b]! },
  };
}

/** Every instance of a set (A or B), by name. */
export function loadSet(set: 'A' | 'B'): CvrpInstance[] {
  const dir = join(CVRPLIB_DIR, set);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.vrp'))
    .sort()
    .map((f) => parseCvrp(readFileSync(join(dir, f), 'utf8'), readFileSync(join(dir, f.replace(/\.vrp$/, '.sol')), 'utf8')));
}

/** What is wrong with a solution (every customer once, no van over capacity), or an empty list. */
export function checkSolution(inst: CvrpInstance, s: VrpSolution): string[] {
  const problems: string[] = [];
  const seen = new Uint8Array(inst.problem.n);
  for (const r of s.routes) {
    let load = 0;
    for (const c of r) {
      if (c <= 0 || c >= inst.problem.n) problems.push(`${inst.name}: no node ${c}`);
      else if (seen[c]++) problems.push(`${inst.name}: node ${c} visited twice`);
      else load += inst.problem.demand[c]!;
    }
    if (load > inst.problem.capacity) problems.push(`${inst.name}: a route carries ${load} > ${inst.problem.capacity}`);
  }
  for (let c = 1; c < inst.problem.n; c++) if (!seen[c]) problems.push(`${inst.name}: node ${c} never visited`);
  if (Math.abs(planCost(inst.problem, s.routes) - s.cost) > 1e-6) problems.push(`${inst.name}: the cost given is not the routes' cost`);
  return problems;
}

export interface SetResult {
  name: string;
  cost: number;
  best: number;
  /** (cost - best) / best. */
  gap: number;
  routes: number;
  vehicles: number;
  ms: number;
}

/** Solve every instance of a set; each one's gap and solve time. */
export function runSet(set: 'A' | 'B', now: () => number = () => performance.now()): SetResult[] {
  return loadSet(set).map((inst) => {
    const t0 = now();
    const s = solveVrp(inst.problem);
    const ms = now() - t0;
    const problems = checkSolution(inst, s);
    if (problems.length > 0) throw new Error(problems.join('; '));
    return { name: inst.name, cost: s.cost, best: inst.best, gap: (s.cost - inst.best) / inst.best, routes: s.routes.length, vehicles: inst.vehicles, ms };
  });
}
