/**
 * Filesystems of simulated images and instances: plain directories under the cloud's data dir.
 * A snapshot holds an image's root filesystem; an instance gets a private copy of it as `rootDir`.
 * Copies are synchronous: the trees are a handful of small files, and synchronous work needs no
 * clock hold.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, relative, sep } from "node:path";

/** Paths never captured into an image: `run/` is a tmpfs on Linux, so a reboot empties it. */
function volatile(rel: string): boolean {
  const parts = rel.split(sep);
  return (parts[0] === "run" || parts[0] === "tmp") && parts.length > 1 && basename(rel) !== ".keep";
}

export class Disks {
  /** The directory this backend created and owns. */
  readonly root: string;

  constructor(dataDir: string | undefined) {
    if (dataDir) mkdirSync(dataDir, { recursive: true });
    this.root = mkdtempSync(join(dataDir ?? tmpdir(), dataDir ? "ec2-" : "kiln-ec2-"));
    mkdirSync(join(this.root, "snapshots"));
    mkdirSync(join(this.root, "instances"));
  }

  snapshotDir(id: string): string {
    return join(this.root, "snapshots", id);
  }

  instanceDir(id: string): string {
    return join(this.root, "instances", id);
  }

  /** Copies a filesystem tree (a template, a snapshot or a live instance). */
  copy(from: string, to: string, opts: { skipVolatile?: boolean } = {}): void {
    cpSync(from, to, {
      recursive: true,
      filter: opts.skipVolatile ? (src) => !volatile(relative(from, src)) : undefined,
    });
  }

  remove(dir: string): void {
    rmSync(dir, { recursive: true, force: true });
  }

  /** Removes everything this backend created. */
  dispose(): void {
    this.remove(this.root);
  }
}
