// What every benchmark scenario provides to the runner (bench/run.ts): a name,
// and a function that starts whatever it needs (servers pinned to one core,
// load pinned to the other), measures, checks the ledger, stops everything it
// started, and returns rows for the results table.

export interface BenchContext {
  /** Short smoke run (CI): seconds, small sizes, no targets judged. */
  smoke: boolean;
  /** CPU for the server under test and CPU for the load generator (taskset -c). */
  serverCpu: number;
  loadCpu: number;
  /** Progress lines for the operator; not part of the results. */
  log(line: string): void;
}

export interface BenchRow {
  scenario: string;
  /** What was measured, e.g. "reservations/s", "P99 ms". */
  measure: string;
  value: number;
  /** The same-run baseline this row is compared with, when there is one. */
  baseline?: { name: string; value: number };
  /** The target, in words ("≥ 0.85 × baseline", "≤ 5 ms"), and whether it was met. */
  target?: { text: string; met: boolean };
  note?: string;
}

export interface BenchScenario {
  name: string;
  /** One line on what the scenario does, for the table's legend. */
  description: string;
  run(context: BenchContext): Promise<BenchRow[]>;
}
