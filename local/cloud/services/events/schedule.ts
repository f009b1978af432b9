/**
 * Schedule expressions shared by EventBridge scheduled rules and EventBridge Scheduler:
 * `rate(value unit)`, `cron(minutes hours day-of-month month day-of-week year)` and, for Scheduler
 * only, `at(yyyy-mm-ddThh:mm:ss)`. Cron and at are evaluated in wall-clock time of a time zone
 * (UTC for rules; `ScheduleExpressionTimezone` for Scheduler) and converted to instants.
 *
 * Cron follows the AWS dialect: six fields; exactly one of day-of-month and day-of-week is `?`;
 * day-of-week counts 1 = SUN … 7 = SAT; names `JAN`–`DEC` and `SUN`–`SAT`; `*`, `,`, `-`, `/`;
 * `L` and `W` in day-of-month (`L`, `L-n`, `nW`, `LW`); `L` and `#` in day-of-week (`nL`, `n#k`).
 */

export class InvalidScheduleError extends Error {
  override readonly name = "InvalidScheduleError";
}

export type ParsedSchedule =
  | { kind: "rate"; text: string; everyMs: number }
  | { kind: "cron"; text: string; cron: Cron }
  | { kind: "at"; text: string; /** wall-clock time as if it were UTC epoch ms */ wall: number };

interface Cron {
  minutes: number[];
  hours: number[];
  months: Set<number>;
  years: Set<number> | undefined; // undefined = every year
  day: (y: number, m: number, d: number) => boolean;
}

const MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MINUTE = 60_000;
const DAY = 86_400_000;
/** How far ahead a cron is searched before concluding it never fires again. */
const SEARCH_DAYS = 366 * 8;

/** Parses a schedule expression; `at()` only when `allowAt` (Scheduler). */
export function parseSchedule(text: string, opts: { allowAt?: boolean } = {}): ParsedSchedule {
  const s = text.trim();
  let m = /^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$/.exec(s);
  if (m) {
    const n = Number(m[1]);
    const unit = m[2]!;
    if (n < 1) throw new InvalidScheduleError(`rate value must be positive in ${s}`);
    // AWS insists on the singular unit for 1 and the plural otherwise.
    if ((n === 1) !== !unit.endsWith("s"))
      throw new InvalidScheduleError(`rate unit must be ${n === 1 ? "singular" : "plural"} for ${n} in ${s}`);
    const per = unit.startsWith("minute") ? MINUTE : unit.startsWith("hour") ? 60 * MINUTE : DAY;
    return { kind: "rate", text: s, everyMs: n * per };
  }
  m = /^cron\((.*)\)$/.exec(s);
  if (m) return { kind: "cron", text: s, cron: parseCron(m[1]!.trim(), s) };
  m = /^at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)$/.exec(s);
  if (m && opts.allowAt) {
    const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
    const wall = Date.UTC(y, mo - 1, d, h, mi, se);
    const back = new Date(wall);
    if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || se > 59)
      throw new InvalidScheduleError(`invalid date in ${s}`);
    return { kind: "at", text: s, wall };
  }
  throw new InvalidScheduleError(`invalid schedule expression ${s}`);
}

/**
 * The first firing instant strictly after `afterMs` (epoch ms), or undefined when there is none
 * (an `at` in the past, a cron whose years are over). `anchorMs` is where a rate counts from
 * (creation or start date): it fires at anchor + k × rate, k ≥ 1.
 */
export function nextFireTime(
  s: ParsedSchedule,
  afterMs: number,
  opts: { timezone?: string; anchorMs?: number } = {},
): number | undefined {
  const tz = opts.timezone;
  if (s.kind === "rate") {
    const anchor = opts.anchorMs ?? afterMs;
    const k = Math.max(1, Math.floor((afterMs - anchor) / s.everyMs) + 1);
    return anchor + k * s.everyMs;
  }
  if (s.kind === "at") {
    const t = wallToUtc(s.wall, tz);
    return t > afterMs ? t : undefined;
  }
  const c = s.cron;
  const startWall = Math.floor(utcToWall(afterMs, tz) / MINUTE) * MINUTE + MINUTE;
  let dayStart = Math.floor(startWall / DAY) * DAY;
  for (let i = 0; i < SEARCH_DAYS; i++, dayStart += DAY) {
    const d = new Date(dayStart);
    const y = d.getUTCFullYear();
    const mo = d.getUTCMonth() + 1;
    const dd = d.getUTCDate();
    if (c.years && !c.years.has(y)) continue;
    if (!c.months.has(mo) || !c.day(y, mo, dd)) continue;
    for (const h of c.hours) {
      for (const mi of c.minutes) {
        const wall = dayStart + h * 3_600_000 + mi * MINUTE;
        if (wall < startWall) continue;
        const t = wallToUtc(wall, tz);
        if (t > afterMs) return t;
      }
    }
  }
  return undefined;
}

/** Throws unless `tz` is an IANA time zone the runtime knows. */
export function checkTimezone(tz: string): void {
  try {
    formatter(tz);
  } catch {
    throw new InvalidScheduleError(`invalid time zone ${tz}`);
  }
}

function parseCron(body: string, text: string): Cron {
  const f = body.split(/\s+/);
  if (f.length !== 6)
    throw new InvalidScheduleError(`cron needs 6 fields (minutes hours day-of-month month day-of-week year) in ${text}`);
  const [min, hour, dom, mon, dow, year] = f as [string, string, string, string, string, string];
  if ((dom === "?") === (dow === "?")) {
    throw new InvalidScheduleError(`exactly one of day-of-month and day-of-week must be '?' in ${text}`);
  }
  const minutes = [...field(min, 0, 59, text)].sort((a, b) => a - b);
  const hours = [...field(hour, 0, 23, text)].sort((a, b) => a - b);
  const months = field(mon, 1, 12, text, MONTHS);
  const years = year === "*" ? undefined : field(year, 1970, 2199, text);
  const day = dom !== "?" ? domMatcher(dom, text) : dowMatcher(dow, text);
  return { minutes, hours, months, years, day };
}

/** A plain field (`*`, `a`, `a-b`, `a/s`, `*\/s`, `a-b/s`, lists of those) to its set of values. */
function field(spec: string, lo: number, hi: number, text: string, names?: string[]): Set<number> {
  const out = new Set<number>();
  const val = (v: string): number => {
    const idx = names ? names.indexOf(v.toUpperCase()) : -1;
    const n = idx >= 0 ? idx + lo : /^\d+$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isInteger(n) || n < lo || n > hi)
      throw new InvalidScheduleError(`value ${v} out of range ${lo}-${hi} in ${text}`);
    return n;
  };
  for (const part of spec.split(",")) {
    const [range = "", stepText] = part.split("/");
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw new InvalidScheduleError(`invalid step in ${text}`);
    let a: number;
    let b: number;
    if (range === "*") [a, b] = [lo, hi];
    else if (range.includes("-")) {
      const [x, y] = range.split("-");
      a = val(x ?? "");
      b = val(y ?? "");
    } else {
      a = val(range);
      b = stepText === undefined ? a : hi;
    }
    if (a <= b) for (let v = a; v <= b; v += step) out.add(v);
    else {
      // Wrapping ranges (FRI-MON, NOV-FEB) run to the end of the field and start over.
      const span = hi - lo + 1;
      for (let k = 0; k <= b + span - a; k += step) out.add(((a - lo + k) % span) + lo);
    }
  }
  return out;
}

function daysIn(y: number, m: number): number {
  return new Date(Date.UTC(y, m, 0)).getUTCDate();
}
function weekday(y: number, m: number, d: number): number {
  return new Date(Date.UTC(y, m - 1, d)).getUTCDay(); // 0 = Sunday
}

function domMatcher(spec: string, text: string): Cron["day"] {
  if (spec === "L") return (y, m, d) => d === daysIn(y, m);
  let mm = /^L-(\d{1,2})$/.exec(spec);
  if (mm) {
    const off = Number(mm[1]);
    return (y, m, d) => d === daysIn(y, m) - off;
  }
  if (spec === "LW") {
    return (y, m, d) => {
      let last = daysIn(y, m);
      while (weekday(y, m, last) === 0 || weekday(y, m, last) === 6) last--;
      return d === last;
    };
  }
  mm = /^(\d{1,2})W$/.exec(spec);
  if (mm) {
    const target = Number(mm[1]);
    if (target < 1 || target > 31) throw new InvalidScheduleError(`invalid day-of-month ${spec} in ${text}`);
    // The weekday nearest to the given day, without leaving the month.
    return (y, m, d) => {
      const n = daysIn(y, m);
      const t = Math.min(target, n);
      const wd = weekday(y, m, t);
      let day = t;
      if (wd === 6) day = t === 1 ? 3 : t - 1;
      else if (wd === 0) day = t === n ? t - 2 : t + 1;
      return d === day;
    };
  }
  const days = field(spec, 1, 31, text);
  return (_y, _m, d) => days.has(d);
}

function dowMatcher(spec: string, text: string): Cron["day"] {
  const dayNum = (v: string): number => {
    const idx = DAYS.indexOf(v.toUpperCase());
    const n = idx >= 0 ? idx + 1 : /^\d$/.test(v) ? Number(v) : Number.NaN;
    if (!(n >= 1 && n <= 7)) throw new InvalidScheduleError(`invalid day-of-week ${v} in ${text}`);
    return n;
  };
  let mm = /^([A-Za-z]{3}|\d)#([1-5])$/.exec(spec);
  if (mm) {
    const want = dayNum(mm[1]!) - 1;
    const nth = Number(mm[2]);
    return (y, m, d) => weekday(y, m, d) === want && Math.ceil(d / 7) === nth;
  }
  mm = /^([A-Za-z]{3}|\d)?L$/.exec(spec);
  if (mm) {
    // `L` alone is the last day of the week (Saturday); `nL` the last such weekday of the month.
    if (!mm[1]) return (y, m, d) => weekday(y, m, d) === 6;
    const want = dayNum(mm[1]) - 1;
    return (y, m, d) => weekday(y, m, d) === want && d + 7 > daysIn(y, m);
  }
  const days = field(spec, 1, 7, text, DAYS);
  return (y, m, d) => days.has(weekday(y, m, d) + 1);
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(tz, f);
  }
  return f;
}

function isUtc(tz: string | undefined): boolean {
  return !tz || tz === "UTC" || tz === "Etc/UTC" || tz === "GMT";
}

/** Offset (wall − UTC) of `tz` at instant `utcMs`. */
function offset(utcMs: number, tz: string): number {
  const parts = formatter(tz).formatToParts(new Date(utcMs));
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  const wall = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
  return wall - Math.floor(utcMs / 1000) * 1000;
}

export function utcToWall(utcMs: number, tz?: string): number {
  return isUtc(tz) ? utcMs : utcMs + offset(utcMs, tz!);
}

/**
 * The instant a wall-clock time denotes. In a daylight-saving gap the time does not exist and
 * lands one offset-change later; in an overlap the earlier instant is taken only when both guesses
 * agree (AWS documents neither case precisely).
 */
export function wallToUtc(wall: number, tz?: string): number {
  if (isUtc(tz)) return wall;
  const guess = wall - offset(wall, tz!);
  return wall - offset(guess, tz!);
}
