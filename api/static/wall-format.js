// Time formatting for the wall: clocks per IANA zone, day keys, counters.

/** @type {Map<string, Intl.DateTimeFormat>} */
const formats = new Map();

/** @param {string} key @param {() => Intl.DateTimeFormat} make */
function cached(key, make) {
  let format = formats.get(key);
  if (!format) {
    format = make();
    formats.set(key, format);
  }
  return format;
}

/** "14:02:11" in `tz`. @param {string} tz @param {Date} when */
export function clock(tz, when) {
  return cached("c" + tz, () => new Intl.DateTimeFormat("en-GB", {
    timeZone: tz, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  })).format(when);
}

/** "14:02" in `tz`. @param {string} tz @param {Date} when */
export function hm(tz, when) {
  return cached("h" + tz, () => new Intl.DateTimeFormat("en-GB", {
    timeZone: tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  })).format(when);
}

/** "Thu 3 Dec" in `tz`. @param {string} tz @param {Date} when */
export function day(tz, when) {
  return cached("d" + tz, () => new Intl.DateTimeFormat("en-GB", {
    timeZone: tz, weekday: "short", day: "numeric", month: "short",
  })).format(when);
}

/** "2026-12-03": the calendar date in `tz`. @param {string} tz @param {Date} when */
export function dayKey(tz, when) {
  return cached("k" + tz, () => new Intl.DateTimeFormat("en-CA", {
    timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit",
  })).format(when);
}

/** "Europe/London · GMT": the zone's name and its current abbreviation. @param {string} tz */
export function zoneLabel(tz, when = new Date()) {
  const parts = cached("z" + tz, () => new Intl.DateTimeFormat("en-GB", {
    timeZone: tz, timeZoneName: "short",
  })).formatToParts(when);
  const short = parts.find((p) => p.type === "timeZoneName")?.value;
  const name = tz.replaceAll("_", " ");
  return short && short !== tz ? `${name} · ${short}` : name;
}

/** A counting age: "42s", "12:04", "3:12:04", "2d 04h". @param {number} ms */
export function age(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const s = total % 60;
  const m = Math.floor(total / 60) % 60;
  const h = Math.floor(total / 3600);
  if (total < 60) return `${s}s`;
  if (h === 0) return `${m}:${pad(s)}`;
  if (h < 48) return `${h}:${pad(m)}:${pad(s)}`;
  return `${Math.floor(h / 24)}d ${pad(h % 24)}h`;
}

/** @param {number} n */
function pad(n) {
  return String(n).padStart(2, "0");
}

/** Is `tz` a zone this browser knows? @param {string|null} tz */
export function knownZone(tz) {
  if (!tz) return false;
  try {
    new Intl.DateTimeFormat("en-GB", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
