/**
 * Filesystems of simulated images and instances: plain directories under the cloud's data dir.
 * A snapshot holds an image's root filesystem; an instance gets a private copy of it as `rootDir`.
 *
 * Performance (a benchmark launches 1,000 instances): copies are synchronous writes of a tree
 * cached in memory (snapshots never change); removals are asynchronous and held on the clock, so
 * a virtual clock sees them finish before it moves on. Without a data dir the trees live on
 * /dev/shm when there is one: on disks mounted with online discard, deleting thousands of tiny
 * files takes seconds.
 */
import {
  accessSync,
  constants,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Top-level directories never captured into an image: tmpfs on Linux, emptied by a reboot. */
const VOLATILE = new Set(["run", "tmp"]);

type Entry =
  | { rel: string; kind: "dir"; mode: number }
  | { rel: string; kind: "file"; mode: number; data: Buffer }
  | { rel: string; kind: "link"; target: string };

function scratchRoot(): string {
  try {
    accessSync("/dev/shm", constants.W_OK);
    return "/dev/shm";
  } catch {
    return tmpdir();
  }
}

export class Disks {
  /** The directory this backend created and owns. */
  readonly root: string;
  private readonly trees = new Map<string, Entry[]>();
  private readonly removals = new Set<Promise<void>>();

  constructor(
    dataDir: string | undefined,
    private readonly hold: <T>(work: Promise<T>) => Promise<T> = (w) => w,
  ) {
    if (dataDir) mkdirSync(dataDir, { recursive: true });
    this.root = mkdtempSync(join(dataDir ?? scratchRoot(), dataDir ? "ec2-" : "kiln-ec2-"));
    mkdirSync(join(this.root, "snapshots"));
    mkdirSync(join(this.root, "instances"));
  }

  snapshotDir(id: string): string {
    return join(this.root, "snapshots", id);
  }

  instanceDir(id: string): string {
    return join(this.root, "instances", id);
  }

  /**
   * Copies a filesystem tree. `immutable` sources (templates, snapshots) are read once and
   * cached; `skipVolatile` leaves out `run/` and `tmp/` (what an image does not capture).
   */
  copy(from: string, to: string, opts: { immutable?: boolean; skipVolatile?: boolean } = {}): void {
    let entries = opts.immutable ? this.trees.get(from) : undefined;
    if (!entries) {
      entries = scan(from, opts.skipVolatile ?? false);
      if (opts.immutable) this.trees.set(from, entries);
    }
    mkdirSync(to, { recursive: true });
    for (const e of entries) {
      const dest = join(to, e.rel);
      if (e.kind === "dir") mkdirSync(dest, { mode: e.mode });
      else if (e.kind === "file") writeFileSync(dest, e.data, { mode: e.mode });
      else symlinkSync(e.target, dest);
    }
  }

  /** Removes a tree without blocking the event loop (the clock holds until it is gone). */
  remove(dir: string): void {
    this.trees.delete(dir);
    const p = this.hold(rm(dir, { recursive: true, force: true }).catch(() => undefined));
    this.removals.add(p);
    void p.finally(() => this.removals.delete(p));
  }

  /** Removes everything this backend created. */
  async dispose(): Promise<void> {
    await Promise.all(this.removals);
    await rm(this.root, { recursive: true, force: true });
  }
}

/** Lists a tree (parents before children) with the content of every file. */
function scan(root: string, skipVolatile: boolean): Entry[] {
  const out: Entry[] = [];
  const walk = (rel: string) => {
    for (const d of readdirSync(join(root, rel), { withFileTypes: true })) {
      if (skipVolatile && rel === "" && VOLATILE.has(d.name)) continue;
      const r = rel ? join(rel, d.name) : d.name;
      const abs = join(root, r);
      if (d.isSymbolicLink()) out.push({ rel: r, kind: "link", target: readlinkSync(abs) });
      else if (d.isDirectory()) {
        out.push({ rel: r, kind: "dir", mode: lstatSync(abs).mode & 0o7777 });
        walk(r);
      } else if (d.isFile()) out.push({ rel: r, kind: "file", mode: lstatSync(abs).mode & 0o7777, data: readFileSync(abs) });
    }
  };
  walk("");
  return out;
}
