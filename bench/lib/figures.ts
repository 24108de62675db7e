/**
 * The bench's figures: each is printed as a labelled line when it is
 * measured, or, with --json, only collected and printed as one JSON object at
 * the end (the form tools/check-manifests.ts reads).
 */
export class Figures {
  readonly values: Record<string, number> = {};

  constructor(readonly json: boolean) {}

  /** A line of text, left out of the JSON form. An arrow so it can be passed as a logger. */
  readonly out = (line: string): void => {
    if (!this.json) process.stdout.write(line + '\n');
  };

  /** `digits`: decimals printed for a value that is not whole (2). */
  record(key: string, value: number, label: string, unit = '', digits = 2): void {
    this.values[key] = value;
    this.out(`  ${label.padEnd(58)} ${Number.isInteger(value) ? value : value.toFixed(digits)}${unit ? ' ' + unit : ''}`);
  }

  /** The JSON object, when asked for; at the end of a run. */
  finish(): void {
    if (this.json) process.stdout.write(JSON.stringify(this.values, null, 2) + '\n');
  }
}
