// The control-room wall: boots, loads snapshots, follows /ws/, renders once per frame.
import { connect } from "./bms-realtime.js";
import { AuthRefused, TOPICS, TOPIC_PANELS, WallData } from "./wall-data.js";
import { clock, day, dayKey, knownZone, zoneLabel } from "./wall-format.js";
import {
  Board, awayLines, boardRows, eventLines, fitList, renderOffAir, serviceLines, shiftLines,
  tickOffAir,
} from "./wall-render.js";

const KEY_STORAGE = "bms.wall.key";
const SIDE_PANELS = ["shifts", "events", "away", "service"];
const REWINDOW_MS = 5 * 60 * 1000; // time windows (shifts, 12 h ahead, away today) move
const STATS_KEPT = 20000;

const params = new URLSearchParams(window.location.search);
const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** The key from `#key=` (then kept in local storage and removed from the address bar). */
function takeKey() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const given = fragment.get("key");
  if (given) {
    localStorage.setItem(KEY_STORAGE, given);
    fragment.delete("key");
    const rest = fragment.toString();
    history.replaceState(null, "", window.location.pathname + window.location.search + (rest ? "#" + rest : ""));
  }
  return localStorage.getItem(KEY_STORAGE);
}

const key = takeKey();
const site = params.get("location") ? Number(params.get("location")) : null;
const panels = new Set((params.get("panels") || ["board", "offair", ...SIDE_PANELS].join(",")).split(","));
const rotateMs = Math.max(3, Number(params.get("rotate")) || 10) * 1000;
if (params.get("theme") === "light") document.body.classList.add("light");

/** Numbers the benchmark and the browser tests read. */
const stats = {
  ready: false, state: "connecting", applied: 0, lastEventId: 0,
  /** @type {number[]} delivery-to-paint, ms */ paints: [],
  /** @type {number[]} commit-to-paint, ms (server and browser clocks) */ commits: [],
  /** @type {number[]} the wall's own work per drawn frame, ms */ renders: [],
};
/** @type {any} */ (window).__bmsWall = stats;

async function get(/** @type {string} */ path) {
  const headers = key ? { Authorization: "Bearer " + key } : undefined;
  const response = await fetch(path, { headers, credentials: "same-origin" });
  if (response.status === 401 || response.status === 403) throw new AuthRefused(path);
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

const data = new WallData(get);
const board = new Board($("board-rows"), $("board-more"), $("board-count"));
board.allSites = site == null;
/** @type {Set<string>} */
const dirty = new Set();
/** @type {number[]} receive times of events not yet painted */
let pending = [];
/** @type {number[]} commit times (epoch ms) of events not yet painted */
let pendingCommits = [];
let frameRequested = false;
let liveSince = Date.now();

function zone() {
  const asked = params.get("tz");
  if (knownZone(asked)) return /** @type {string} */ (asked);
  const location = site != null ? data.rows.locations.get(site) : null;
  if (location && knownZone(location.timezone)) return location.timezone;
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

function today() {
  return dayKey(zone(), new Date());
}

/** Mark panels to redraw at the next animation frame (many events, one layout). */
function invalidate(/** @type {Iterable<string>} */ names) {
  for (const name of names) dirty.add(name);
  if (!frameRequested) {
    frameRequested = true;
    requestAnimationFrame(render);
  }
}

function render() {
  frameRequested = false;
  const started = performance.now();
  let grow = false;
  const now = Date.now();
  const tz = zone();
  const names = data.names();
  if (dirty.has("site")) renderSite(tz);
  if (dirty.has("board") || dirty.has("offair")) {
    const rows = boardRows(data, site);
    if (panels.has("board")) {
      board.render(rows, data, names, now);
      if (board.grow) grow = true;
    }
    if (panels.has("offair")) renderOffAir($("offair"), rows, data, now);
  }
  if (dirty.has("shifts") && panels.has("shifts")) fitList($("shifts-body"), shiftLines(data, site, names, tz, now), "Nobody on shift");
  if (dirty.has("events") && panels.has("events")) fitList($("events-body"), eventLines(data, site, tz, now), "Nothing scheduled");
  if (dirty.has("away") && panels.has("away")) fitList($("away-body"), awayLines(data), "Nobody away");
  if (dirty.has("service") && panels.has("service")) fitList($("service-body"), serviceLines(data, site, today()), "Nothing due");
  dirty.clear();
  if (grow) invalidate(["board"]);
  stats.renders.push(performance.now() - started);
  if (stats.renders.length > STATS_KEPT) stats.renders.splice(0, stats.renders.length - STATS_KEPT);
  if (pending.length) {
    const received = pending;
    const committed = pendingCommits;
    pending = [];
    pendingCommits = [];
    // The frame after this one is painted with these changes: measure delivery to paint.
    requestAnimationFrame(() => {
      const painted = performance.now();
      const wall = Date.now();
      for (const at of received) stats.paints.push(painted - at);
      for (const at of committed) stats.commits.push(wall - at);
      for (const list of [stats.paints, stats.commits]) {
        if (list.length > STATS_KEPT) list.splice(0, list.length - STATS_KEPT);
      }
    });
  }
}

function renderSite(/** @type {string} */ tz) {
  const location = site != null ? data.rows.locations.get(site) : null;
  $("site-name").textContent = location ? location.name : site != null ? `Site ${site}` : "All sites";
  $("local-label").textContent = zoneLabel(tz);
}

function tick() {
  const now = new Date();
  const tz = zone();
  $("local-time").textContent = clock(tz, now);
  $("local-date").textContent = day(tz, now);
  $("utc-time").textContent = clock("UTC", now);
  board.tick(now.getTime(), data);
  tickOffAir($("offair"), now.getTime());
  if (stats.state !== "live") showState(stats.state);
}

function showState(/** @type {string} */ state) {
  stats.state = state;
  document.body.dataset.state = state;
  const conn = $("conn");
  conn.className = `conn ${state}`;
  document.body.classList.toggle("stale", state === "reconnecting" || state === "revoked");
  $("revoked").hidden = state !== "revoked";
  if (state === "revoked" && !key) {
    $("revoked").firstElementChild.textContent = "No access";
  }
  if (state === "live") conn.textContent = "● Live";
  else if (state === "reconnecting") conn.textContent = `Reconnecting — data as of ${clock(zone(), new Date(liveSince))}`;
  else if (state === "revoked") conn.textContent = key ? "Access revoked" : "No access";
  else conn.textContent = "Connecting…";
}

async function reload(/** @type {string[]} */ topics) {
  try {
    await data.load(topics, new Date(), today(), site == null ? "" : String(site));
    const affected = new Set(["site"]);
    for (const topic of topics) for (const panel of TOPIC_PANELS[topic] || []) affected.add(panel);
    invalidate(affected);
  } catch (error) {
    if (error instanceof AuthRefused) showState("revoked");
    else console.warn("wall: reload failed, kept the data we had", error);
  }
}

let first = true;
const realtime = connect({
  credential: key,
  maxDelayMs: 5000, // a control room wants the wall back within seconds of the server
  onWelcome: () => {
    if (first) {
      first = false;
      // After the welcome: the subscription replays from there, so nothing falls between.
      reload(TOPICS).then(() => {
        stats.ready = true;
        document.body.dataset.ready = "1"; // for tests: a selector, no script evaluation
        invalidate(["site", "board", "offair", ...SIDE_PANELS]);
      });
    }
  },
  onState: (state) => {
    if (stats.state === "live" && state !== "live") liveSince = Date.now();
    if (state === "closed") return;
    showState(state);
  },
  onResync: (topics) => reload(topics),
});
realtime.subscribe(TOPICS, {
  onEvent: (event) => {
    pending.push(performance.now());
    pendingCommits.push(Date.parse(event.at));
    stats.applied++;
    stats.lastEventId = event.id;
    if (event.topic === "time-off-requests") {
      reload(["time-off-requests"]);
      return;
    }
    invalidate(data.apply(event));
  },
});

// Small screens show one side panel at a time; the board pages through long lists.
function rotate() {
  if (board.next()) invalidate(["board"]);
  const shown = SIDE_PANELS.filter((name) => panels.has(name));
  if (document.body.classList.contains("compact") && shown.length) {
    const sections = [...document.querySelectorAll("#side .panel")];
    const current = sections.findIndex((s) => s.classList.contains("active"));
    sections.forEach((s) => s.classList.remove("active"));
    const candidates = sections.filter((s) => shown.includes(/** @type {HTMLElement} */ (s).dataset.panel || ""));
    const next = candidates[(candidates.indexOf(sections[current]) + 1) % candidates.length];
    next?.classList.add("active");
  }
}

function layout() {
  document.body.classList.toggle("compact", window.innerWidth < 1200);
  for (const section of document.querySelectorAll(".panel")) {
    const name = /** @type {HTMLElement} */ (section).dataset.panel || "";
    /** @type {HTMLElement} */ (section).hidden = !panels.has(name);
  }
  document.body.classList.toggle("no-side", !SIDE_PANELS.some((name) => panels.has(name)));
  invalidate(["board", "offair", ...SIDE_PANELS]);
}

document.body.classList.remove("starting");
layout();
if (document.body.classList.contains("compact")) rotate();
window.addEventListener("resize", layout);
new ResizeObserver(() => {
  board.fit = 0; // measure again from scratch
  invalidate(["board"]);
}).observe($("board-rows"));
tick();
setInterval(tick, 1000);
setInterval(rotate, rotateMs);
setInterval(() => reload(["shifts", "scheduled-events", "service-tickets", "time-off-requests"]), REWINDOW_MS);
