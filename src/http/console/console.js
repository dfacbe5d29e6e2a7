// The API console: a landing page from /docs/info.json, methods from rpc.discover grouped by
// namespace, a form per method, calls signed in the browser by the project's own client
// (WebCrypto), and each exchange shown as it went over the wire: streams live, background jobs
// while they run.
import { SignatureError, SimpleApiClient, SimpleApiError } from '/docs/client.js';
import { renderMarkdown } from '/docs/markdown.js';

const endpoint = new URL(document.querySelector('meta[name="simpleapi-endpoint"]')?.content ?? '/', location.href).href;

const $ = (selector, root = document) => root.querySelector(selector);
const el = (tag, { dataset, ...props } = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  if (dataset) Object.assign(node.dataset, dataset);
  for (const child of children.flat()) if (child !== null && child !== undefined && child !== false) node.append(child);
  return node;
};
const json = (value) => JSON.stringify(value, null, 2);
/** replaceChildren, leaving out the nulls of optional parts (the DOM would write "null"). */
const put = (node, ...children) => node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false && c !== ''));
const spinner = () => el('span', { className: 'spinner', ariaHidden: 'true' });
const badge = (text, kind = '', title = '') => el('span', { className: `badge ${kind}`, textContent: text, title });

// ---------------------------------------------------------------------------------------------
// Recording what goes over the wire

/** Thrown out of the client's fetch when the answer is an event stream: it is read live instead. */
class StreamStarted extends Error {
  constructor(response, exchange) {
    super('event stream');
    this.response = response;
    this.exchange = exchange;
  }
}

/** The exchanges of the call in progress; the client's fetch writes into it. */
let recorder = null;

function newRecorder(onExchange = () => {}) {
  return { exchanges: [], controller: new AbortController(), onExchange };
}

/** A fetch that records the exact request and response, headers included, and the time taken. */
const recordingFetch = async (url, init = {}) => {
  const rec = recorder ?? newRecorder();
  const started = performance.now();
  const request = { method: init.method ?? 'GET', url: String(url), headers: { ...(init.headers ?? {}) }, body: init.body ? new TextDecoder().decode(init.body) : '' };
  const exchange = { request, response: null, ms: 0, streamed: false };
  rec.exchanges.push(exchange);
  const res = await fetch(url, { ...init, signal: rec.controller.signal });
  const headers = Object.fromEntries(res.headers.entries());
  if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    exchange.streamed = true;
    exchange.response = { status: res.status, headers, body: '' };
    exchange.ms = performance.now() - started;
    rec.onExchange(exchange);
    throw new StreamStarted(res, exchange);
  }
  const body = await res.arrayBuffer();
  exchange.response = { status: res.status, headers, body: new TextDecoder().decode(body) };
  exchange.ms = performance.now() - started;
  rec.onExchange(exchange);
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
};

const newClient = () => new SimpleApiClient({ url: endpoint, fetch: recordingFetch, scheme: info?.scheme === 'v1' ? 'v1' : 'v2' });
let info = null;
let client = newClient();

/**
 * What can honestly be said of the signatures of a call's exchanges. The client checks the
 * x-hmac of every answer to a signed request that carries one (and throws SignatureError on a
 * mismatch), so a signed request whose answer had a MAC, in a call that did not throw
 * SignatureError, was verified. Streams are never read by the client: never verified.
 */
function signatureBadge(exchanges, signatureError) {
  if (signatureError) return badge('signature INVALID', 'bad signature', signatureError.message);
  const signed = exchanges.filter((x) => x.request.headers['x-hmac'] !== undefined && x.response !== null);
  if (signed.length === 0) return badge('not signed', 'neutral', 'No session: the request was sent unsigned');
  const unsignedAnswers = signed.filter((x) => x.streamed || x.response.headers['x-hmac'] === undefined);
  if (unsignedAnswers.length > 0) {
    const why = unsignedAnswers.some((x) => x.streamed)
      ? 'An event stream is written by the method itself and carries no x-hmac: nothing to verify'
      : 'The answer carries no x-hmac: the server signs an answer only when it verified the request (a 401 is not signed)';
    return badge('response not signed', 'neutral unsigned', why);
  }
  return badge('signature valid', 'ok signature', 'Every answer carried an x-hmac that the client verified');
}

function exchangeView(exchanges, { openLast = true } = {}) {
  const head = (h) => Object.entries(h).map(([k, v]) => `${k}: ${v}`).join('\n');
  return el('div', { className: 'exchanges' }, exchanges.map((x, i) => {
    const open = exchanges.length === 1 || (openLast && i === exchanges.length - 1) || i === 0;
    const label = exchanges.length > 1 ? `${i + 1}. ` : '';
    return el('div', { className: 'exchange' },
      el('details', { open }, el('summary', { textContent: `${label}Request, ${x.request.method} ${x.request.url}` }), el('pre', { className: 'request', textContent: `${head(x.request.headers)}\n\n${x.request.body}` })),
      x.response === null ? el('p', { className: 'hint', textContent: 'no answer' }) :
        el('details', { open }, el('summary', { textContent: `Response, ${x.response.status} in ${x.ms.toFixed(1)} ms` }), el('pre', { className: 'response', textContent: `${head(x.response.headers)}\n\n${x.response.body}` })));
  }));
}

// ---------------------------------------------------------------------------------------------
// Session

function showSession() {
  const s = client.session;
  $('#who').textContent = s ? `signed in as ${s.userId}` : 'not signed in';
  $('#who').classList.toggle('signed-in', Boolean(s));
  $('#logout').hidden = !s;
}

function notice(text, kind = 'warn') {
  const box = $('#notice');
  box.className = kind;
  put(box, el('span', { textContent: text }), el('button', { type: 'button', className: 'link', textContent: 'Dismiss', onclick: () => (box.hidden = true) }));
  box.hidden = false;
}

/** The server no longer accepts the session (restarted on the embedded store, expired, logged out elsewhere). */
function sessionLost(err) {
  const who = client.session?.userId;
  client = newClient();
  showSession();
  notice(`Signed out: the server no longer knows the session of ${who} ("${err.message}"; it may have restarted). Log in again for session methods.`);
}

function clearAccountErrors() {
  const box = $('#account-error');
  box.hidden = true;
  put(box);
  for (const f of document.querySelectorAll('#account .acct-field')) {
    f.classList.remove('invalid');
    f.querySelector('input').removeAttribute('aria-invalid');
    f.querySelector('.problem')?.remove();
  }
}

function showAccountError(action, err) {
  const box = $('#account-error');
  const what = action === 'create' ? 'Creating the account failed' : 'Logging in failed';
  if (err instanceof SimpleApiError) {
    const fieldProblems = [];
    for (const d of err.details ?? []) {
      const name = typeof d?.path === 'string' ? d.path.split('/')[1] ?? '' : '';
      const field = $(`#account .acct-field[data-name="${CSS.escape(name)}"]`);
      if (field && typeof d.message === 'string') {
        field.classList.add('invalid');
        field.querySelector('input').setAttribute('aria-invalid', 'true');
        field.append(el('span', { className: 'problem', textContent: `${name} ${d.message}` }));
        fieldProblems.push(d);
      }
    }
    const retry = err.retryAfter ? ` Try again in ${err.retryAfter} s.` : '';
    put(box, el('strong', { textContent: `${what}: ${err.code}` }), el('span', { textContent: ` ${/[.!?]$/.test(err.message) ? err.message : `${err.message}.`}${retry}` }),
      fieldProblems.length === 0 && err.details?.length ? el('pre', { className: 'details', textContent: json(err.details) }) : null);
  } else {
    put(box, el('strong', { textContent: `${what}: ` }), el('span', { textContent: String(err?.message ?? err) }));
  }
  box.hidden = false;
}

$('#account').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const action = event.submitter?.dataset.action ?? 'login';
  clearAccountErrors();
  const buttons = form.querySelectorAll('button');
  for (const b of buttons) b.disabled = true;
  form.classList.add('busy');
  recorder = newRecorder();
  try {
    const fresh = newClient(); // a new sign-in never signs with an old, maybe dead, session
    if (action === 'create') await fresh.create(form.user_id.value, form.password.value);
    else await fresh.login(form.user_id.value, form.password.value);
    client = fresh;
    form.password.value = '';
    $('#notice').hidden = true;
  } catch (err) {
    showAccountError(action, err);
  } finally {
    recorder = null;
    for (const b of buttons) b.disabled = false;
    form.classList.remove('busy');
    showSession();
  }
});
$('#logout').addEventListener('click', async () => {
  try {
    await client.logout();
  } catch {
    // an unknown session is logged out already
  } finally {
    client = newClient();
    showSession();
  }
});

// ---------------------------------------------------------------------------------------------
// Schemas as tables

/** A short reading of a schema's type: `string`, `array of number`, `"a" | "b"`, … */
function typeOf(schema) {
  if (schema === true || schema === undefined || (schema && typeof schema === 'object' && Object.keys(schema).length === 0)) return 'any';
  if (schema === false) return 'nothing';
  if ('const' in schema) return JSON.stringify(schema.const);
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  for (const k of ['oneOf', 'anyOf']) if (Array.isArray(schema[k])) return schema[k].map(typeOf).join(' | ');
  if (typeof schema.$ref === 'string') return schema.$ref.split('/').pop();
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  return (types.length ? types : ['any']).map((t) => {
    if (t === 'array' && Array.isArray(schema.prefixItems)) return `[${schema.prefixItems.map(typeOf).join(', ')}]`;
    if (t === 'array' && schema.items !== undefined) return `array of ${typeOf(schema.items)}`;
    if (t === 'string' && schema.format) return `string (${schema.format})`;
    return t;
  }).join(' | ');
}

/** The constraints of a schema in words: lengths, ranges, patterns, defaults. */
function constraintsOf(schema) {
  if (!schema || typeof schema !== 'object') return '';
  const out = [];
  const range = (min, max, unit) => {
    if (min !== undefined && max !== undefined) out.push(`${min}–${max}${unit}`);
    else if (min !== undefined) out.push(`≥ ${min}${unit}`);
    else if (max !== undefined) out.push(`≤ ${max}${unit}`);
  };
  range(schema.minLength, schema.maxLength, ' chars');
  range(schema.minimum, schema.maximum, '');
  if (schema.exclusiveMinimum !== undefined) out.push(`> ${schema.exclusiveMinimum}`);
  if (schema.exclusiveMaximum !== undefined) out.push(`< ${schema.exclusiveMaximum}`);
  range(schema.minItems, schema.maxItems, ' items');
  if (schema.pattern) out.push(`matches ${schema.pattern}`);
  if ('default' in schema) out.push(`default ${JSON.stringify(schema.default)}`);
  return out.join(', ');
}

/** Rows of a params table: one per property (nested objects indented), per tuple item, or one for the whole. */
function paramRows(schema) {
  const rows = [];
  const walk = (s, prefix, depth) => {
    const required = new Set(s.required ?? []);
    for (const [name, sub] of Object.entries(s.properties)) {
      rows.push({ name: prefix + name, schema: sub, required: required.has(name), depth });
      if (depth < 3 && sub && sub.type === 'object' && sub.properties) walk(sub, `${prefix}${name}.`, depth + 1);
    }
  };
  if (schema?.type === 'object' && schema.properties) walk(schema, '', 0);
  else if (schema?.type === 'array' && Array.isArray(schema.prefixItems)) schema.prefixItems.forEach((sub, i) => rows.push({ name: `[${i}]`, schema: sub, required: i < (schema.minItems ?? 0), depth: 0 }));
  else if (schema !== undefined) rows.push({ name: '(the params)', schema, required: true, depth: 0 });
  return rows;
}

function schemaTable(schema, { caption, kind }) {
  const rows = paramRows(schema);
  const table = el('table', { className: `schema ${kind}` },
    el('caption', { textContent: caption }),
    el('thead', {}, el('tr', {}, ['name', 'type', 'required', 'description'].map((h) => el('th', { scope: 'col', textContent: h })))),
    el('tbody', {}, rows.map((r) => el('tr', { dataset: { param: r.name } },
      el('td', { className: 'name', style: `padding-left: ${0.5 + r.depth * 1.1}rem` }, el('code', { textContent: r.name })),
      el('td', { className: 'type' }, el('code', { textContent: typeOf(r.schema) }), constraintsOf(r.schema) ? el('small', { textContent: constraintsOf(r.schema) }) : null),
      el('td', { className: 'required', textContent: r.required ? 'yes' : 'no' }),
      el('td', { className: 'description', textContent: r.schema?.description ?? '' })))));
  if (schema?.type === 'object' && schema.additionalProperties === false) table.append(el('tfoot', {}, el('tr', {}, el('td', { colSpan: 4, className: 'hint', textContent: 'No other properties are accepted.' }))));
  return table;
}

// ---------------------------------------------------------------------------------------------
// The method list

let methods = [];

const namespaceOf = (name) => (name.includes('.') ? name.slice(0, name.lastIndexOf('.')) : '');

function groups(list) {
  const byNs = new Map();
  for (const m of list) {
    const ns = namespaceOf(m.name);
    if (!byNs.has(ns)) byNs.set(ns, []);
    byNs.get(ns).push(m);
  }
  return [...byNs.entries()].sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b)));
}

function renderList(filter = '') {
  const f = filter.trim().toLowerCase();
  const shown = methods.filter((m) => m.name.toLowerCase().includes(f) || (m.description ?? '').toLowerCase().includes(f));
  const list = $('#method-list');
  if (shown.length === 0) {
    put(list, el('p', { className: 'hint', textContent: `No method matches “${filter}”.` }));
    return;
  }
  put(list, ...groups(shown).map(([ns, ms]) => el('section', { className: 'group', dataset: { namespace: ns } },
    el('h3', { textContent: ns === '' ? 'top level' : ns }),
    el('ul', {}, ms.map((m) => el('li', {}, el('button', { type: 'button', onclick: () => go(`#/m/${m.name}`), dataset: { method: m.name }, title: m.description ?? '' },
      el('span', { className: 'mname' }, el('span', { textContent: m.name }), badge(m['x-auth'], m['x-auth'])),
      m.description ? el('small', { className: 'mdesc', textContent: m.description }) : null)))))));
  markCurrent();
}

function markCurrent() {
  const current = location.hash.startsWith('#/m/') ? decodeURIComponent(location.hash.slice(4)) : null;
  for (const b of document.querySelectorAll('#methods button[data-method]')) b.setAttribute('aria-current', String(b.dataset.method === current));
  for (const a of document.querySelectorAll('#methods .nav-links a')) a.setAttribute('aria-current', String(a.getAttribute('href') === (location.hash || '#/')));
}

// ---------------------------------------------------------------------------------------------
// Views: the landing page, the protocol, a method

/** Shows a view now (so what follows a click sees it at once) and records it in the address. */
function go(hash) {
  if (location.hash !== hash) history.pushState(null, '', hash);
  route();
}

function route() {
  const hash = location.hash;
  if (hash.startsWith('#/m/')) {
    const m = methods.find((x) => x.name === decodeURIComponent(hash.slice(4)));
    if (m) renderMethod(m);
    else put($('#method'), el('h2', { textContent: 'No such method' }), el('p', { className: 'desc', textContent: `This server has no method ${decodeURIComponent(hash.slice(4))}.` }), el('a', { href: '#/', textContent: 'Back to the overview' }));
  } else if (hash === '#/protocol') {
    void renderProtocol();
  } else {
    renderHome();
  }
  markCurrent();
}
window.addEventListener('popstate', route);

const duration = (s) => (s >= 86400 && s % 3600 === 0 ? `${s / 3600} h` : s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${Math.round(s / 60)} min` : `${s} s`);

function renderHome() {
  const namespaces = groups(methods);
  const pub = methods.filter((m) => m['x-auth'] === 'public').length;
  const fact = (term, value, note) => [el('dt', { textContent: term }), el('dd', { dataset: { fact: term.toLowerCase() } }, el('span', { className: 'value', textContent: value }), note ? el('small', { textContent: note }) : null)];
  const scheme = info.scheme === 'v2'
    ? `HMAC-SHA256 over a timestamp, a nonce and the body, keyed by the session key${info.window ? `; a timestamp may be ${info.window} s off the server clock` : ''}. Answers to signed requests are signed back.`
    : 'HMAC-SHA1 of the body keyed by the user id: only for old clients.';
  const store = info.shared
    ? `Accounts and sessions in ${info.store}, shared by every instance.`
    : 'Accounts and sessions in this process only: a restart forgets them, and sessions are not shared with other instances.';
  put($('#method'), el('article', { className: 'home' },
    el('h2', { textContent: `${info.name} ${info.version}` }),
    el('p', { className: 'lede', textContent: `One endpoint, POST ${endpoint}, answering the simple envelope {"method": "a.b.c", "parameters": {…}} and JSON-RPC 2.0 (batches included). ${methods.length} methods in ${namespaces.length} groups, ${pub} of them public.` }),
    el('dl', { className: 'facts' },
      fact('Server', endpoint, `POST ${info.endpoint}; GET /health; background jobs at GET /jobs/<id>`),
      fact('Store', info.store, store),
      fact('Signing', info.scheme, scheme),
      fact('Sessions', info.sessionTtl ? `live ${duration(info.sessionTtl)}` : 'signed', info.sessionTtl ? `after their last signed use; ${info.shared ? 'kept in the database' : 'kept in this process'}` : ''),
      fact('Background jobs', info.jobs, info.jobs === 'database' ? 'queued in the database: any instance runs or reports any job' : 'run in this process: queued and running jobs do not survive a restart')),
    el('h3', { textContent: 'Signing in' }),
    el('ol', { className: 'steps' },
      el('li', {}, 'Type a user_id and a password at the top right and press ', el('strong', { textContent: 'Create account' }), ' (account.create) or ', el('strong', { textContent: 'Log in' }), ' (account.login). Both are public and answer a session: ', el('code', { textContent: 'session_id' }), ' and ', el('code', { textContent: 'session_key' }), '.'),
      el('li', {}, 'The session stays in this tab’s memory only. From then on every call is signed in the browser with the same client the project ships (WebCrypto): ', el('code', { textContent: 'x-session-id' }), info.scheme === 'v2' ? [', ', el('code', { textContent: 'x-timestamp' }), ', ', el('code', { textContent: 'x-nonce' })] : null, ' and ', el('code', { textContent: 'x-hmac' }), ' headers.'),
      el('li', {}, 'Each answer’s ', el('code', { textContent: 'x-hmac' }), ' is checked; a call shows “signature valid” only when the answer carried one and it matched.'),
      el('li', {}, 'Methods marked ', badge('session', 'session'), ' need a session; ', badge('public', 'public'), ' ones do not. If the server forgets the session (a restart on the embedded store), the console signs you out and says so.')),
    el('h3', { textContent: 'The protocol' }),
    el('p', {}, 'Envelopes, error codes, signing step by step, retries and background jobs: ', el('a', { href: '#/protocol', id: 'protocol-link', textContent: 'the wire protocol' }), ' (', el('a', { href: info.protocol, textContent: 'docs/protocol.md' }), ').'),
    el('h3', { textContent: 'Methods' }),
    el('div', { className: 'cards' }, namespaces.map(([ns, ms]) => el('section', { className: 'card' },
      el('h4', { textContent: ns === '' ? 'top level' : ns }),
      el('ul', {}, ms.map((m) => el('li', {}, el('a', { href: `#/m/${m.name}`, textContent: m.name }), m.description ? el('span', { className: 'hint', textContent: ` ${m.description}` }) : null)))))),
    el('h3', { textContent: 'From a terminal' }),
    el('pre', { className: 'snippet', textContent: `${curlFor('rpc.discover', {})}\nnpx simpleapi call rpc.discover --url=${endpoint}` })));
}

async function renderProtocol() {
  const view = $('#method');
  put(view, el('p', { className: 'loading' }, spinner(), 'Loading the protocol…'));
  let res;
  try {
    res = await fetch(info.protocol);
  } catch (err) {
    put(view, el('p', { className: 'error-box', textContent: `Could not load the protocol: ${err.message}` }));
    return;
  }
  if (location.hash !== '#/protocol') return; // the user went elsewhere meanwhile
  if (!res.ok) {
    put(view, el('article', { className: 'doc missing' },
      el('h2', { textContent: 'The wire protocol' }),
      el('p', { className: 'error-box', textContent: `This installation has no docs/protocol.md (GET ${info.protocol} answered ${res.status}).` }),
      el('p', { className: 'desc', textContent: 'It ships with the simpleapi repository, in docs/protocol.md.' })));
    return;
  }
  const article = el('article', { className: 'doc' });
  article.innerHTML = renderMarkdown(await res.text()); // renderMarkdown escapes all of the text
  put(view, el('p', { className: 'doc-source' }, el('a', { href: info.protocol, textContent: 'docs/protocol.md as text' })), article);
}

// ---------------------------------------------------------------------------------------------
// A method: description, schemas, a form, the call

/** The fields of an object schema, or null when the params are better written as JSON. */
function formFields(schema) {
  if (!schema || schema.type !== 'object' || !schema.properties) return null;
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties).map(([name, sub]) => ({ name, schema: sub, required: required.has(name) }));
}

function inputFor({ name, schema }) {
  if (Array.isArray(schema.enum)) return el('select', { name }, el('option', { value: '', textContent: '' }), schema.enum.map((v) => el('option', { value: JSON.stringify(v), textContent: String(v) })));
  if (schema.type === 'boolean') return el('input', { type: 'checkbox', name });
  if (schema.type === 'integer' || schema.type === 'number') return el('input', { type: 'number', name, step: schema.type === 'integer' ? '1' : 'any', placeholder: constraintsOf(schema) });
  if (schema.type === 'string') return el('input', { type: /password/.test(name) ? 'password' : 'text', name, placeholder: constraintsOf(schema) });
  return el('textarea', { name, placeholder: 'JSON', dataset: { json: 'true' } });
}

function readForm(form, fields) {
  const params = {};
  for (const { name, schema, required } of fields) {
    const input = form.elements[name];
    if (input.type === 'checkbox') {
      params[name] = input.checked;
    } else if (input.value === '' && !required) {
      continue;
    } else if (input.tagName === 'SELECT') {
      params[name] = input.value === '' ? undefined : JSON.parse(input.value);
    } else if (input.dataset.json) {
      params[name] = JSON.parse(input.value);
    } else if (schema.type === 'integer' || schema.type === 'number') {
      params[name] = input.value === '' ? undefined : Number(input.value);
    } else {
      params[name] = input.value;
    }
  }
  return params;
}

const shellQuote = (s) => `'${s.replaceAll("'", `'\\''`)}'`;
/** The same call as a curl command line (unsigned: for public methods). */
function curlFor(method, params) {
  return `curl -s ${shellQuote(endpoint)} -H 'content-type: application/json' -d ${shellQuote(JSON.stringify({ method, parameters: params }))}`;
}

function renderMethod(m) {
  const schema = m['x-params-schema'];
  const fields = formFields(schema);
  const raw = el('textarea', { name: 'params', dataset: { raw: 'true' }, value: json(schema?.type === 'array' ? [] : {}), ariaLabel: 'params as JSON' });
  const form = el('form', { id: 'call-form', noValidate: true });
  if (fields) form.append(...fields.map((f) => el('div', { className: 'field', dataset: { name: f.name } }, el('label', { htmlFor: `f-${f.name}`, textContent: `${f.name}${f.required ? ' *' : ''}` }), Object.assign(inputFor(f), { id: `f-${f.name}` }), f.schema.description ? el('small', { textContent: f.schema.description }) : null)));
  const rawBox = el('details', { open: !fields }, el('summary', { textContent: fields ? 'Edit the params as JSON instead' : 'Params (JSON)' }), el('div', { className: 'field', dataset: { name: 'params' } }, raw));
  const out = el('div', { id: 'output' });
  const readParams = () => (fields && !rawBox.open ? readForm(form, fields) : JSON.parse(raw.value));
  const submit = el('button', { type: 'submit', className: 'primary', textContent: `Call ${m.name}` });
  const share = el('div', { className: 'share' });
  const isPublic = m['x-auth'] === 'public';
  const copyCurl = el('button', { type: 'button', className: 'secondary', id: 'copy-curl', textContent: 'Copy as curl', onclick: async () => {
    let params;
    try {
      params = readParams();
    } catch (err) {
      put(share, el('p', { className: 'error-box', textContent: `The params are not valid JSON: ${err.message}` }));
      return;
    }
    const text = curlFor(m.name, params);
    const pre = el('pre', { className: 'curl', textContent: text });
    const status = el('span', { className: 'hint copy-status', textContent: 'copying…' });
    put(share, el('div', { className: 'share-head' }, el('strong', { textContent: 'curl' }), status), pre);
    try {
      await navigator.clipboard.writeText(text);
      status.textContent = 'copied to the clipboard';
    } catch {
      getSelection().selectAllChildren(pre);
      status.textContent = 'the clipboard is not available here: the command is selected, copy it with Ctrl+C';
    }
  } });
  form.append(rawBox, el('div', { className: 'actions' }, submit, isPublic ? copyCurl : el('span', { className: 'hint', textContent: 'needs a signed-in session; curl cannot sign, the CLI can:' })), share);
  if (!isPublic) share.append(el('pre', { className: 'cli', textContent: `npx simpleapi call ${m.name} '<params as JSON>' --url=${endpoint} --user=${client.session?.userId ?? '<user_id>'} --password='<password>'` }));
  form.onsubmit = async (event) => {
    event.preventDefault();
    for (const f of form.querySelectorAll('.field')) {
      f.classList.remove('invalid');
      f.querySelector('.problem')?.remove();
    }
    let params;
    try {
      params = readParams();
    } catch (err) {
      put(out, el('div', { className: 'result error-box', textContent: `The params are not valid JSON: ${err.message}` }));
      return;
    }
    submit.disabled = true;
    try {
      await runCall(m, params, out, form);
    } finally {
      submit.disabled = false;
    }
  };
  const result = m.result?.schema;
  put($('#method'), 
    el('div', { className: 'method-head' }, el('h2', { textContent: m.name }), badge(isPublic ? 'public' : 'session', m['x-auth'], isPublic ? 'Anyone may call it' : 'Needs a signed-in session')),
    el('p', { className: 'desc', textContent: m.description ?? '' }),
    el('h3', { textContent: 'Parameters' }),
    schema === undefined ? el('p', { className: 'hint', textContent: 'No params schema: any JSON value is accepted.' })
      : schema.type === 'object' && Object.keys(schema.properties ?? {}).length === 0 && schema.additionalProperties === false ? el('p', { className: 'hint no-params', textContent: 'Takes no parameters: send {} or leave them out.' })
      : schemaTable(schema, { caption: `params: ${typeOf(schema)}`, kind: 'params' }),
    el('details', { className: 'raw-schema' }, el('summary', { textContent: 'Params schema as JSON' }), el('pre', { className: 'schema-json', textContent: json(schema ?? {}) })),
    el('h3', { textContent: 'Result' }),
    el('p', {}, el('code', { className: 'result-type', textContent: typeOf(result) }), result?.description ? el('span', { className: 'hint', textContent: ` ${result.description}` }) : null),
    result?.type === 'object' && result.properties ? schemaTable(result, { caption: 'result properties', kind: 'result' }) : null,
    el('details', { className: 'raw-schema' }, el('summary', { textContent: 'Result schema as JSON' }), el('pre', { textContent: json(result ?? {}) })),
    el('h3', { textContent: 'Try it' }),
    form,
    out,
  );
}

function highlight(form, details) {
  for (const d of details ?? []) {
    const first = typeof d.path === 'string' ? d.path.split('/')[1] ?? '' : '';
    const field = form.querySelector(`.field[data-name="${CSS.escape(first)}"]`) ?? form.querySelector('.field[data-name="params"]');
    if (!field) continue;
    field.classList.add('invalid');
    field.append(el('span', { className: 'problem', textContent: `${d.path || '(params)'} ${d.message}` }));
  }
}

/** One box per call; its parts are replaced as the call goes on. */
function resultBox(out) {
  const title = el('h3', {});
  const body = el('div', { className: 'body' });
  const wire = el('div', { className: 'wire' });
  const box = el('div', { className: 'result' }, title, body, wire);
  put(out, box);
  return { box, title, body, wire };
}

function errorBody(err) {
  return el('div', { className: 'error-box' }, el('p', { textContent: err.message }), err.details ? el('pre', { className: 'details', textContent: json(err.details) }) : null);
}

async function runCall(m, params, out, form, note = null) {
  const view = resultBox(out);
  const hadSession = client.session !== null;
  view.box.classList.add('loading');
  put(view.title, spinner(), el('span', { textContent: `Calling ${m.name}…` }));
  const rec = newRecorder(() => put(view.wire, exchangeView(rec.exchanges)));
  recorder = rec;
  let outcome;
  try {
    outcome = { value: await client.call(m.name, params) };
  } catch (err) {
    outcome = { err };
  } finally {
    recorder = null;
  }
  view.box.classList.remove('loading');
  const { err } = outcome;
  const first = rec.exchanges[0];
  if (err instanceof StreamStarted) {
    await showStream(view, rec, err);
    return;
  }
  if (err === undefined && first?.response?.status === 202) {
    await followJob(view, rec, outcome.value, m, form);
    return;
  }
  if (err instanceof SimpleApiError && err.code === 'Unauthenticated' && hadSession && client.session !== null) {
    sessionLost(err);
    if (m['x-auth'] === 'public') {
      // A public call needs no session: send it again, unsigned, and show both.
      const earlier = rec.exchanges;
      await runCall(m, params, out, form, { earlier, text: 'The session was refused, so this public call was sent again without it.' });
      return;
    }
  }
  const title = [];
  let body;
  if (err === undefined) {
    title.push(badge('ok', 'ok'));
    body = el('pre', { className: 'value', textContent: json(outcome.value) });
  } else if (err instanceof SimpleApiError) {
    title.push(badge(`${err.code} (${err.type})`, 'bad'));
    body = errorBody(err);
    highlight(form, err.details);
  } else if (err instanceof SignatureError) {
    body = el('p', { className: 'error-box', textContent: err.message });
  } else {
    title.push(badge('failed', 'bad'));
    body = el('p', { className: 'error-box', textContent: String(err?.message ?? err) });
  }
  if (first?.response) title.push(badge(`HTTP ${first.response.status}`, 'neutral'));
  if (rec.exchanges.some((x) => x.response?.headers['x-retried'] === '1')) title.push(badge('retried', 'neutral retried', 'The first attempt got no answer; the server answered the retry with that attempt\'s kept outcome (x-retried: 1): the method ran once'));
  title.push(signatureBadge(rec.exchanges, err instanceof SignatureError ? err : null));
  put(view.title, ...title);
  put(view.body, note ? el('p', { className: 'note', textContent: note.text }) : null, body);
  put(view.wire, note ? el('details', { className: 'earlier' }, el('summary', { textContent: 'The refused attempt' }), exchangeView(note.earlier)) : '', exchangeView(rec.exchanges));
}

const MAX_EVENTS = 500;
const MAX_STREAM_TEXT = 100_000;

/** Server-sent events as they arrive, until the stream ends or Stop is pressed. */
async function showStream(view, rec, started) {
  const { response, exchange } = started;
  const list = el('ol', { className: 'events' });
  const count = el('span', { className: 'count', textContent: '0 events' });
  const state = badge('live', 'live');
  const stop = el('button', { type: 'button', className: 'secondary stop', textContent: 'Stop', onclick: () => rec.controller.abort() });
  put(view.title, badge('event stream', 'ok'), badge(`HTTP ${response.status}`, 'neutral'), state, signatureBadge(rec.exchanges, null));
  put(view.body, el('div', { className: 'stream-bar' }, count, stop), list);
  put(view.wire, exchangeView(rec.exchanges));
  const responsePre = view.wire.querySelector('pre.response');
  const head = responsePre.textContent;
  let text = '';
  let n = 0;
  const add = (block) => {
    const ev = { event: 'message', data: [], id: null };
    for (const line of block.split(/\r?\n/)) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') ev.data.push(value);
      else if (field === 'event') ev.event = value;
      else if (field === 'id') ev.id = value;
    }
    if (ev.data.length === 0) return;
    const data = ev.data.join('\n');
    let shown = data;
    try {
      shown = JSON.stringify(JSON.parse(data));
    } catch {
      // not JSON: shown as sent
    }
    n++;
    count.textContent = `${n} event${n === 1 ? '' : 's'}`;
    list.append(el('li', { className: 'event' }, el('span', { className: 'ev-name', textContent: ev.event }), ev.id !== null ? el('span', { className: 'ev-id', textContent: `#${ev.id}` }) : null, el('code', { className: 'ev-data', textContent: shown })));
    // A long stream keeps its latest events only, so the page does not grow without end.
    while (list.childElementCount > MAX_EVENTS) list.firstElementChild.remove();
    list.scrollTop = list.scrollHeight;
  };
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let ending;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const chunk = decoder.decode(value, { stream: true });
      text = (text + chunk).slice(-MAX_STREAM_TEXT);
      buffer += chunk;
      const blocks = buffer.split(/\r?\n\r?\n/);
      buffer = blocks.pop();
      for (const b of blocks) add(b);
      exchange.response.body = text;
      responsePre.textContent = `${head}${text}`;
    }
    if (buffer.trim() !== '') add(buffer);
    ending = ['ended', 'ok', `The server ended the stream after ${n} events.`];
  } catch (err) {
    ending = rec.controller.signal.aborted ? ['stopped', 'neutral', `Stopped after ${n} events; the connection was closed.`] : ['broken', 'bad', `The stream broke: ${err.message}`];
  }
  state.textContent = ending[0];
  state.className = `badge ${ending[1]}`;
  stop.remove();
  view.body.querySelector('.stream-bar').append(el('span', { className: 'hint stream-end', textContent: ending[2] }));
}

/** A background job: the 202 it started with, its progress while polled, then its result. */
async function followJob(view, rec, handle, m, form) {
  const started = rec.exchanges[0];
  const fraction = el('progress', { max: 1, value: 0 });
  const note = el('span', { className: 'job-note', textContent: 'queued' });
  const state = badge('queued', 'neutral job-state');
  const stop = el('button', { type: 'button', className: 'secondary', textContent: 'Stop waiting', onclick: () => rec.controller.abort() });
  const job = el('div', { className: 'job', dataset: { state: 'queued' } },
    el('p', {}, el('strong', { textContent: '202 Accepted' }), ` — job `, el('code', { className: 'job-id', textContent: handle.job_id }), ' at ', el('code', { textContent: handle.location }), '. The method runs in the background; its state is polled from there.'),
    el('div', { className: 'progress-row' }, fraction, note, stop));
  put(view.title, badge('background job', 'ok'), badge(`HTTP ${started.response.status}`, 'neutral'), state);
  put(view.body, job);
  const polls = el('span', { className: 'hint polls' });
  job.append(polls);
  const rest = rec.exchanges.slice();
  const showWire = () => put(view.wire, exchangeView(rest, { openLast: false }));
  showWire();
  const hadSession = client.session !== null;
  let delay = 100;
  let final;
  recorder = newRecorder((x) => {
    rest.push(x);
    polls.textContent = `${rest.length - 1} poll${rest.length === 2 ? '' : 's'} of ${handle.location}`;
    showWire();
  });
  recorder.controller = rec.controller;
  try {
    for (;;) {
      const status = await client.job(handle);
      job.dataset.state = status.state;
      state.textContent = status.state;
      if (status.progress) {
        fraction.value = status.progress.fraction;
        note.textContent = `${Math.round(status.progress.fraction * 100)}%: ${status.progress.note}`;
      } else {
        note.textContent = status.state;
      }
      if (status.state === 'done' || status.state === 'failed') {
        final = { status };
        break;
      }
      await new Promise((resolve, reject) => {
        const t = setTimeout(resolve, delay);
        rec.controller.signal.addEventListener('abort', () => { clearTimeout(t); reject(new DOMException('stopped', 'AbortError')); }, { once: true });
      });
      delay = Math.min(2000, Math.round(delay * 1.5));
    }
  } catch (err) {
    final = { err };
  } finally {
    recorder = null;
  }
  stop.remove();
  const { status, err } = final;
  if (err instanceof SimpleApiError && err.code === 'Unauthenticated' && hadSession && client.session !== null) sessionLost(err);
  const title = [badge('background job', 'ok'), badge(`HTTP ${started.response.status}`, 'neutral')];
  if (status?.state === 'done') {
    title.push(badge('done', 'ok job-state'));
    fraction.value = 1;
    job.append(el('h4', { textContent: 'Result' }), el('pre', { className: 'value', textContent: json(status.result) }));
  } else if (status?.state === 'failed') {
    const e = status.error ?? { code: 'InternalError', type: 'server', message: 'The job failed' };
    title.push(badge(`failed: ${e.code} (${e.type})`, 'bad job-state'));
    job.append(errorBody(e));
    highlight(form, e.details);
  } else if (rec.controller.signal.aborted) {
    title.push(badge('no longer watched', 'neutral job-state'));
    job.append(el('p', { className: 'hint', textContent: `Stopped waiting; the job goes on. Its state: GET ${handle.location}` }));
  } else {
    title.push(badge(err instanceof SimpleApiError ? `${err.code} (${err.type})` : 'failed', 'bad job-state'));
    job.append(err instanceof SimpleApiError ? errorBody(err) : el('p', { className: 'error-box', textContent: String(err?.message ?? err) }));
  }
  title.push(signatureBadge(rest, err instanceof SignatureError ? err : null));
  put(view.title, ...title);
  showWire();
}

// ---------------------------------------------------------------------------------------------
// Start

async function start() {
  try {
    const [infoRes, discoverRes] = await Promise.all([
      fetch('/docs/info.json'),
      fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","method":"rpc.discover","id":1}' }),
    ]);
    info = await infoRes.json();
    methods = (await discoverRes.json()).result.methods;
  } catch (err) {
    const text = `Could not load the server's description: ${err.message}`;
    put($('#method-list'), el('p', { className: 'error-box', textContent: text }));
    put($('#method'), el('p', { className: 'error-box', textContent: `${text}. Is the server running? Reload to try again.` }));
    return;
  }
  client = newClient();
  renderList();
  $('#filter').addEventListener('input', (e) => renderList(e.target.value));
  route();
}
await start();
