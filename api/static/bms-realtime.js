// bms-realtime.js: the browser client for BMS's /ws/ (ES module, no dependencies).
// Served by BMS at /static/bms-realtime.js. See docs/browser-client.md.

/**
 * @typedef {"created"|"updated"|"deleted"} Action
 * @typedef {{type: "event", id: number, topic: string, action: Action, data: any, at: string}} BmsEvent
 * @typedef {"connecting"|"live"|"reconnecting"|"revoked"|"closed"} State
 * @typedef {{since?: number|null, lastEventId: number, delayMs?: number, code?: number}} StateInfo
 * @typedef {string | null | (() => (string | null | Promise<string | null>))} Credential
 *   An API key (`bms_…`) or access token, or a function returning the current one (called on
 *   every connection, so a renewed credential is picked up). null: the session cookie.
 * @typedef {object} ConnectOptions
 * @property {string} [url] WebSocket URL; default: this page's origin + "/ws/".
 * @property {Credential} [credential] How to authenticate; default: the session cookie.
 * @property {(state: State, info: StateInfo) => void} [onState] Connection state changes.
 * @property {(topics: string[]) => void} [onResync] The server no longer holds the events
 *   missed on these topics: refetch them over REST (the subscription continues live).
 * @property {(welcome: any) => void} [onWelcome] Each connection's welcome frame.
 * @property {number} [minDelayMs] First reconnection delay (default 500).
 * @property {number} [maxDelayMs] Longest reconnection delay (default 15000).
 * @property {string} [probeUrl] Asked after a refused handshake to tell "revoked" from
 *   "server down" (default "/api/auth/user/"); "" disables the probe.
 * @property {typeof WebSocket} [WebSocketImpl] For tests and non-browser hosts.
 */

const CLOSE_UNAUTHORIZED = 4401;

/** Connect now and keep connected until `close()`; subscriptions survive reconnections. */
export function connect(/** @type {ConnectOptions} */ options = {}) {
  return new RealtimeClient(options);
}

/** @param {number} attempt @param {number} min @param {number} max */
export function backoffDelay(attempt, min, max) {
  // Full jitter over the upper half: screens restarted together do not reconnect in step.
  const ceiling = Math.min(max, min * 2 ** attempt);
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

export class RealtimeClient {
  /** @param {ConnectOptions} options */
  constructor(options) {
    this.options = options;
    this.url = options.url || defaultUrl();
    /** @type {State} */
    this.state = "connecting";
    /** The newest event id delivered (or the connection's starting point): the resume point. */
    this.lastEventId = 0;
    /** @type {{topics: string[], filter?: Record<string, unknown[]>, onEvent: (e: BmsEvent) => void}[]} */
    this.subscriptions = [];
    /** @type {WebSocket|null} */
    this.socket = null;
    this.attempt = 0;
    this.everLive = false;
    this.stopped = false;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.timer = undefined;
    this._open();
  }

  /**
   * Receive `topics`' events (in id order, each once) until the returned function is called.
   * Subscribe each topic once per client: the server keeps one filter per topic.
   * @param {string[]} topics
   * @param {{filter?: Record<string, unknown[]>, onEvent: (e: BmsEvent) => void}} options
   * @returns {() => void}
   */
  subscribe(topics, { filter, onEvent }) {
    const sub = { topics: [...topics], filter, onEvent };
    this.subscriptions.push(sub);
    if (this.state === "live") this._sendSubscribe(sub);
    return () => {
      this.subscriptions = this.subscriptions.filter((s) => s !== sub);
      this._send({ type: "unsubscribe", topics: sub.topics });
    };
  }

  /** Hand a renewed access token to the open socket (before the old one expires). */
  reauthenticate(/** @type {string} */ token) {
    this._send({ type: "reauthenticate", token });
  }

  /** Close for good (no reconnection). */
  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000);
    this._setState("closed");
  }

  async _open() {
    if (this.stopped) return;
    let credential = null;
    try {
      credential = await resolve(this.options.credential);
    } catch (error) {
      this._retry(undefined);
      return;
    }
    const protocols = credential ? ["bms", "bearer." + credential] : [];
    const Impl = this.options.WebSocketImpl || WebSocket;
    const socket = new Impl(this.url, protocols);
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
    };
    socket.onmessage = (message) => this._onFrame(JSON.parse(message.data));
    socket.onclose = (close) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      if (close.code === CLOSE_UNAUTHORIZED) {
        this._revokedOrRetry(credential, close.code);
      } else if (!opened && this.options.probeUrl !== "") {
        this._revokedOrRetry(credential, close.code); // refused handshake: revoked or down?
      } else {
        this._retry(close.code);
      }
    };
  }

  /** @param {string|null} used @param {number} code */
  async _revokedOrRetry(used, code) {
    const fresh = await resolve(this.options.credential).catch(() => null);
    if (fresh && fresh !== used) return this._retry(code); // renewed: try the new one
    if (await this._refused(fresh)) {
      this._setState("revoked", { code });
      return;
    }
    this._retry(code);
  }

  /** @param {string|null} credential */
  async _refused(credential) {
    const probe = this.options.probeUrl ?? "/api/auth/user/";
    if (!probe) return true;
    try {
      const headers = credential ? { Authorization: "Bearer " + credential } : undefined;
      const response = await fetch(probe, { headers, credentials: "same-origin" });
      return response.status === 401 || response.status === 403;
    } catch {
      return false; // the server is down: keep trying
    }
  }

  /** @param {number|undefined} code */
  _retry(code) {
    const delayMs = backoffDelay(
      this.attempt++, this.options.minDelayMs ?? 500, this.options.maxDelayMs ?? 15000,
    );
    this._setState(this.everLive ? "reconnecting" : "connecting", { delayMs, code });
    this.timer = setTimeout(() => this._open(), delayMs);
  }

  /** @param {any} frame */
  _onFrame(frame) {
    switch (frame.type) {
      case "welcome":
        if (!this.everLive) this.lastEventId = frame.last_event_id;
        this.attempt = 0;
        this.options.onWelcome?.(frame);
        for (const sub of this.subscriptions) this._sendSubscribe(sub);
        this.everLive = true;
        this._setState("live");
        break;
      case "event":
        if (frame.id <= this.lastEventId) return; // a replay overlapping what we had
        this.lastEventId = frame.id;
        for (const sub of this.subscriptions) {
          if (sub.topics.includes(frame.topic)) sub.onEvent(frame);
        }
        break;
      case "resync_required":
        this.options.onResync?.(frame.topics);
        break;
      case "error":
        console.warn("bms-realtime:", frame.code, frame.detail);
        break;
    }
  }

  /** @param {{topics: string[], filter?: Record<string, unknown[]>}} sub */
  _sendSubscribe(sub) {
    /** @type {Record<string, unknown>} */
    const message = { type: "subscribe", topics: sub.topics, since: this.lastEventId };
    if (sub.filter) message.filter = sub.filter;
    this._send(message);
  }

  /** @param {unknown} message */
  _send(message) {
    if (this.socket && this.socket.readyState === 1) this.socket.send(JSON.stringify(message));
  }

  /** @param {State} state @param {Partial<StateInfo>} [extra] */
  _setState(state, extra = {}) {
    this.state = state;
    this.options.onState?.(state, { lastEventId: this.lastEventId, ...extra });
  }
}

function defaultUrl() {
  const { protocol, host } = window.location;
  return (protocol === "https:" ? "wss://" : "ws://") + host + "/ws/";
}

/** @param {Credential|undefined} credential */
async function resolve(credential) {
  return typeof credential === "function" ? await credential() : credential ?? null;
}
