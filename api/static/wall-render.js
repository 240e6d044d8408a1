// Panel renderers: plain DOM, text only (never innerHTML), rows reused by id.
import { OPEN_INCIDENT, LIVE_SHIFT, OPEN_SERVICE, AHEAD_MS } from "./wall-data.js";
import { age, hm } from "./wall-format.js";

const PRIORITY_RANK = { critical: 0, high: 1, medium: 2, low: 3 };
const STATUS_LABEL = { open: "Open", acknowledged: "Acknowledged", in_progress: "In progress" };
export const HIGHLIGHT_MS = 8000;
const MAX_ROWS = 40; // more than any screen fits: the rest are cut by measurement
const SPARE_ROWS = 3;

/** @param {string} tag @param {string} [className] @param {string} [text] */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Set text only when it changed (keeps style recalculation to what moved). */
function setText(/** @type {Element} */ node, /** @type {string} */ text) {
  if (node.textContent !== text) node.textContent = text;
}

/**
 * The view of the data for one site: which rows each panel shows.
 * @param {import("./wall-data.js").WallData} data
 * @param {number|null} site
 */
export function inSite(data, site) {
  return (/** @type {number|null} */ facility) =>
    site == null || facility == null || data.siteOf(facility) === site;
}

/** ISO timestamps in UTC sort as strings; plain comparison, not locale collation (hot path). */
function compare(/** @type {string} */ a, /** @type {string} */ b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Open incidents, most urgent first: priority, then the oldest. */
export function boardRows(data, site) {
  const here = inSite(data, site);
  return [...data.rows.incidents.values()]
    .filter((i) => OPEN_INCIDENT.includes(i.status) && here(i.facility))
    .sort((a, b) => (PRIORITY_RANK[a.priority] ?? 9) - (PRIORITY_RANK[b.priority] ?? 9)
      || compare(a.occurred_at, b.occurred_at) || a.id - b.id);
}

export class Board {
  /** @param {HTMLElement} rows @param {HTMLElement} more @param {HTMLElement} count */
  constructor(rows, more, count) {
    this.rowsEl = rows;
    this.moreEl = more;
    this.countEl = count;
    /** @type {Map<number, {row: HTMLElement, cells: Record<string, HTMLElement>, since: number}>} */
    this.shown = new Map();
    this.start = 0; // index of the first row shown (pages turn by what fitted)
    this.fit = 0;
    this.total = 0;
    this.grow = false;
    this.allSites = true; // prefix facilities with their site's code
    this.header = this._header();
    rows.append(this.header);
  }

  _header() {
    const row = el("div", "row head");
    row.setAttribute("role", "row");
    const titles = [["number", "Number"], ["priority", "Priority · status"], ["title", "Title · facility · assignee"], ["age", "Age"]];
    for (const [name, title] of titles) {
      const cell = el("div", `cell ${name}`, title);
      cell.setAttribute("role", "columnheader");
      row.append(cell);
    }
    return row;
  }

  /**
   * Show the rows from `start` that fit whole (titles may take two lines, so the number
   * that fits is measured, not computed); the rest wait for the next page.
   * @param {any[]} incidents @param {import("./wall-data.js").WallData} data @param {Map<number,string>} names
   */
  render(incidents, data, names, now = Date.now()) {
    const total = incidents.length;
    if (this.start >= total) this.start = 0;
    // Build only a few rows more than fitted last time (all of them after a resize).
    const want = this.fit > 0 ? this.fit + SPARE_ROWS : MAX_ROWS;
    const candidates = incidents.slice(this.start, this.start + want);
    const keep = new Set(candidates.map((i) => i.id));
    for (const [id, entry] of this.shown) {
      if (!keep.has(id)) {
        entry.row.remove();
        this.shown.delete(id);
      }
    }
    let previous = this.header;
    for (const incident of candidates) {
      const entry = this.shown.get(incident.id) || this._row(incident.id);
      this._fill(entry, incident, data, names, now);
      if (previous.nextSibling !== entry.row) previous.after(entry.row);
      previous = entry.row;
    }
    // One layout read per frame, after every write: which rows end inside the board.
    const limit = this.rowsEl.clientHeight;
    let fit = 0;
    candidates.forEach((incident, index) => {
      const row = /** @type {{row: HTMLElement}} */ (this.shown.get(incident.id)).row;
      const inside = fit === index && row.offsetTop + row.offsetHeight <= limit;
      row.classList.toggle("cut", !inside);
      if (inside) fit++;
    });
    this.fit = Math.max(1, fit);
    this.total = total;
    // Every candidate fitted and more wait, or far more were built than fit (after a
    // resize): draw again next frame with a better guess.
    this.grow = (fit === candidates.length && this.start + fit < total)
      || candidates.length > this.fit + SPARE_ROWS;
    setText(this.countEl, String(total));
    const more = total - fit;
    setText(this.moreEl, more > 0 ? `+${more} more · showing ${this.start + 1}–${this.start + fit} of ${total}` : "");
  }

  /** Turn the page; false when everything fits on one. */
  next() {
    if (this.fit >= this.total) return false;
    this.start = this.start + this.fit >= this.total ? 0 : this.start + this.fit;
    return true;
  }

  /** @param {number} id */
  _row(id) {
    const row = el("div", "row");
    row.setAttribute("role", "row");
    row.dataset.id = String(id);
    /** @type {Record<string, HTMLElement>} */
    const cells = {};
    for (const name of ["number", "priority", "title", "age", "status", "where"]) {
      cells[name] = el("div", `cell ${name}`);
      cells[name].setAttribute("role", "cell");
      row.append(cells[name]);
    }
    const entry = { row, cells, since: 0 };
    this.shown.set(id, entry);
    return entry;
  }

  _fill(entry, incident, data, names, now) {
    const { row, cells } = entry;
    setText(cells.number, incident.number);
    setText(cells.priority, incident.priority.toUpperCase());
    cells.priority.className = `cell priority p-${incident.priority}`;
    setText(cells.title, incident.title);
    cells.title.title = incident.title;
    const facility = data.rows.facilities.get(incident.facility);
    const location = facility && data.rows.locations.get(facility.location);
    const code = location && this.allSites ? location.code + " · " : "";
    const assignee = incident.assigned_to ? names.get(incident.assigned_to) || "" : "unassigned";
    setText(cells.where, `${facility ? code + facility.name : "No facility"} · ${assignee}`);
    setText(cells.status, STATUS_LABEL[incident.status] || incident.status);
    cells.status.className = `cell status s-${incident.status}`;
    cells.age.dataset.since = incident.occurred_at;
    setText(cells.age, age(now - Date.parse(incident.occurred_at)));
    const fresh = data.fresh.get(incident.id);
    row.classList.toggle("fresh", fresh !== undefined && now - fresh < HIGHLIGHT_MS);
    row.classList.toggle("on-air", Boolean(incident.on_air_impact));
    if (row.dataset.priority !== incident.priority) {
      row.classList.remove(`pr-${row.dataset.priority}`);
      row.classList.add(`pr-${incident.priority}`);
      row.dataset.priority = incident.priority;
    }
  }

  /** Once a second: only the counters and expired highlights change. */
  tick(now, data) {
    for (const [id, entry] of this.shown) {
      setText(entry.cells.age, age(now - Date.parse(entry.cells.age.dataset.since || "")));
      const fresh = data.fresh.get(id);
      if (fresh !== undefined && now - fresh >= HIGHLIGHT_MS) {
        entry.row.classList.remove("fresh");
        data.fresh.delete(id);
      }
    }
  }
}

/** The off-air banners: every open incident with on-air impact. */
export function renderOffAir(section, incidents, data, now = Date.now()) {
  const onAir = incidents.filter((i) => i.on_air_impact);
  section.hidden = onAir.length === 0;
  const items = onAir.map((incident) => {
    const facility = data.rows.facilities.get(incident.facility);
    const banner = el("div", "banner");
    banner.dataset.id = String(incident.id);
    banner.append(
      el("span", "tag", "OFF AIR"),
      el("span", "facility", facility ? facility.name : "Unknown facility"),
      el("span", "title", incident.title),
    );
    const counter = el("span", "counter", age(now - Date.parse(incident.occurred_at)));
    counter.dataset.since = incident.occurred_at;
    banner.append(counter);
    return banner;
  });
  section.replaceChildren(...items);
}

/** @param {HTMLElement} section */
export function tickOffAir(section, now = Date.now()) {
  for (const counter of section.querySelectorAll(".counter")) {
    const since = /** @type {HTMLElement} */ (counter).dataset.since || "";
    setText(counter, age(now - Date.parse(since)));
  }
}

/** Fill a side panel with lines, then show "+N more" for those that do not fit. */
export function fitList(body, lines, empty) {
  if (lines.length === 0) {
    body.replaceChildren(el("div", "empty", empty));
    return;
  }
  body.replaceChildren(...lines);
  const limit = body.clientHeight;
  let hidden = 0;
  for (let i = lines.length - 1; i > 0 && body.scrollHeight > limit; i--) {
    lines[i].remove();
    hidden++;
    if (i === lines.length - 1 || hidden === 1) body.append(el("div", "more", ""));
    const more = /** @type {HTMLElement} */ (body.lastElementChild);
    more.textContent = `+${hidden} more`;
  }
}

/** On shift now, per site, and each site's next handover. */
export function shiftLines(data, site, names, tz, now = Date.now()) {
  const here = inSite(data, site);
  /** @type {Map<number|null, {now: any[], next: number}>} */
  const bySite = new Map();
  for (const shift of data.rows.shifts.values()) {
    if (!LIVE_SHIFT.includes(shift.status) || !here(shift.facility)) continue;
    const start = Date.parse(shift.start);
    const end = Date.parse(shift.end);
    if (end <= now || start > now + AHEAD_MS) continue;
    const key = data.siteOf(shift.facility);
    const group = bySite.get(key) || { now: [], next: Infinity };
    bySite.set(key, group);
    if (start <= now) {
      group.now.push(shift);
      group.next = Math.min(group.next, end);
    } else {
      group.next = Math.min(group.next, start);
    }
  }
  const lines = [];
  const sites = [...bySite.keys()].sort((a, b) => siteName(data, a).localeCompare(siteName(data, b)));
  for (const key of sites) {
    const group = bySite.get(key);
    const head = el("div", "group");
    head.append(el("span", "name", siteName(data, key)));
    if (group.next !== Infinity) head.append(el("span", "handover", `next handover ${hm(tz, new Date(group.next))}`));
    lines.push(head);
    group.now.sort((a, b) => compare(a.end, b.end));
    for (const shift of group.now) {
      lines.push(twoLines(
        names.get(shift.user) || `#${shift.user}`,
        `until ${hm(tz, new Date(shift.end))}`,
        shift.position,
      ));
    }
    if (group.now.length === 0) lines.push(el("div", "line quiet", "nobody on shift"));
  }
  return lines;
}

/** A side-panel entry: the main text and a time on the first line, details on the second. */
function twoLines(/** @type {string} */ main, /** @type {string} */ when, /** @type {string} */ sub, className = "line two") {
  const line = el("div", className);
  line.append(el("span", "who", main), el("span", "when", when), el("span", "what", sub));
  return line;
}

function siteName(data, locationId) {
  return locationId == null ? "Other" : data.rows.locations.get(locationId)?.name || `Site ${locationId}`;
}

/** Scheduled events running now or starting within 12 hours. */
export function eventLines(data, site, tz, now = Date.now()) {
  const here = inSite(data, site);
  return [...data.rows.events.values()]
    .filter((e) => here(e.facility) && Date.parse(e.end) > now && Date.parse(e.start) <= now + AHEAD_MS)
    .sort((a, b) => compare(a.start, b.start) || a.id - b.id)
    .map((event) => {
      const start = Date.parse(event.start);
      const facility = data.rows.facilities.get(event.facility);
      const kind = event.kind.charAt(0).toUpperCase() + event.kind.slice(1);
      return twoLines(
        event.title,
        start <= now ? "now" : hm(tz, new Date(start)),
        facility ? `${kind} · ${facility.name}` : kind,
      );
    });
}

/** Away today: names only. */
export function awayLines(data) {
  return data.away.map((person) => el("div", "line", person.name));
}

/** Service tickets due today (site date) or overdue, the most overdue first. */
export function serviceLines(data, site, today) {
  const here = inSite(data, site);
  return [...data.rows.service.values()]
    .filter((t) => OPEN_SERVICE.includes(t.status) && t.due_date && t.due_date <= today && here(t.facility))
    .sort((a, b) => compare(a.due_date, b.due_date) || a.id - b.id)
    .map((ticket) => {
      const overdue = ticket.due_date < today;
      const facility = data.rows.facilities.get(ticket.facility);
      return twoLines(
        ticket.title,
        overdue ? "OVERDUE" : "TODAY",
        `${ticket.number}${facility ? " · " + facility.name : ""} · due ${ticket.due_date}`,
        overdue ? "line two overdue" : "line two",
      );
    });
}
