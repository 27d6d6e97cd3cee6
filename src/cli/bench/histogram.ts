/**
 * A log-linear latency histogram in the manner of HdrHistogram: values (integer microseconds) below
 * 256 are counted exactly; above, each power of two is split into 128 linear buckets, so any recorded
 * value is reported within 1/128 (< 0.8 %) of itself. Fixed size (3,328 counters), mergeable.
 */

const SUB_BITS = 7;
const SUB = 1 << SUB_BITS; // 128
/** Values are clamped to 2^32 - 1 µs (about 71 minutes). */
const MAX_VALUE = 0xffffffff;
/** Highest shift is 32 - (SUB_BITS + 1) = 24; highest index SUB * 24 + 2 * SUB - 1. */
const BUCKETS = SUB * 24 + 2 * SUB;

function indexOf(value: number): number {
  if (value < SUB) return value;
  const shift = 32 - Math.clz32(value) - (SUB_BITS + 1);
  return SUB * shift + (value >>> shift);
}

/** Highest value that lands in bucket `index`. */
function highestIn(index: number): number {
  if (index < 2 * SUB) return index;
  const shift = Math.floor(index / SUB) - 1;
  const sub = index - SUB * shift;
  return (sub + 1) * 2 ** shift - 1;
}

/** The serialisable state of a Histogram (what workers send to the coordinator). */
export interface HistogramData {
  counts: number[];
  count: number;
  min: number;
  max: number;
  sum: number;
}

/** Percentiles and extremes, in microseconds. */
export interface HistogramSummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** Records latencies in microseconds. */
export class Histogram {
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;
  min = Infinity;
  max = 0;
  sum = 0;

  /** Records one value (negative values count as 0, huge ones are clamped). */
  record(micros: number): void {
    const v = micros <= 0 ? 0 : micros >= MAX_VALUE ? MAX_VALUE : Math.round(micros);
    this.counts[indexOf(v)]!++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /** The value at percentile `p` (0-100): the highest value equivalent to the bucket holding it, capped at max. */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(highestIn(i), this.max);
    }
    return this.max;
  }

  /** Adds another histogram's counts to this one. */
  merge(other: HistogramData): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += other.counts[i] ?? 0;
    this.count += other.count;
    this.sum += other.sum;
    if (other.count > 0) {
      this.min = Math.min(this.min, other.min);
      this.max = Math.max(this.max, other.max);
    }
  }

  /** A plain-object copy, for postMessage. */
  toData(): HistogramData {
    return { counts: Array.from(this.counts), count: this.count, min: this.min, max: this.max, sum: this.sum };
  }

  summary(): HistogramSummary {
    return {
      count: this.count,
      min: this.count === 0 ? 0 : this.min,
      mean: this.count === 0 ? 0 : this.sum / this.count,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p99: this.percentile(99),
      p999: this.percentile(99.9),
      max: this.max,
    };
  }
}
