// The wall's data: REST snapshots merged with live events, newest representation wins.

export const OPEN_INCIDENT = ["open", "acknowledged", "in_progress"];
const OPEN_SERVICE = ["new", "assigned", "in_progress", "on_hold"];
const LIVE_SHIFT = ["scheduled", "confirmed"];
const PAGE = "page_size=200";
const AHEAD_MS = 12 * 3600 * 1000;

/** Topic → the panels its changes can alter. */
export const TOPIC_PANELS = {
  "incident-tickets": ["board", "offair"],
  "service-tickets": ["service"],
  shifts: ["shifts"],
  "scheduled-events": ["events"],
  facilities: ["board", "offair", "shifts", "events", "service"],
  locations: ["site", "shifts"],
  profiles: ["board", "shifts", "away"],
  "time-off-requests": ["away"],
};
export const TOPICS = Object.keys(TOPIC_PANELS);

/** Topic → the collection that holds its rows (time off is reloaded, names only). */
const COLLECTION = {
  "incident-tickets": "incidents",
  "service-tickets": "service",
  shifts: "shifts",
  "scheduled-events": "events",
  facilities: "facilities",
  locations: "locations",
  profiles: "profiles",
};

export class AuthRefused extends Error {}

export class WallData {
  /** @param {(path: string) => Promise<any>} get REST GET (throws AuthRefused on 401/403) */
  constructor(get) {
    this.get = get;
    /** @type {Record<string, Map<number, any>>} */
    this.rows = {
      incidents: new Map(), service: new Map(), shifts: new Map(), events: new Map(),
      facilities: new Map(), locations: new Map(), profiles: new Map(),
    };
    /** @type {{user: number, name: string}[]} */
    this.away = [];
    /** @type {Map<number, number>} incident id → when it appeared live (highlight) */
    this.fresh = new Map();
  }

  /** Every row of a list, following DRF's `next` links. @param {string} path */
  async all(path) {
    const out = [];
    let next = path;
    while (next) {
      const page = await this.get(next);
      out.push(...page.results);
      next = page.next ? new URL(page.next).pathname + new URL(page.next).search : null;
    }
    return out;
  }

  /** @param {string} collection @param {any[]} rows */
  replace(collection, rows) {
    const map = this.rows[collection];
    map.clear();
    for (const row of rows) map.set(row.id, row);
  }

  /** Load what `topics` show (everything when omitted). @param {string[]} [topics] */
  async load(topics = TOPICS, now = new Date(), awayDay = "", location = "") {
    const iso = (/** @type {number} */ ms) => new Date(ms).toISOString();
    const t = now.getTime();
    /** @type {Record<string, () => Promise<void>>} */
    const loaders = {
      locations: async () => this.replace("locations", await this.all(`/api/locations/?${PAGE}`)),
      facilities: async () => this.replace("facilities", await this.all(`/api/facilities/?${PAGE}`)),
      profiles: async () => this.replace("profiles", await this.all(`/api/profiles/?${PAGE}`)),
      "incident-tickets": async () => this.replace("incidents", await this.all(
        `/api/incident-tickets/?status=${OPEN_INCIDENT}&${PAGE}`)),
      "service-tickets": async () => this.replace("service", await this.all(
        `/api/service-tickets/?status=${OPEN_SERVICE}&due_before=${awayDay}&${PAGE}`)),
      shifts: async () => this.replace("shifts", await this.all(
        `/api/shifts/?status=${LIVE_SHIFT}&end_after=${enc(iso(t))}&start_before=${enc(iso(t + AHEAD_MS))}&${PAGE}`)),
      "scheduled-events": async () => this.replace("events", await this.all(
        `/api/scheduled-events/?start_after=${enc(iso(t - 2 * AHEAD_MS))}&start_before=${enc(iso(t + AHEAD_MS))}&${PAGE}`)),
      "time-off-requests": async () => {
        const where = location ? `&location=${location}` : "";
        this.away = (await this.get(`/api/away/?date=${awayDay}${where}`)).results;
      },
    };
    await Promise.all(topics.filter((topic) => loaders[topic]).map((topic) => loaders[topic]()));
  }

  /**
   * Merge one event; return the panels it may change. An older representation never
   * overwrites a newer one (a replay can overlap the snapshot).
   * @param {{topic: string, action: string, data: any}} event
   */
  apply(event) {
    const collection = COLLECTION[event.topic];
    if (!collection) return TOPIC_PANELS[event.topic] || [];
    const map = this.rows[collection];
    const id = event.data.id;
    if (event.action === "deleted") {
      map.delete(id);
    } else {
      const had = map.get(id);
      if (had && had.updated_at > event.data.updated_at) return [];
      map.set(id, event.data);
      if (event.topic === "incident-tickets" && event.action === "created") {
        this.fresh.set(id, Date.now());
      }
    }
    return TOPIC_PANELS[event.topic];
  }

  /** The site (location id) of a facility, or null. @param {number|null} facilityId */
  siteOf(facilityId) {
    if (facilityId == null) return null;
    return this.rows.facilities.get(facilityId)?.location ?? null;
  }

  /** @param {number|null} userId */
  nameOf(userId) {
    if (userId == null) return "";
    for (const profile of this.rows.profiles.values()) {
      if (profile.user === userId) return profile.full_name || profile.username;
    }
    return `#${userId}`;
  }

  /** Index profiles by user once per render. */
  names() {
    /** @type {Map<number, string>} */
    const names = new Map();
    for (const p of this.rows.profiles.values()) names.set(p.user, p.full_name || p.username);
    return names;
  }
}

/** @param {string} value */
function enc(value) {
  return encodeURIComponent(value);
}

export { AHEAD_MS, OPEN_SERVICE, LIVE_SHIFT };
