import type { TimerHandle } from "../../../../lib/clock.ts";
import type { Cloud } from "../../cloud.ts";
import type { Disks } from "./disk.ts";

/** The account that owns the public Amazon Linux images (`amazon` alias). */
export const AMAZON_OWNER_ID = "137112412989";

/** What the parts of the EC2 backend share: the cloud, ids, sequence numbers, disks and timers. */
export class Ec2Context {
  private counter = 0;
  private readonly timers = new Set<TimerHandle>();

  constructor(
    readonly cloud: Cloud,
    readonly disks: Disks,
  ) {}

  get accountId(): string {
    return this.cloud.accountId;
  }
  get region(): string {
    return this.cloud.region;
  }
  now(): Date {
    return this.cloud.clock.date();
  }

  /** `<prefix>-` + 17 hex from the seeded source, like current AWS resource ids. */
  id(prefix: string): string {
    return `${prefix}-${this.cloud.hex(17)}`;
  }

  /** Creation order, the key of every paginated listing. */
  seq(): number {
    return ++this.counter;
  }

  /** A duration setting (`ec2.<name>`), with `±jitter` from `ec2.<name>Jitter` when given. */
  duration(name: string, dflt: number, jitter = 0): number {
    const base = this.cloud.setting(`ec2.${name}`, dflt);
    return this.cloud.jitter(base, this.cloud.setting(`ec2.${name}Jitter`, jitter));
  }

  /** A timer on the cloud clock that `dispose()` clears. */
  after(ms: number, fn: () => void): TimerHandle {
    const h: TimerHandle = this.cloud.clock.setTimeout(() => {
      this.timers.delete(h);
      fn();
    }, ms);
    this.timers.add(h);
    return h;
  }

  cancel(h: TimerHandle | undefined): void {
    if (!h) return;
    this.cloud.clock.clearTimeout(h);
    this.timers.delete(h);
  }

  dispose(): void {
    for (const h of this.timers) this.cloud.clock.clearTimeout(h);
    this.timers.clear();
  }
}
