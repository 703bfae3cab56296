// Access to a gateway that wants a credential. The page takes a session token from its URL
// (#token=… — a fragment never reaches a server or its logs — or ?token=…), or from the access
// field, where an API key may be typed too: it is traded at once for a session token
// (POST /auth/token) and not kept. The token goes to the WebSocket as the subprotocol
// "bearer.<token>" (browsers cannot set headers there) and to downloads as ?token=.

const STORED = "nova.token"; // this tab's token, for reloads and reconnects
const KEY_PREFIX = "nova_";
const PROTOCOL = "nova.v1";

function fromUrl(loc) {
  const hash = new URLSearchParams(loc.hash.replace(/^#/, ""));
  const query = new URLSearchParams(loc.search);
  return hash.get("token") || query.get("token") || null;
}

/** The URL without its token: the address bar is shared and bookmarked, the token is not. */
function withoutToken(loc) {
  const query = new URLSearchParams(loc.search);
  const hash = new URLSearchParams(loc.hash.replace(/^#/, ""));
  query.delete("token");
  hash.delete("token");
  const q = query.toString();
  const h = hash.toString();
  return `${loc.pathname}${q ? `?${q}` : ""}${h ? `#${h}` : ""}`;
}

async function reasonOf(response) {
  try {
    const body = await response.json();
    return body.error || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

export class Access {
  constructor(token, storage) {
    this.token = token;
    this.storage = storage;
  }

  static fromPage(loc = location, storage = sessionStorage) {
    const given = fromUrl(loc);
    if (given) {
      storage.setItem(STORED, given);
      history.replaceState(history.state, "", withoutToken(loc));
    }
    return new Access(given || storage.getItem(STORED), storage);
  }

  /** The WebSocket's protocols: the server answers "nova.v1", never the token. */
  protocols() {
    return this.token ? [PROTOCOL, `bearer.${this.token}`] : [];
  }

  /** `url` with the token as ?token=, for links a browser follows without our headers. */
  link(url) {
    if (!this.token) return url;
    return `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(this.token)}`;
  }

  /** {ok: true, who} when the gateway lets this page in (open, or the token is good), else
   * {ok: false, reason}: a browser does not say why a WebSocket was refused, this does. */
  async check() {
    const headers = this.token ? { Authorization: `Bearer ${this.token}` } : {};
    try {
      const response = await fetch("/auth/whoami", { headers, cache: "no-store" });
      if (response.ok) return { ok: true, who: await response.json() };
      return { ok: false, status: response.status, reason: await reasonOf(response) };
    } catch (err) {
      return { ok: false, status: 0, reason: String((err && err.message) || err) };
    }
  }

  /** Use what was typed into the access field: a session token, or an API key to trade. */
  async use(credential) {
    let token = credential.trim();
    if (token.startsWith(KEY_PREFIX)) {
      const response = await fetch("/auth/token", {
        method: "POST",
        headers: { Authorization: `Bearer ${token}` },
      });
      if (!response.ok) return { ok: false, reason: await reasonOf(response) };
      token = (await response.json()).token;
    }
    this.token = token || null;
    if (this.token) this.storage.setItem(STORED, this.token);
    else this.storage.removeItem(STORED);
    return this.check();
  }
}
