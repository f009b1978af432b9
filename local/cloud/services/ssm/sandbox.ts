/**
 * The Run Command sandbox: a script may write only inside its instance's directory. It runs in a
 * new user and mount namespace (util-linux `unshare`, no privileges needed where the kernel allows
 * unprivileged user namespaces, as Debian's does) in which every mount is remounted read-only except
 * a bind of the instance directory, then with every capability dropped (`setpriv`) so it cannot
 * remount anything back. It still reads what the user running kiln can read, shares the network
 * (the local cloud and the instances' apps are on loopback) and the process table; see
 * docs/local-cloud.md. Where namespaces are not available the setting `ssm.sandbox` decides:
 * `auto` (default) runs unsandboxed and says so once, `required` fails the command, `off` never
 * sandboxes.
 */
import { spawnSync } from "node:child_process";

export type SandboxMode = "auto" | "required" | "off";

/**
 * Runs inside the new namespaces: `$1` is the writable directory, `$2` the working directory,
 * the rest is bash's arguments. Paths in /proc/self/mountinfo escape spaces and the like as octal
 * (`\040`), which `printf %b` decodes. The cd comes after the mounts: a working directory opened
 * before them would still be on the read-only mount underneath the bind.
 */
const SETUP = `set -eu
sandbox="$1"; cwd="$2"; shift 2
mount --make-rprivate /
while read -r _ _ _ _ mp _; do
  mp=$(printf '%b' "$mp")
  case "$mp" in /proc|/proc/*|/sys|/sys/*) continue;; esac
  mount -o remount,bind,ro "$mp" 2>/dev/null || true
done < /proc/self/mountinfo
mount --bind "$sandbox" "$sandbox"
mount -o remount,bind,rw "$sandbox"
cd "$cwd"
exec setpriv --inh-caps=-all --bounding-set=-all --no-new-privs -- bash "$@"`;

let available: { ok: boolean; why?: string } | undefined;

/** Whether this machine can create the namespaces (probed once per process). */
export function sandboxAvailable(): { ok: boolean; why?: string } {
  if (!available) {
    const r = spawnSync("unshare", ["--user", "--map-root-user", "--mount", "setpriv", "--bounding-set=-all", "true"], {
      stdio: ["ignore", "ignore", "pipe"],
      timeout: 10_000,
    });
    available =
      r.status === 0
        ? { ok: true }
        : {
            ok: false,
            why: r.error
              ? `${r.error.message} (util-linux's unshare and setpriv are needed)`
              : `unshare --user --mount failed: ${String(r.stderr).trim() || `exit ${r.status}`} (unprivileged user namespaces are off: sysctl kernel.unprivileged_userns_clone=1, or a container that allows unshare)`,
          };
  }
  return available;
}

/** The command and arguments that run `bash <args>` in `cwd`, writing only under `writable`. */
export function sandboxed(writable: string, cwd: string, bashArgs: string[]): { command: string; args: string[] } {
  return {
    command: "unshare",
    args: ["--user", "--map-root-user", "--mount", "bash", "-c", SETUP, "kiln-sandbox", writable, cwd, ...bashArgs],
  };
}

const MODES: readonly SandboxMode[] = ["auto", "required", "off"];

/** The `ssm.sandbox` setting, checked: a typo must not silently turn the sandbox off. */
export function sandboxMode(value: unknown): SandboxMode {
  if (typeof value === "string" && (MODES as readonly string[]).includes(value)) return value as SandboxMode;
  throw new TypeError(`setting ssm.sandbox must be one of ${MODES.join(", ")}, not ${JSON.stringify(value)}`);
}
