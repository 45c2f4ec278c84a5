// Penguin web console: plain JS over the public REST and WebSocket API (docs/api.md).
//
// Everything shown comes from the server and is written with textContent (never innerHTML),
// so agent ids, replies and envelope contents cannot inject markup. The API key, when the
// server has one, lives in sessionStorage (gone when the tab closes) and is sent as a bearer
// token; WebSockets, which cannot carry headers from a browser, send it as ?token=.
"use strict";

(() => {
  const API = "/api/v1";
  const KEY_STORE = "penguin.apiKey";
  const FEED_MAX = 300;          // feed rows kept on the page
  const CONTENT_MAX = 600;       // characters of a message shown inline (the rest in the tooltip)
  const DETAILS_MAX = 200;       // characters of an event's data shown inline
  const TELEMETRY_INTERVAL = 1;  // seconds between /ws/telemetry snapshots
  const HISTORY_PAGE = 100;

  const $ = (id) => document.getElementById(id);

  /** Build an element; string children become text nodes, so data is never parsed as HTML. */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === undefined || value === null) continue;
      if (name === "className") node.className = value;
      else if (name === "title") node.title = String(value);
      else if (name === "onclick") node.addEventListener("click", value);
      else node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clip(text) {
    const s = typeof text === "string" ? text : JSON.stringify(text);
    return s.length > CONTENT_MAX ? s.slice(0, CONTENT_MAX) + "…" : s;
  }

  function clock(epochSeconds) {
    return epochSeconds ? new Date(epochSeconds * 1000).toLocaleTimeString() : "";
  }

  function ms(value) {
    return typeof value === "number" ? value.toFixed(1) + " ms" : "–";
  }

  function setStatus(text, kind) {
    const node = $("status");
    node.textContent = text;
    node.className = "status " + (kind || "");
  }

  // ---- REST -------------------------------------------------------------------------------

  const apiKey = () => sessionStorage.getItem(KEY_STORE) || "";

  class ApiError extends Error {
    constructor(status, problem, text) {
      super((problem && problem.detail) || text || "HTTP " + status);
      this.status = status;
      this.problem = problem;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    const key = apiKey();
    if (key) headers.Authorization = "Bearer " + key;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(API + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (!response.ok) {
      const error = new ApiError(response.status, data, text);
      if (response.status === 401) setStatus("This server needs an API key: enter it above.", "error");
      throw error;
    }
    return data;
  }

  function wsUrl(path, params) {
    const url = new URL(API + path, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    for (const [name, value] of Object.entries(params)) {
      if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, String(value));
    }
    const key = apiKey();
    if (key) url.searchParams.set("token", key);
    return url.toString();
  }

  /** A WebSocket that reconnects with backoff; ``params()`` is re-read on every (re)connect. */
  class Stream {
    constructor(path, params, onFrame, onState) {
      Object.assign(this, { path, params, onFrame, onState, ws: null, timer: null, retry: 0 });
    }

    open() {
      this.close();
      const ws = new WebSocket(wsUrl(this.path, this.params()));
      this.ws = ws;
      ws.onopen = () => { this.retry = 0; this.onState("live"); };
      ws.onmessage = (event) => {
        let frame;
        try { frame = JSON.parse(event.data); } catch { return; }
        this.onFrame(frame);
      };
      ws.onclose = (event) => {
        if (this.ws !== ws) return;  // replaced or closed on purpose
        this.ws = null;
        this.onState("reconnecting" + (event.reason ? " (" + event.reason + ")" : ""));
        const delay = Math.min(10000, 500 * 2 ** this.retry++);
        this.timer = setTimeout(() => this.open(), delay);
      };
    }

    close() {
      clearTimeout(this.timer);
      const ws = this.ws;
      this.ws = null;
      if (ws) ws.close();
    }
  }

  // ---- agents -----------------------------------------------------------------------------

  const state = { agents: [], agentsKey: "", telemetry: null, loadingAgents: false, feedSeq: null };

  async function refreshAgents() {
    if (state.loadingAgents) return;
    state.loadingAgents = true;
    try {
      const agents = await api("GET", "/agents");
      const key = JSON.stringify(agents.map((a) => [a.agent_id, a.model, a.roles, a.paused, a.parent_id]));
      if (key !== state.agentsKey) {
        state.agents = agents;
        state.agentsKey = key;
        renderAgents();
        renderTelemetry();
      }
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) setStatus("agents: " + error.message, "error");
    } finally {
      state.loadingAgents = false;
    }
  }

  async function setPaused(agentId, paused) {
    try {
      await api("POST", "/agents/" + encodeURIComponent(agentId) + (paused ? "/pause" : "/resume"));
    } catch (error) {
      setStatus((paused ? "pause " : "resume ") + agentId + ": " + error.message, "error");
    }
    await refreshAgents();
  }

  function renderAgents() {
    const rows = state.agents.map((agent) => el("tr", { "data-agent": agent.agent_id },
      el("td", { className: "id" }, agent.agent_id),
      el("td", {}, agent.model || "(server default)"),
      el("td", {}, (agent.roles || []).join(", ")),
      el("td", { className: agent.paused ? "paused" : "" }, agent.paused ? "paused" : "running"),
      el("td", {}, agent.parent_id || ""),
      el("td", { className: "actions" },
        agent.paused
          ? el("button", { type: "button", className: "resume", onclick: () => setPaused(agent.agent_id, false) }, "Resume")
          : el("button", { type: "button", className: "pause", onclick: () => setPaused(agent.agent_id, true) }, "Pause")),
    ));
    $("agents").tBodies[0].replaceChildren(...rows);
    $("agents-empty").hidden = rows.length > 0;
    $("agent-count").textContent = "(" + rows.length + ")";
    const ids = state.agents.map((a) => a.agent_id);
    fillSelect($("chat-agent"), ids.includes("default") ? ids : ["", ...ids]);
    fillSelect($("feed-agent"), ["", ...ids], "all agents");
    fillSelect($("history-agent"), ids);
  }

  /** Replace a select's options, keeping the current choice when it still exists. */
  function fillSelect(select, values, emptyLabel) {
    const current = select.value;
    select.replaceChildren(...values.map((v) => el("option", { value: v }, v || emptyLabel || "default persona")));
    if (values.includes(current)) select.value = current;
  }

  // ---- telemetry --------------------------------------------------------------------------

  function onTelemetry(frame) {
    if (frame.type === "error") {
      setStatus("telemetry: " + ((frame.problem && frame.problem.detail) || "error"), "error");
      return;
    }
    if (frame.type !== "telemetry") return;
    state.telemetry = frame;
    renderTelemetry();
    refreshAgents();  // pause state and new agents change without an envelope the page watches
  }

  function renderTelemetry() {
    const summary = state.telemetry;
    if (!summary) return;
    const stats = summary.agents || {};
    const ids = [...new Set([...state.agents.map((a) => a.agent_id), ...Object.keys(stats)])].sort();
    const rows = ids.map((id) => {
      const s = stats[id] || {};
      const tokens = s.tokens || {};
      const latency = s.latency_ms || {};
      const errors = Object.entries(s.errors || {});
      const errorCount = errors.reduce((sum, [, n]) => sum + n, 0);
      return el("tr", { "data-agent": id },
        el("td", { className: "id" }, id),
        el("td", { className: "num turns" }, s.turns || 0),
        el("td", { className: "num" }, (tokens.input_tokens || 0) + " / " + (tokens.output_tokens || 0)),
        el("td", { className: "num" }, latency.count ? ms(latency.p50) : "–"),
        el("td", { className: "num" }, latency.count ? ms(latency.p95) : "–"),
        el("td", { className: "num" + (errorCount ? " errors" : ""), title: errors.map(([k, n]) => k + ": " + n).join(", ") },
          errorCount),
      );
    });
    $("telemetry").tBodies[0].replaceChildren(...rows);
    $("telemetry-summary").textContent =
      "uptime " + Math.round(summary.uptime_seconds || 0) + " s · " + (summary.turns || 0) + " turns · " +
      ((summary.messages && summary.messages.total) || 0) + " envelopes";
  }

  // ---- live message feed ------------------------------------------------------------------

  function onEnvelope(frame) {
    if (frame.type === "error") {
      $("feed-status").textContent = (frame.problem && frame.problem.detail) || "error";
      return;
    }
    if (frame.type !== "envelope") return;
    state.feedSeq = frame.seq;
    const feed = $("feed");
    feed.prepend(el("li", { className: "envelope type-" + frame.message_type, "data-seq": frame.seq },
      el("span", { className: "meta" },
        "#" + frame.seq + " " + clock(frame.created_at) + " " + frame.sender + " → " + (frame.recipient || "*") +
        (frame.channel ? " [" + frame.channel + "]" : "") + " " + frame.message_type),
      el("span", { className: "content", title: typeof frame.content === "string" ? frame.content : "" },
        clip(frame.content)),
      frame.message_type === "message" ? null : details(frame.metadata),
    ));
    while (feed.childElementCount > FEED_MAX) feed.lastElementChild.remove();
  }

  /** An event's data (turn usage, task status, ...) as one line of ``key=value`` pairs. */
  function details(metadata) {
    const pairs = Object.entries(metadata || {})
      .filter(([, v]) => v !== null && v !== undefined && v !== "" && !(typeof v === "object" && !Object.keys(v).length))
      .map(([k, v]) => k + "=" + (typeof v === "object" ? JSON.stringify(v) : String(v)));
    const line = pairs.join(" · ");
    return pairs.length ? el("code", { title: line }, line.length > DETAILS_MAX ? line.slice(0, DETAILS_MAX) + "…" : line) : null;
  }

  // ---- chat -------------------------------------------------------------------------------

  async function sendChat(event) {
    event.preventDefault();
    const text = $("chat-text").value;
    if (!text.trim()) return;
    const agentId = $("chat-agent").value;
    $("chat-text").value = "";
    const log = $("chat-log");
    log.append(el("li", { className: "user" }, el("span", { className: "meta" }, "you → " + (agentId || "default")), text));
    const pending = el("li", { className: "reply pending", "data-agent": agentId || "default" },
      el("span", { className: "meta" }, (agentId || "default") + " …"), "waiting for the reply (a paused agent answers after resume)");
    log.append(pending);
    try {
      const body = { text, streaming: false };
      if (agentId) body.agent_id = agentId;
      const reply = await api("POST", "/chat", body);
      const usage = reply.usage || {};
      pending.replaceChildren(
        el("span", { className: "meta" }, reply.agent_id + (reply.created ? " (created)" : "") + " · " +
          (usage.total_tokens || 0) + " tokens · " + reply.status),
        reply.response);
      pending.className = "reply";
    } catch (error) {
      pending.replaceChildren(el("span", { className: "meta" }, (agentId || "default") + " · failed"), error.message);
      pending.className = "reply failed";
    }
    log.scrollTop = log.scrollHeight;
  }

  // ---- conversation history ---------------------------------------------------------------

  const history = { conversationId: null, nextAfter: null };

  async function loadConversations() {
    const agentId = $("history-agent").value;
    const select = $("history-conversation");
    if (!agentId) { select.replaceChildren(); return; }
    try {
      const conversations = await api("GET", "/agents/" + encodeURIComponent(agentId) + "/conversations");
      const current = select.value;
      select.replaceChildren(...conversations.map((c) => el("option", { value: c.id },
        (c.title || c.id) + " · " + c.kind + " · " + c.message_count + " msgs")));
      if (conversations.some((c) => c.id === current)) select.value = current;
    } catch (error) {
      setStatus("conversations: " + error.message, "error");
    }
  }

  async function loadHistory(append) {
    const conversationId = append ? history.conversationId : $("history-conversation").value;
    if (!conversationId) return;
    const afterSeq = append ? history.nextAfter : 0;
    try {
      const page = await api("GET", "/conversations/" + encodeURIComponent(conversationId) +
        "/history?limit=" + HISTORY_PAGE + "&after_seq=" + afterSeq);
      const items = page.messages.map((m) => el("li", { className: "message role-" + m.role, "data-seq": m.seq },
        el("span", { className: "meta" }, "#" + m.seq + " " + clock(m.created_at) + " " + m.role + " · " + m.sender +
          (m.recipient_id ? " → " + m.recipient_id : "") + " · " + m.message_type),
        clip(m.content),
        m.tool_calls && m.tool_calls.length ? el("code", {}, clip(m.tool_calls)) : null,
      ));
      if (append) $("history").append(...items); else $("history").replaceChildren(...items);
      history.conversationId = conversationId;
      history.nextAfter = page.next_after_seq;
      $("history-more").hidden = page.next_after_seq === null;
    } catch (error) {
      setStatus("history: " + error.message, "error");
    }
  }

  // ---- wiring -----------------------------------------------------------------------------

  const streamState = { telemetry: "connecting", feed: "connecting" };
  function showStreams() {
    const live = streamState.telemetry === "live" && streamState.feed === "live";
    setStatus("telemetry " + streamState.telemetry + " · feed " + streamState.feed, live ? "ok" : "warn");
  }

  const telemetryStream = new Stream("/ws/telemetry", () => ({ interval: TELEMETRY_INTERVAL }), onTelemetry,
    (s) => { streamState.telemetry = s; showStreams(); });
  const feedStream = new Stream("/ws/messages",
    () => ({ agent_id: $("feed-agent").value, since_seq: state.feedSeq }), onEnvelope,
    (s) => { streamState.feed = s; $("feed-status").textContent = s; showStreams(); });

  async function connect() {
    await refreshAgents();
    try {
      state.telemetry = await api("GET", "/telemetry");
      renderTelemetry();
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) setStatus("telemetry: " + error.message, "error");
      return;  // without access the streams would only be refused
    }
    telemetryStream.open();
    feedStream.open();
    await loadConversations();
  }

  function start() {
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("api-key").value.trim();
      if (key) sessionStorage.setItem(KEY_STORE, key); else sessionStorage.removeItem(KEY_STORE);
      $("api-key").value = "";
      $("api-key").placeholder = key ? "key set for this tab" : "only if the server has one";
      state.agentsKey = "";
      connect();
    });
    $("key-clear").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORE);
      $("api-key").placeholder = "only if the server has one";
      telemetryStream.close();
      feedStream.close();
      setStatus("key forgotten", "warn");
    });
    if (apiKey()) $("api-key").placeholder = "key set for this tab";
    $("chat-form").addEventListener("submit", sendChat);
    $("feed-agent").addEventListener("change", () => {
      state.feedSeq = null;  // a new filter starts from now; the old cursor belongs to the old filter
      $("feed").replaceChildren();
      feedStream.open();
    });
    $("feed-clear").addEventListener("click", () => $("feed").replaceChildren());
    $("history-agent").addEventListener("change", loadConversations);
    $("history-agent").addEventListener("focus", loadConversations);
    $("history-load").addEventListener("click", async () => {
      if (!$("history-conversation").value) await loadConversations();  // the agent may have chatted since
      await loadHistory(false);
    });
    $("history-more").addEventListener("click", () => loadHistory(true));
    connect();
  }

  start();
})();
