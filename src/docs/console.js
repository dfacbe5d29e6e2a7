// The API console: methods from rpc.discover, a form per method, calls signed in the browser by
// the project's own client (v2, WebCrypto), and each exchange shown as it went over the wire.
import { SignatureError, SimpleApiClient, SimpleApiError } from '/docs/client.js';

const endpoint = new URL(document.querySelector('meta[name="simpleapi-endpoint"]')?.content ?? '/', location.href).href;
let exchange = null;
/** A fetch that records the exact request and response, headers included, and the time taken. */
const recordingFetch = async (url, init = {}) => {
  const started = performance.now();
  const request = { method: init.method ?? 'GET', url: String(url), headers: { ...(init.headers ?? {}) }, body: init.body ? new TextDecoder().decode(init.body) : '' };
  const res = await fetch(url, init);
  const body = await res.arrayBuffer();
  exchange = {
    request,
    response: { status: res.status, headers: Object.fromEntries(res.headers.entries()), body: new TextDecoder().decode(body) },
    ms: performance.now() - started,
  };
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
};
let client = new SimpleApiClient({ url: endpoint, fetch: recordingFetch });

const $ = (selector, root = document) => root.querySelector(selector);
const el = (tag, { dataset, ...props } = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  if (dataset) Object.assign(node.dataset, dataset);
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
  return node;
};
const json = (value) => JSON.stringify(value, null, 2);

async function discover() {
  const res = await fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","method":"rpc.discover","id":1}' });
  return (await res.json()).result.methods;
}

function renderList(methods, filter = '') {
  const ul = $('#methods ul');
  ul.replaceChildren(
    ...methods
      .filter((m) => m.name.includes(filter))
      .map((m) =>
        el('li', {}, el('button', { type: 'button', onclick: () => renderMethod(m), dataset: { method: m.name } }, el('span', { textContent: m.name }), el('span', { className: `badge ${m['x-auth']}`, textContent: m['x-auth'] }))),
      ),
  );
}

/** The fields of an object schema, or null when the params are better written as JSON. */
function formFields(schema) {
  if (!schema || schema.type !== 'object' || !schema.properties) return null;
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties).map(([name, sub]) => ({ name, schema: sub, required: required.has(name) }));
}

function inputFor({ name, schema }) {
  if (Array.isArray(schema.enum)) return el('select', { name }, el('option', { value: '', textContent: '' }), schema.enum.map((v) => el('option', { value: JSON.stringify(v), textContent: String(v) })));
  if (schema.type === 'boolean') return el('input', { type: 'checkbox', name });
  if (schema.type === 'integer' || schema.type === 'number') return el('input', { type: 'number', name, step: schema.type === 'integer' ? '1' : 'any' });
  if (schema.type === 'string') return el('input', { type: /password/.test(name) ? 'password' : 'text', name });
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

function renderMethod(m) {
  for (const b of document.querySelectorAll('#methods button')) b.setAttribute('aria-current', String(b.dataset.method === m.name));
  const schema = m['x-params-schema'];
  const fields = formFields(schema);
  const raw = el('textarea', { name: 'params', dataset: { raw: 'true' }, value: json(schema?.type === 'array' ? [] : {}) });
  const form = el('form', { id: 'call-form', noValidate: true });
  if (fields) form.append(...fields.map((f) => el('div', { className: 'field', dataset: { name: f.name } }, el('label', { htmlFor: `f-${f.name}`, textContent: `${f.name}${f.required ? ' *' : ''}` }), Object.assign(inputFor(f), { id: `f-${f.name}` }), f.schema.description ? el('small', { textContent: f.schema.description }) : null)));
  const rawBox = el('details', { open: !fields }, el('summary', { textContent: fields ? 'Edit the params as JSON instead' : 'Params (JSON)' }), el('div', { className: 'field', dataset: { name: 'params' } }, raw));
  form.append(rawBox, el('div', { className: 'actions' }, el('button', { type: 'submit', textContent: `Call ${m.name}` }), m['x-auth'] === 'session' ? el('span', { className: 'hint', textContent: 'needs a signed-in session' }) : null));
  const out = el('div', { id: 'output' });
  form.onsubmit = async (event) => {
    event.preventDefault();
    for (const f of form.querySelectorAll('.field')) {
      f.classList.remove('invalid');
      f.querySelector('.problem')?.remove();
    }
    let params;
    try {
      params = fields && !rawBox.open ? readForm(form, fields) : JSON.parse(raw.value);
    } catch (err) {
      out.replaceChildren(el('div', { className: 'result error-box', textContent: `The params are not valid JSON: ${err.message}` }));
      return;
    }
    await runCall(m.name, params, out, form);
  };
  $('#method').replaceChildren(
    el('h2', { textContent: m.name }),
    el('p', { className: 'desc', textContent: m.description ?? '' }),
    el('span', { className: `badge ${m['x-auth']}`, textContent: m['x-auth'] === 'session' ? 'session' : 'public' }),
    el('details', {}, el('summary', { textContent: 'Params schema' }), el('pre', { textContent: json(schema ?? {}) })),
    el('details', {}, el('summary', { textContent: 'Result schema' }), el('pre', { textContent: json(m.result?.schema ?? {}) })),
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

function exchangeView() {
  if (!exchange) return null;
  const { request, response, ms } = exchange;
  const head = (h) => Object.entries(h).map(([k, v]) => `${k}: ${v}`).join('\n');
  return el('div', {},
    el('details', { open: true }, el('summary', { textContent: `Request, ${request.method} ${request.url}` }), el('pre', { className: 'request', textContent: `${head(request.headers)}\n\n${request.body}` })),
    el('details', { open: true }, el('summary', { textContent: `Response, ${response.status} in ${ms.toFixed(1)} ms` }), el('pre', { className: 'response', textContent: `${head(response.headers)}\n\n${response.body}` })),
  );
}

async function runCall(name, params, out, form) {
  exchange = null;
  const signed = client.session !== null;
  let title;
  let body;
  try {
    const result = await client.call(name, params, { wait: true });
    title = [el('span', { className: 'badge ok', textContent: 'ok' })];
    body = el('pre', { className: 'value', textContent: json(result) });
  } catch (err) {
    if (err instanceof SimpleApiError) {
      title = [el('span', { className: 'badge bad', textContent: `${err.code} (${err.type})` })];
      body = el('div', { className: 'error-box' }, el('p', { textContent: err.message }), err.details ? el('pre', { className: 'details', textContent: json(err.details) }) : null);
      highlight(form, err.details);
    } else if (err instanceof SignatureError) {
      title = [el('span', { className: 'badge bad signature', textContent: 'signature INVALID' })];
      body = el('p', { className: 'error-box', textContent: err.message });
    } else {
      title = [el('span', { className: 'badge bad', textContent: 'failed' })];
      body = el('p', { className: 'error-box', textContent: String(err) });
    }
  }
  if (signed && !(title[0].classList.contains('signature'))) title.push(el('span', { className: 'badge ok signature', textContent: 'signature valid' }));
  if (!signed) title.push(el('span', { className: 'badge', textContent: 'not signed' }));
  out.replaceChildren(el('div', { className: 'result' }, el('h3', {}, title), body, exchangeView()));
}

function showSession() {
  const s = client.session;
  $('#who').textContent = s ? `signed in as ${s.userId}` : 'not signed in';
  $('#logout').hidden = !s;
}

$('#account').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const action = event.submitter?.dataset.action ?? 'login';
  try {
    if (action === 'create') await client.create(form.user_id.value, form.password.value);
    else await client.login(form.user_id.value, form.password.value);
    form.password.value = '';
  } catch (err) {
    $('#who').textContent = err instanceof SimpleApiError ? `${err.code}: ${err.message}` : String(err);
    return;
  }
  showSession();
});
$('#logout').addEventListener('click', async () => {
  try {
    await client.logout();
  } finally {
    client = new SimpleApiClient({ url: endpoint, fetch: recordingFetch });
    showSession();
  }
});

const methods = await discover();
renderList(methods);
$('#filter').addEventListener('input', (e) => renderList(methods, e.target.value));
