/**
 * The metric store of the simulated CloudWatch: datapoints aggregated per second per metric
 * (namespace + name + dimension set), queried back as statistics over periods.
 *
 * CloudWatch identifies a metric by its exact dimension set: `{LoadBalancer}` and
 * `{LoadBalancer, TargetGroup}` are two different metrics, and a query must name all of them.
 */

/** One dimension as the wire carries it. */
export interface Dimension {
  Name: string;
  Value: string;
}

/** Aggregate of the samples received in one second (a CloudWatch "statistic set" plus raw values). */
export interface Agg {
  count: number;
  sum: number;
  min: number;
  max: number;
  /** Raw values, for percentiles. Statistic sets sent without values leave this short of `count`. */
  values: number[];
  unit?: string;
}

export interface Metric {
  namespace: string;
  name: string;
  /** Sorted by name. */
  dimensions: Dimension[];
  /** Epoch second → aggregate. */
  buckets: Map<number, Agg>;
  /** Last time a datapoint arrived (ListMetrics RecentlyActive=PT3H). */
  lastPut: number;
}

/** Statistics accepted by GetMetricStatistics / MetricStat.Stat besides percentiles. */
export const SIMPLE_STATS = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"] as const;
export type SimpleStat = (typeof SIMPLE_STATS)[number];

const PERCENTILE = /^p(\d{1,2}(?:\.\d{1,10})?|100)$/;
/**
 * Trimmed count with absolute bounds, `TC(lower:upper)`: the number of values v with
 * lower < v ≤ upper; either bound may be left out (`TC(0.5:)` counts values above 0.5). The
 * percentage forms (`TC(10%:90%)`, `tc90`) are not simulated.
 */
const TRIMMED_COUNT = /^TC\((\d+(?:\.\d+)?)?:(\d+(?:\.\d+)?)?\)$/;

/** True for `Sum`, `Average`, …, `p0`–`p100` (with decimals such as `p99.9`) and `TC(a:b)` with absolute bounds. */
export function isStatistic(stat: string): boolean {
  return (SIMPLE_STATS as readonly string[]).includes(stat) || PERCENTILE.test(stat) || isTrimmedCount(stat);
}

function isTrimmedCount(stat: string): boolean {
  const m = TRIMMED_COUNT.exec(stat);
  return !!m && (m[1] !== undefined || m[2] !== undefined);
}

export function isPercentile(stat: string): boolean {
  return PERCENTILE.test(stat);
}

export function metricKey(namespace: string, name: string, dims: Dimension[]): string {
  return `${namespace}\u0000${name}\u0000${sortDims(dims)
    .map((d) => `${d.Name}=${d.Value}`)
    .join("\u0001")}`;
}

export function sortDims(dims: Dimension[]): Dimension[] {
  return [...dims].sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
}

/** Merges the aggregates of a window into one. */
export function merge(aggs: Agg[]): Agg | undefined {
  if (aggs.length === 0) return undefined;
  const out: Agg = { count: 0, sum: 0, min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY, values: [] };
  for (const a of aggs) {
    out.count += a.count;
    out.sum += a.sum;
    out.min = Math.min(out.min, a.min);
    out.max = Math.max(out.max, a.max);
    for (const v of a.values) out.values.push(v);
    out.unit ??= a.unit;
  }
  return out;
}

/** Value of one statistic over an aggregate; undefined when it cannot be computed. */
export function statistic(agg: Agg, stat: string): number | undefined {
  switch (stat) {
    case "SampleCount":
      return agg.count;
    case "Sum":
      return agg.sum;
    case "Average":
      return agg.count > 0 ? agg.sum / agg.count : undefined;
    case "Minimum":
      return agg.min;
    case "Maximum":
      return agg.max;
  }
  const tc = TRIMMED_COUNT.exec(stat);
  if (tc && isTrimmedCount(stat)) {
    // Like percentiles, it needs the raw values (a statistic set without values has none).
    if (agg.values.length === 0) return agg.count === 0 ? 0 : undefined;
    const lo = tc[1] === undefined ? Number.NEGATIVE_INFINITY : Number(tc[1]);
    const hi = tc[2] === undefined ? Number.POSITIVE_INFINITY : Number(tc[2]);
    let n = 0;
    for (const v of agg.values) if (v > lo && v <= hi) n++;
    return n;
  }
  const m = PERCENTILE.exec(stat);
  if (!m || agg.values.length === 0) return undefined;
  const p = Number(m[1]);
  const sorted = [...agg.values].sort((a, b) => a - b);
  // Nearest-rank percentile: the smallest value with at least p% of samples at or below it.
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

export class MetricStore {
  private readonly metrics = new Map<string, Metric>();

  /** Adds samples (a single value, repeated values with counts, or a statistic set) at `at` ms. */
  put(
    namespace: string,
    name: string,
    dims: Dimension[],
    at: number,
    sample: {
      value?: number;
      values?: number[];
      counts?: number[];
      set?: { count: number; sum: number; min: number; max: number };
    },
    unit?: string,
  ): void {
    const key = metricKey(namespace, name, dims);
    let m = this.metrics.get(key);
    if (!m) {
      m = { namespace, name, dimensions: sortDims(dims), buckets: new Map(), lastPut: at };
      this.metrics.set(key, m);
    }
    m.lastPut = Math.max(m.lastPut, at);
    const sec = Math.floor(at / 1000);
    let b = m.buckets.get(sec);
    if (!b) {
      b = { count: 0, sum: 0, min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY, values: [] };
      m.buckets.set(sec, b);
    }
    if (unit) b.unit ??= unit;
    const add = (v: number, n = 1) => {
      b.count += n;
      b.sum += v * n;
      b.min = Math.min(b.min, v);
      b.max = Math.max(b.max, v);
      for (let i = 0; i < n; i++) b.values.push(v);
    };
    if (sample.set) {
      b.count += sample.set.count;
      b.sum += sample.set.sum;
      b.min = Math.min(b.min, sample.set.min);
      b.max = Math.max(b.max, sample.set.max);
    }
    if (sample.value !== undefined) add(sample.value);
    for (const [i, v] of (sample.values ?? []).entries()) add(v, Math.max(1, Math.round(sample.counts?.[i] ?? 1)));
  }

  get(namespace: string, name: string, dims: Dimension[]): Metric | undefined {
    return this.metrics.get(metricKey(namespace, name, dims));
  }

  all(): Metric[] {
    return [...this.metrics.values()];
  }

  /**
   * Aggregates per period: for each period start in [start, end) aligned to `periodSec` (CloudWatch
   * aligns periods to the epoch), the merged aggregate, or nothing for periods without data.
   */
  series(
    metric: Metric | undefined,
    startMs: number,
    endMs: number,
    periodSec: number,
    unit?: string,
  ): { start: number; agg: Agg }[] {
    if (!metric) return [];
    const p = periodSec * 1000;
    const first = Math.floor(startMs / p) * p;
    const groups = new Map<number, Agg[]>();
    // A query spans a few minutes of a metric that may hold days of seconds: walk the range's
    // seconds when that is shorter than the metric's history (alarms and the judge query this way).
    const fromSec = Math.ceil(first / 1000);
    const toSec = Math.ceil(endMs / 1000);
    const inRange: Iterable<[number, Agg]> =
      toSec - fromSec < metric.buckets.size
        ? (function* () {
            for (let sec = fromSec; sec < toSec; sec++) {
              const agg = metric.buckets.get(sec);
              if (agg) yield [sec, agg] as [number, Agg];
            }
          })()
        : metric.buckets;
    for (const [sec, agg] of inRange) {
      const t = sec * 1000;
      if (t < first || t >= endMs) continue;
      if (unit && agg.unit && agg.unit !== unit) continue;
      const slot = Math.floor(t / p) * p;
      let g = groups.get(slot);
      if (!g) {
        g = [];
        groups.set(slot, g);
      }
      g.push(agg);
    }
    return [...groups.entries()].sort((a, b) => a[0] - b[0]).map(([start, aggs]) => ({ start, agg: merge(aggs)! }));
  }

  /** One statistic over exactly [start, start + periodSec) — alarm evaluation. */
  window(metric: Metric | undefined, startMs: number, periodSec: number): Agg | undefined {
    if (!metric) return undefined;
    const from = Math.floor(startMs / 1000);
    const to = from + periodSec;
    const aggs: Agg[] = [];
    for (let s = from; s < to; s++) {
      const a = metric.buckets.get(s);
      if (a) aggs.push(a);
    }
    return merge(aggs);
  }
}
