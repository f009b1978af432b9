/**
 * The one clock shared by the simulated cloud, the local Step Functions engine and the handlers.
 *
 * - `RealClock`: wall time (what runs in Lambda).
 * - `ScaledClock`: N× wall time, for demos and tests that push real HTTP traffic.
 * - `VirtualClock`: deterministic; time only moves when nothing is runnable, then it jumps straight
 *   to the next timer. Real I/O (child processes, sockets) must be wrapped in `hold()` so the clock
 *   knows work is in flight and does not jump past it. Once `serve()`d (a stack that outside callers
 *   reach over HTTP: `kiln up|cloud --clock virtual`) it follows the served rule instead: time flows
 *   at least at wall speed and jumps only on demand (see `VirtualClock.serve`).
 */
import { AsyncResource } from "node:async_hooks";
export interface TimerHandle {
  readonly id: number;
}

/** How a timer relates to outside callers (only a served VirtualClock reads this). */
export interface TimerOptions {
  /**
   * The timer ends a wait on an outside caller: a callback task's TimeoutSeconds/HeartbeatSeconds,
   * which a client answers with SendTaskSuccess. A served virtual clock never jumps to or past it;
   * it fires when time flows there.
   */
  awaitsOutside?: boolean;
}

export interface Clock {
  readonly kind: "real" | "scaled" | "virtual";
  /** Epoch milliseconds. */
  now(): number;
  /** `new Date(now())`. */
  date(): Date;
  setTimeout(fn: () => void, ms: number, opts?: TimerOptions): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  /** Resolves after `ms` of clock time. */
  sleep(ms: number): Promise<void>;
  /** Marks real I/O in flight: a virtual clock does not advance until `work` settles. */
  hold<T>(work: Promise<T>): Promise<T>;
  /**
   * Marks work in progress that waits on the clock (a running state of an execution): a served
   * virtual clock jumps ahead only while some demand is registered. Returns its release (idempotent).
   */
  demand?(): () => void;
  /**
   * An outside caller's request (the cloud's HTTP endpoint): a served virtual clock does not jump
   * while it runs, nor (unless it only `observe`s: Describe/Get/List) for a quiet window after it.
   */
  outside?<T>(work: Promise<T>, opts?: { observe?: boolean }): Promise<T>;
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
  setTimeout(fn: () => void, ms: number, _opts?: TimerOptions): TimerHandle {
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
  override setTimeout(fn: () => void, ms: number, opts?: TimerOptions): TimerHandle {
    return super.setTimeout(fn, ms / this.factor, opts);
  }
}

/** Cloud milliseconds per wall millisecond: the scale of a scaled clock, 1 for real and virtual ones. */
export function clockScale(clock: Clock): number {
  return clock instanceof ScaledClock ? clock.factor : 1;
}

interface VirtualTimer {
  id: number;
  at: number;
  seq: number;
  fn: () => void;
  awaitsOutside: boolean;
}

/** After an outside request, a served virtual clock waits this long (wall ms) before it jumps: the caller's next call usually follows at once. */
export const OUTSIDE_QUIET_MS = 250;

/** Default start of virtual time: a fixed instant so runs are reproducible. */
export const VIRTUAL_EPOCH = Date.parse("2026-01-05T09:00:00.000Z");

export class VirtualClock extends BaseClock implements Clock {
  readonly kind = "virtual" as const;
  private current: number;
  private seq = 0;
  private heap: VirtualTimer[] = [];
  private readonly live = new Set<number>();
  /** Live timers that end a wait on an outside caller (by id, with their instant). */
  private readonly outsideDeadlines = new Map<number, number>();
  private holds = 0;
  private scheduled = false;
  private disposed = false;
  /** Simulated milliseconds advanced by jumps so far (for speed-up figures). */
  advancedMs = 0;
  // ---- served mode (see serve())
  private served = false;
  /** Wall instant from which virtual time flows on from `current`. */
  private anchorWall = 0;
  private quietMs = OUTSIDE_QUIET_MS;
  private demands = 0;
  private outsideInFlight = 0;
  private quietUntilWall = 0;
  private wallTimer: NodeJS.Timeout | undefined;

  constructor(start: number = VIRTUAL_EPOCH) {
    super();
    this.current = start;
  }

  /**
   * Switches to the served rule, for a stack that outside callers reach over HTTP:
   *
   * 1. Time flows at least at wall speed: a timer nobody hurries is reached as on a real clock.
   * 2. It jumps straight to the next timer only when (a) nothing inside is runnable or held,
   *    (b) no outside request is in flight, and none that acts (anything but Describe/Get/List)
   *    ended in the last `quietMs` wall milliseconds (a caller polling for progress does not stop time),
   *    (c) some work in progress waits on the clock (`demand()`: a running state of an execution,
   *    not a callback task waiting for its token), and (d) the jump does not reach the deadline
   *    of a wait on an outside caller (`awaitsOutside` timers: the caller may still answer).
   *
   * So a stack left with only schedules idles (nothing demands time; schedules come due at wall
   * speed), and a task token stays answerable for its whole TimeoutSeconds.
   */
  serve(opts: { quietMs?: number } = {}): this {
    if (!this.served) {
      this.served = true;
      this.anchorWall = Date.now();
    }
    if (opts.quietMs !== undefined) this.quietMs = opts.quietMs;
    this.kick();
    return this;
  }

  get isServed(): boolean {
    return this.served;
  }

  now(): number {
    return this.served ? this.current + (Date.now() - this.anchorWall) : this.current;
  }

  setTimeout(fn: () => void, ms: number, opts?: TimerOptions): TimerHandle {
    const id = ++this.seq;
    // A timer runs in the async context it was set in, as Node's own timers do, not in that of
    // whoever made the clock jump: a Lambda whose call advanced time must not become the caller
    // of an engine step or a delivery that happens to fall due (the IAM authorizer reads it).
    fn = AsyncResource.bind(fn);
    const timer = { id, at: this.now() + Math.max(0, Math.floor(ms)), seq: id, fn, awaitsOutside: opts?.awaitsOutside === true };
    this.push(timer);
    this.live.add(id);
    if (timer.awaitsOutside) this.outsideDeadlines.set(id, timer.at);
    this.kick();
    return { id };
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle) {
      this.live.delete(handle.id);
      this.outsideDeadlines.delete(handle.id);
    }
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

  demand(): () => void {
    this.demands++;
    this.kick();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.demands--;
      this.kick();
    };
  }

  outside<T>(work: Promise<T>, opts: { observe?: boolean } = {}): Promise<T> {
    if (!this.served) return work;
    this.outsideInFlight++;
    const done = () => {
      this.outsideInFlight--;
      // A caller that only watches (polls) is waiting for time to pass; one that acted may act again.
      if (!opts.observe) this.quietUntilWall = Math.max(this.quietUntilWall, Date.now() + this.quietMs);
      this.kick();
    };
    work.then(done, done);
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
    this.outsideDeadlines.clear();
    if (this.wallTimer) globalThis.clearTimeout(this.wallTimer);
    this.wallTimer = undefined;
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
    if (this.disposed) return;
    if (this.served) return this.stepServed();
    if (this.holds > 0) return;
    // Fire every due timer at the earliest instant, then let the world settle again.
    const next = this.peekLive();
    if (!next) return;
    if (next.at > this.current) {
      this.advancedMs += next.at - this.current;
      this.current = next.at;
    }
    this.fireDue(this.current);
  }

  private stepServed(): void {
    const next = this.peekLive();
    if (!next) return;
    const now = this.now();
    if (next.at > now) {
      const wall = Date.now();
      const quiet = this.outsideInFlight === 0 && wall >= this.quietUntilWall;
      let deadline = Infinity;
      for (const at of this.outsideDeadlines.values()) deadline = Math.min(deadline, at);
      if (this.holds === 0 && quiet && this.demands > 0 && next.at < deadline) {
        this.advancedMs += next.at - now;
        this.current = next.at;
        this.anchorWall = wall;
      } else {
        // Wait in wall time until the timer comes due, or until the quiet window ends.
        let wait = next.at - now;
        if (this.outsideInFlight === 0 && wall < this.quietUntilWall) wait = Math.min(wait, this.quietUntilWall - wall);
        this.armWall(wait);
        return;
      }
    }
    this.fireDue(this.now());
  }

  private armWall(ms: number): void {
    if (this.wallTimer) globalThis.clearTimeout(this.wallTimer);
    this.wallTimer = globalThis.setTimeout(
      () => {
        this.wallTimer = undefined;
        this.kick();
      },
      Math.min(Math.max(1, Math.ceil(ms)), 2 ** 31 - 1),
    );
    // The clock alone never keeps the process alive (the server does).
    this.wallTimer.unref();
  }

  private fireDue(at: number): void {
    let next = this.peekLive();
    while (next && next.at <= at) {
      this.pop();
      this.outsideDeadlines.delete(next.id);
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
