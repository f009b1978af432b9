/**
 * The one clock shared by the simulated cloud, the local Step Functions engine and the handlers.
 *
 * - `RealClock`: wall time (what runs in Lambda).
 * - `ScaledClock`: N× wall time, for demos and tests that push real HTTP traffic.
 * - `VirtualClock`: deterministic; time only moves when nothing is runnable, then it jumps straight
 *   to the next timer. Real I/O (child processes, sockets) must be wrapped in `hold()` so the clock
 *   knows work is in flight and does not jump past it.
 */
export interface TimerHandle {
  readonly id: number;
}

export interface Clock {
  readonly kind: "real" | "scaled" | "virtual";
  /** Epoch milliseconds. */
  now(): number;
  /** `new Date(now())`. */
  date(): Date;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  /** Resolves after `ms` of clock time. */
  sleep(ms: number): Promise<void>;
  /** Marks real I/O in flight: a virtual clock does not advance until `work` settles. */
  hold<T>(work: Promise<T>): Promise<T>;
  /** Stops all timers (for shutdown). */
  dispose(): void;
}

abstract class BaseClock {
  date(): Date {
    return new Date((this as unknown as Clock).now());
  }
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => (this as unknown as Clock).setTimeout(resolve, ms));
  }
}

export class RealClock extends BaseClock implements Clock {
  readonly kind: "real" | "scaled" = "real";
  private seq = 0;
  private readonly timers = new Map<number, NodeJS.Timeout>();
  now(): number {
    return Date.now();
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    const t = globalThis.setTimeout(
      () => {
        this.timers.delete(id);
        fn();
      },
      Math.max(0, ms),
    );
    this.timers.set(id, t);
    return { id };
  }
  clearTimeout(handle: TimerHandle | undefined): void {
    if (!handle) return;
    const t = this.timers.get(handle.id);
    if (t) globalThis.clearTimeout(t);
    this.timers.delete(handle.id);
  }
  hold<T>(work: Promise<T>): Promise<T> {
    return work;
  }
  dispose(): void {
    for (const t of this.timers.values()) globalThis.clearTimeout(t);
    this.timers.clear();
  }
}

/** Runs `factor` times faster than wall time, starting at `start` (epoch ms). */
export class ScaledClock extends RealClock {
  override readonly kind = "scaled" as const;
  private readonly realStart = Date.now();
  constructor(
    readonly factor: number,
    private readonly start: number = Date.now(),
  ) {
    super();
    if (!(factor > 0)) throw new RangeError(`clock scale must be > 0, got ${factor}`);
  }
  override now(): number {
    return this.start + (Date.now() - this.realStart) * this.factor;
  }
  override setTimeout(fn: () => void, ms: number): TimerHandle {
    return super.setTimeout(fn, ms / this.factor);
  }
}

interface VirtualTimer {
  id: number;
  at: number;
  seq: number;
  fn: () => void;
}

/** Default start of virtual time: a fixed instant so runs are reproducible. */
export const VIRTUAL_EPOCH = Date.parse("2026-01-05T09:00:00.000Z");

export class VirtualClock extends BaseClock implements Clock {
  readonly kind = "virtual" as const;
  private current: number;
  private seq = 0;
  private heap: VirtualTimer[] = [];
  private readonly live = new Set<number>();
  private holds = 0;
  private scheduled = false;
  private disposed = false;
  /** Simulated milliseconds advanced by jumps so far (for speed-up figures). */
  advancedMs = 0;

  constructor(start: number = VIRTUAL_EPOCH) {
    super();
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    const timer = { id, at: this.current + Math.max(0, Math.floor(ms)), seq: id, fn };
    this.push(timer);
    this.live.add(id);
    this.kick();
    return { id };
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle) this.live.delete(handle.id);
  }

  hold<T>(work: Promise<T>): Promise<T> {
    this.holds++;
    const release = () => {
      this.holds--;
      this.kick();
    };
    work.then(release, release);
    return work;
  }

  /** Number of timers still pending (for tests). */
  pending(): number {
    return this.live.size;
  }

  dispose(): void {
    this.disposed = true;
    this.heap = [];
    this.live.clear();
  }

  /**
   * Schedules an idle check. Idle means: no held I/O, and the microtask queue drained across two
   * macrotask turns (a promise chain resumed by a resolved timer may schedule more work).
   */
  private kick(): void {
    if (this.scheduled || this.disposed) return;
    this.scheduled = true;
    setImmediate(() =>
      setImmediate(() => {
        this.scheduled = false;
        this.step();
      }),
    );
  }

  private step(): void {
    if (this.disposed || this.holds > 0) return;
    // Fire every due timer at the earliest instant, then let the world settle again.
    let next = this.peekLive();
    if (!next) return;
    if (next.at > this.current) {
      this.advancedMs += next.at - this.current;
      this.current = next.at;
    }
    const at = this.current;
    while (next && next.at <= at) {
      this.pop();
      if (this.live.delete(next.id)) {
        try {
          next.fn();
        } catch (err) {
          queueMicrotask(() => {
            throw err;
          });
        }
      }
      next = this.peekLive();
    }
    if (this.live.size > 0) this.kick();
  }

  private peekLive(): VirtualTimer | undefined {
    while (this.heap.length > 0 && !this.live.has(this.heap[0]!.id)) this.pop();
    return this.heap[0];
  }

  private push(t: VirtualTimer): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(h[p]!, h[i]!)) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  private pop(): VirtualTimer | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
}

function less(a: VirtualTimer, b: VirtualTimer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Parses `virtual`, `real`, `scaled:N` (as used by `--clock` and KILN_CLOCK). */
export function parseClock(spec: string | undefined, start?: number): Clock {
  const s = (spec ?? "real").trim();
  if (s === "real") return new RealClock();
  if (s === "virtual") return new VirtualClock(start);
  const m = /^scaled:(\d+(?:\.\d+)?)$/.exec(s);
  if (m) return new ScaledClock(Number(m[1]), start);
  throw new Error(`invalid clock "${s}": expected virtual, real or scaled:N (for example scaled:60)`);
}
