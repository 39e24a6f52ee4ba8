// The operator page: live stock per SKU from GET /v1/watch, and the service's
// rates and states from GET /metrics. Plain browser JavaScript, no build step.
//
// The watch needs a key, and a browser EventSource cannot send one in a
// header, so the stream is read with fetch(): the key the operator typed goes
// in the Authorization header, never in a URL (URLs end up in access logs and
// browser history) and never in the page itself. It lives in this tab's
// memory only; reloading the page forgets it.

/** GET /v1/watch follows at most this many SKUs (the service's watchSkusMax). */
const watchSkusMax = 256;
/** The service refuses URIs over 8 KiB; the SKU list stops short of that. */
const watchUrlCharsMax = 7_000;
/** How often /metrics is read for the rates and states. */
const metricsIntervalMs = 1_000;
/** Wait before reconnecting a dropped stream, until the server says otherwise (SSE `retry:`). */
const reconnectDelayMsDefault = 1_000;

const state = {
  key: '',
  /** Ends the current stream when the operator connects again. */
  stream: undefined,
  lastEventId: undefined,
  reconnectDelayMs: reconnectDelayMsDefault,
  /** sku -> the elements of its card. */
  cards: new Map(),
  /** The previous /metrics sample, for rates. */
  previous: undefined,
};

const element = (id) => document.getElementById(id);

function setConnection(text, kind) {
  const pill = element('connection');
  pill.textContent = text;
  pill.className = `pill ${kind}`;
}

function setMessage(text) {
  element('message').textContent = text;
}

/** A failed API call, with the service's problem+json detail when there is one. */
class ApiError extends Error {
  constructor(status, detail) {
    super(`${status}: ${detail}`);
    this.status = status;
  }
}

async function apiError(response) {
  let detail = response.statusText;
  try {
    const problem = await response.json();
    detail = problem.detail ?? problem.title ?? detail;
  } catch {
    // not problem+json: the status text says enough
  }
  return new ApiError(response.status, detail);
}

async function listSkus(product) {
  const query = new URLSearchParams({ limit: String(watchSkusMax) });
  if (product !== '') query.set('product', product);
  const response = await fetch(`/v1/skus?${query}`, {
    headers: { authorization: `Bearer ${state.key}` },
    cache: 'no-store',
  });
  if (!response.ok) throw await apiError(response);
  return response.json();
}

/** The watch URL for as many of the SKUs as fit in one request. */
function watchUrl(skus) {
  const ids = [];
  let length = '/v1/watch?sku='.length;
  for (const sku of skus) {
    // A comma separates ids in ?sku=, so a SKU whose id holds one cannot be named there.
    if (sku.includes(',')) continue;
    const encoded = encodeURIComponent(sku);
    if (length + encoded.length + 1 > watchUrlCharsMax) break;
    ids.push(encoded);
    length += encoded.length + 1;
  }
  return { url: `/v1/watch?sku=${ids.join(',')}`, count: ids.length };
}

function newCard(sku) {
  const card = document.createElement('article');
  card.className = 'sku';
  card.dataset.sku = sku.sku;
  const parts = {};
  for (const [name, tag] of [
    ['name', 'h2'],
    ['labels', 'p'],
    ['available', 'p'],
    ['bar', 'div'],
    ['ledger', 'p'],
    ['badge', 'span'],
  ]) {
    parts[name] = document.createElement(tag);
    parts[name].className = name;
    card.append(parts[name]);
  }
  parts.fill = document.createElement('div');
  parts.fill.className = 'fill';
  parts.bar.append(parts.fill);
  parts.name.textContent = sku.sku;
  parts.labels.textContent = [sku.product, sku.size, sku.color].filter(Boolean).join(' · ');
  parts.badge.textContent = 'SOLD OUT';
  parts.card = card;
  return parts;
}

function showStock(stock) {
  const card = state.cards.get(stock.sku);
  if (card === undefined) return;
  const changed = card.available.textContent !== String(stock.available);
  card.available.textContent = String(stock.available);
  card.ledger.textContent = `${stock.reserved} reserved · ${stock.sold} sold · ${stock.total} total`;
  card.fill.style.width = `${stock.total > 0 ? (100 * stock.available) / stock.total : 0}%`;
  card.card.classList.toggle('sold-out', stock.available === 0);
  card.card.dataset.version = String(stock.version);
  if (changed) {
    // Restart the highlight animation: remove the class, force a style pass, add it again.
    card.card.classList.remove('changed');
    void card.card.offsetWidth;
    card.card.classList.add('changed');
  }
}

function renderCards(items) {
  const grid = element('skus');
  grid.replaceChildren();
  state.cards.clear();
  for (const sku of items) {
    const card = newCard(sku);
    state.cards.set(sku.sku, card);
    grid.append(card.card);
    showStock(sku);
  }
}

/** Handles one Server-Sent Event from the watch. */
function onEvent(type, id, data) {
  if (id !== undefined) state.lastEventId = id;
  const payload = JSON.parse(data);
  if (type === 'snapshot' || type === 'resync') for (const stock of payload.skus) showStock(stock);
  else if (type === 'stock') showStock(payload);
  else if (type === 'disconnect') setMessage(`the server ended the stream (${payload.reason}); reconnecting`);
}

/** Parses one line of an event stream (HTML Standard, "Server-sent events"); a blank line dispatches. */
function parseLine(line, frame) {
  if (line === '') {
    if (frame.data.length > 0) onEvent(frame.type, frame.id, frame.data.join('\n'));
    return { type: 'message', id: undefined, data: [] };
  }
  if (line.startsWith(':')) return frame;
  const colon = line.indexOf(':');
  const field = colon === -1 ? line : line.slice(0, colon);
  let value = colon === -1 ? '' : line.slice(colon + 1);
  if (value.startsWith(' ')) value = value.slice(1);
  if (field === 'event') frame.type = value;
  else if (field === 'data') frame.data.push(value);
  else if (field === 'id') frame.id = value;
  else if (field === 'retry' && /^\d+$/.test(value)) state.reconnectDelayMs = Number(value);
  return frame;
}

/** Reads the watch until the server ends it; throws ApiError when it refuses. */
async function readStream(url, signal) {
  const headers = { authorization: `Bearer ${state.key}`, accept: 'text/event-stream' };
  if (state.lastEventId !== undefined) headers['last-event-id'] = state.lastEventId;
  const response = await fetch(url, { headers, signal, cache: 'no-store' });
  if (!response.ok) throw await apiError(response);
  setConnection('live', 'live');
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let frame = { type: 'message', id: undefined, data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split('\n');
    buffer = lines.pop();
    for (const line of lines) frame = parseLine(line.endsWith('\r') ? line.slice(0, -1) : line, frame);
  }
}

/** Follows the watch, reconnecting (with Last-Event-ID) until told to stop or refused. */
async function follow(url, controller) {
  while (!controller.signal.aborted) {
    try {
      await readStream(url, controller.signal);
    } catch (error) {
      if (controller.signal.aborted) return;
      // A refused key or filter will be refused again: say so and stop.
      if (error instanceof ApiError && error.status >= 400 && error.status < 500) {
        setConnection('refused', 'refused');
        setMessage(`the watch was refused: ${error.message}`);
        return;
      }
    }
    setConnection('reconnecting', 'reconnecting');
    await new Promise((resolve) => setTimeout(resolve, state.reconnectDelayMs));
  }
}

async function connect(event) {
  event.preventDefault();
  state.stream?.abort();
  state.key = element('key').value.trim();
  state.lastEventId = undefined;
  setConnection('connecting', 'connecting');
  setMessage('');
  try {
    const page = await listSkus(element('product').value.trim());
    renderCards(page.items);
    const watch = watchUrl(page.items.map((sku) => sku.sku));
    if (page.nextCursor || watch.count < page.items.length) {
      setMessage(`showing the first ${watch.count} SKUs; name a product to see others`);
    }
    if (watch.count === 0) {
      setConnection('no SKUs', 'idle');
      return;
    }
    const controller = new AbortController();
    state.stream = controller;
    void follow(watch.url, controller);
  } catch (error) {
    setConnection('refused', 'refused');
    setMessage(error instanceof ApiError ? `the service refused: ${error.message}` : String(error));
  }
}

/** The samples of /metrics this page shows, summed over their labels where it reads a total. */
function parseMetrics(text) {
  const sample = { created: 0, soldOut: 0, shed: 0 };
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match === null) continue;
    const [, name, labels = '', raw] = match;
    const value = Number(raw);
    if (name === 'hotstock_reservations_total' && labels.includes('result="created"')) sample.created += value;
    else if (name === 'hotstock_reservations_total' && labels.includes('result="sold_out"')) sample.soldOut += value;
    else if (name === 'hotstock_requests_shed_total') sample.shed += value;
    else if (name === 'hotstock_event_loop_shedding') sample.shedding = value === 1;
    else if (name === 'hotstock_backend_breaker_state' && value === 1)
      sample.breaker = /state="([^"]*)"/.exec(labels)?.[1];
    else if (name === 'hotstock_watch_subscribers') sample.watchers = value;
    else if (name === 'hotstock_engine_queue_depth') sample.queue = value;
    else if (name === 'hotstock_build_info') sample.version = /version="([^"]*)"/.exec(labels)?.[1];
  }
  return sample;
}

function formatRate(perSecond) {
  if (perSecond === undefined || !Number.isFinite(perSecond) || perSecond < 0) return '–';
  return perSecond < 10 ? perSecond.toFixed(1) : String(Math.round(perSecond));
}

function showMetrics(sample, previous, seconds) {
  const rate = (name) => (previous === undefined ? undefined : (sample[name] - previous[name]) / seconds);
  element('rate-reservations').textContent = formatRate(rate('created'));
  element('rate-soldout').textContent = formatRate(rate('soldOut'));
  element('rate-shed').textContent = formatRate(rate('shed'));
  const shedding = element('shedding');
  shedding.textContent = sample.shedding === undefined ? '–' : sample.shedding ? 'SHEDDING' : 'no';
  shedding.classList.toggle('alarm', sample.shedding === true);
  const breaker = element('breaker');
  // Only the etcd store has a breaker; the embedded store exports no breaker state.
  breaker.textContent = sample.breaker ?? 'none';
  element('breaker-note').textContent = sample.breaker === undefined ? 'embedded store' : '';
  breaker.classList.toggle('alarm', sample.breaker !== undefined && sample.breaker !== 'closed');
  element('queue').textContent = sample.queue === undefined ? '–' : String(sample.queue);
  element('watchers').textContent = sample.watchers === undefined ? '–' : String(sample.watchers);
  if (sample.version !== undefined) element('version').textContent = `v${sample.version}`;
}

async function pollMetrics() {
  try {
    const response = await fetch('/metrics', { cache: 'no-store' });
    const sample = parseMetrics(await response.text());
    const at = performance.now();
    const previous = state.previous;
    showMetrics(sample, previous?.sample, previous === undefined ? 1 : (at - previous.at) / 1000);
    state.previous = { sample, at };
  } catch {
    // The service is unreachable for now: the tiles keep their last values until it answers.
  }
  setTimeout(pollMetrics, metricsIntervalMs);
}

element('connect').addEventListener('submit', connect);
void pollMetrics();
