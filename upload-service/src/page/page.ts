// The web page at GET /: deploy a URL, list and create projects, a project's production, aliases and
// deployment history (deploy, rollback, promote, redeploy, cancel), and one deployment's status and
// live log. Hash routes (#/, #/projects/<name>, #/deployments/<id>) so every view has a deep link that
// survives a reload. Plain HTML and a little script; every value from the server is set with
// textContent or as an attribute, never as HTML. When the API asks for a token (401) the page asks for
// it once and keeps it in this browser's storage; the log is read with fetch (?after=<cursor>), not
// EventSource, so it can carry the token too.
// Over 300 lines: the page is still script in a template string; issue 20 turns it into a typed front-end module.
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Slipway</title>
<style>
  [hidden] { display: none !important; }
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 56rem; margin: 2rem auto; padding: 0 1rem; color: #1b1f24; }
  h1 { margin-bottom: 0; } h1 a { color: inherit; text-decoration: none; } p.lead { margin-top: .25rem; color: #57606a; }
  h2 { font-size: 1.3rem; margin: 1.75rem 0 .5rem; } h2:focus { outline: none; } h3 { font-size: 1rem; margin: 1.5rem 0 .5rem; }
  a { color: #0969da; }
  form { display: grid; gap: .5rem; grid-template-columns: 1fr 1fr; }
  form.row { grid-template-columns: minmax(0, 22rem) auto; justify-content: start; align-items: end; } form.row button { grid-column: auto; padding: .45rem 1rem; }
  #auth { margin-top: 1rem; padding: .75rem; border: 1px solid #d4a72c; border-radius: 6px; background: #fff8c5; }
  label { display: grid; font-size: .85rem; color: #57606a; }
  label.wide, button { grid-column: 1 / -1; }
  input { font: inherit; padding: .4rem .5rem; border: 1px solid #d0d7de; border-radius: 6px; }
  button { font: inherit; padding: .5rem; border: 0; border-radius: 6px; background: #1f6feb; color: #fff; cursor: pointer; }
  button:disabled { background: #8c959f; }
  button.small { font-size: .8rem; padding: .15rem .55rem; margin: 0 .3rem .3rem 0; background: #f6f8fa; color: #1f2328; border: 1px solid #d0d7de; }
  button.small:disabled { color: #8c959f; }
  #status { margin-top: 1.5rem; font-weight: 600; }
  #error, .error { color: #cf222e; } .msg.ok { color: #1a7f37; }
  .muted { color: #57606a; } .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85em; overflow-wrap: anywhere; }
  .notice { margin: 1rem 0; padding: .5rem .75rem; border: 1px solid #d4a72c; border-radius: 6px; background: #fff8c5; }
  table { width: 100%; border-collapse: collapse; font-size: .9rem; }
  th, td { text-align: left; padding: .4rem .6rem .4rem 0; border-bottom: 1px solid #d0d7de; vertical-align: top; }
  th { font-size: .8rem; font-weight: 600; color: #57606a; }
  .badge { display: inline-block; padding: 0 .45rem; margin: 0 .25rem .2rem 0; border-radius: 1rem; font-size: .75rem; background: #ddf4ff; color: #0969da; }
  .badge.production { background: #dafbe1; color: #1a7f37; }
  .st-deployed { color: #1a7f37; } .st-failed { color: #cf222e; } .st-queued, .st-building, .st-uploading { color: #9a6700; }
  pre { background: #0d1117; color: #e6edf3; padding: .75rem; border-radius: 6px; max-height: 24rem; overflow: auto; font-size: .8rem; white-space: pre-wrap; }
</style>
</head>
<body>
<h1><a href="#/">Slipway</a></h1>
<p class="lead">Push a git URL, get a live site.</p>
<form id="auth" hidden>
  <label class="wide">This Slipway needs an API token <input id="token" type="password" autocomplete="off" required></label>
  <button type="submit">Save the token in this browser</button>
</form>

<section id="home-view" hidden>
<form id="deploy">
  <label class="wide">Repository URL <input name="repoUrl" required placeholder="https://github.com/owner/site.git"></label>
  <label>Branch <input name="branch" placeholder="default branch"></label>
  <label>App folder (rootDir) <input name="rootDir" placeholder="."></label>
  <label>Build command <input name="buildCommand" placeholder="npm run build"></label>
  <label>Output folder <input name="outputDir" placeholder="dist, build, out or public"></label>
  <button type="submit">Deploy</button>
</form>
<div id="error" role="alert"></div>
<div id="home-slot"></div>
<h2 tabindex="-1">Projects</h2>
<p id="projects-note" class="msg" role="status"></p>
<table id="projects"><thead><tr><th>Project</th><th>Production</th><th>Latest deployment</th></tr></thead><tbody></tbody></table>
<p><button id="more-projects" class="small" type="button" hidden>Load more projects</button></p>
<h3>New project</h3>
<form id="new-project">
  <label>Name <input name="name" required pattern="[a-z0-9]+(-[a-z0-9]+)*" maxlength="40" placeholder="shop"></label>
  <label>Production branch <input name="productionBranch" placeholder="main"></label>
  <label class="wide">Repository URL <input name="repoUrl" required placeholder="https://github.com/owner/shop.git"></label>
  <label>App folder (rootDir) <input name="rootDir" placeholder="."></label>
  <label>Build command <input name="buildCommand" placeholder="npm run build"></label>
  <label>Output folder <input name="outputDir" placeholder="dist, build, out or public"></label>
  <button type="submit">Create project</button>
</form>
<p id="new-project-msg" class="msg" role="alert"></p>
</section>

<section id="project-view" hidden>
<p><a href="#/">← All projects</a></p>
<h2 id="p-name" tabindex="-1"></h2>
<p id="p-settings" class="muted"></p>
<p id="p-production"></p>
<p id="p-pinned" class="notice" hidden>Rolled back: new production builds will not move it until you promote a deployment.</p>
<div id="p-branches" hidden><h3>Branch aliases</h3><ul></ul></div>
<div id="p-extra"></div>
<form id="p-deploy" class="row">
  <label>Branch <input name="branch" autocomplete="off"></label>
  <button type="submit"></button>
</form>
<p id="p-msg" class="msg" role="alert"></p>
<h3>Deployments</h3>
<table id="history"><thead><tr><th>Deployment</th><th>Status</th><th>Branch</th><th>Created</th><th>Serves</th><th>Actions</th></tr></thead><tbody></tbody></table>
<p><button id="p-more" class="small" type="button" hidden>Load more</button></p>
</section>

<section id="deployment-view" hidden>
<p><a id="d-back" href="#/">← All projects</a></p>
<h2 id="d-title" tabindex="-1"></h2>
<div id="deployment-slot"></div>
</section>

<div id="panel" hidden>
  <div id="status"></div>
  <p id="d-meta" class="muted"></p>
  <p id="failure" class="error"></p>
  <p id="site" hidden><a target="_blank" rel="noopener">Open the site</a></p>
  <p><button id="d-cancel" class="small" type="button" hidden>Cancel</button><button id="d-redeploy" class="small" type="button" hidden>Redeploy</button>
    <a id="d-link">Deployment page</a></p>
  <p id="d-msg" class="msg" role="alert"></p>
  <pre id="log"></pre>
</div>
<script>
const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'slipway-api-token';
const FINAL = ['deployed', 'failed', 'canceled'];
const RUNNING = ['uploading', 'queued', 'building'];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const enc = encodeURIComponent;
let view = 0, current = null;          // bumped on each route: an older view's loops stop
let watching = 0, watchedId = null;    // bumped when the panel follows another deployment, or none
let shown = null;                      // the project view's state: { name, project, rows, next, once }
let created = null;                    // this page's answer to POST /projects, with what is shown once

async function api(path, options, quiet) {
  const token = localStorage.getItem(TOKEN_KEY);
  const headers = Object.assign({}, options && options.headers, token ? { authorization: 'Bearer ' + token } : {});
  const res = await fetch(path, Object.assign({}, options, { headers }));
  if (res.status === 401) {
    // Forget only the token this request carried: one saved while it was on its way is still untried.
    if (token && localStorage.getItem(TOKEN_KEY) === token) localStorage.removeItem(TOKEN_KEY);
    if (!quiet) askToken();
  }
  return res;
}
/** The answer's JSON, or an Error carrying the API's message and the HTTP status. */
async function call(method, path, body, quiet) {
  const options = { method };
  if (body !== undefined) { options.headers = { 'content-type': 'application/json' }; options.body = JSON.stringify(body); }
  const res = await api(path, options, quiet);
  const data = await res.json().catch(() => null);
  if (!res.ok) { const err = new Error(data && data.error ? data.error.message : res.status + ' ' + res.statusText); err.status = res.status; throw err; }
  return data;
}
function askToken() { $('auth').hidden = false; $('token').focus(); }
$('auth').addEventListener('submit', (event) => {
  event.preventDefault();
  localStorage.setItem(TOKEN_KEY, $('token').value.trim());
  $('token').value = ''; $('auth').hidden = true; $('error').textContent = '';
  for (const m of document.querySelectorAll('.msg')) m.textContent = '';
  route();
});

/** An element; strings among the children become text nodes, function attributes become listeners. */
function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (typeof v === 'function') e.addEventListener(k, v);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v);
  }
  e.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return e;
}
const link = (url, text) => h('a', { href: /^https?:[/][/]/.test(url) ? url : null, target: '_blank', rel: 'noopener' }, text || url);
const when = (iso) => iso ? new Date(iso).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' }) : '';
function say(id, text, isError) { $(id).textContent = text || ''; $(id).className = 'msg' + (isError ? ' error' : ' ok'); }
/** Runs a button's request; its failure shows the API's message in the element msgId. */
async function act(button, msgId, work) {
  button.disabled = true; say(msgId, '');
  try { const text = await work(); if (text) say(msgId, text); } catch (err) { say(msgId, err.message, true); } finally { button.disabled = false; }
}
const formBody = (form) => {
  const body = {};
  for (const [k, v] of new FormData(form)) if (String(v).trim()) body[k] = String(v).trim();
  return body;
};

function route() {
  let parts;
  try { parts = location.hash.split('/').map(decodeURIComponent); } catch { parts = []; }
  const [, kind, arg] = parts;
  const me = ++view, from = current;
  for (const s of ['home-view', 'project-view', 'deployment-view']) $(s).hidden = true;
  if (kind === 'projects' && arg) { current = 'project'; return showProject(arg, me); }
  if (kind === 'deployments' && arg) { current = 'deployment'; return showDeployment(arg); }
  current = 'home';
  $('home-view').hidden = false; document.title = 'Slipway';
  if (from !== 'home') { stopWatch(); $('home-slot').append($('panel')); $('panel').hidden = true; }
  loadProjects(me, null);
}
window.addEventListener('hashchange', () => {
  route();
  const heading = document.querySelector('section:not([hidden]) h2');
  if (heading) heading.focus();
});

// Home: deploy a URL, the projects, a new project.
const form = $('deploy');
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  stopWatch(); resetPanel(null);
  $('error').textContent = ''; $('status').textContent = 'Cloning and uploading…'; $('panel').hidden = false;
  form.querySelector('button').disabled = true;
  try {
    watch((await call('POST', '/deploy', formBody(form))).id);
  } catch (err) {
    $('panel').hidden = true; $('error').textContent = err.message;
  } finally {
    form.querySelector('button').disabled = false;
  }
});
let projectsNext = null;
async function loadProjects(me, cursor) {
  let page;
  try {
    // Quiet: a list the visitor did not ask for does not pop up the token question.
    page = await call('GET', '/projects' + (cursor ? '?cursor=' + enc(cursor) : ''), undefined, true);
  } catch (err) {
    if (me !== view) return;
    if (err.status === 401) $('projects-note').replaceChildren('The projects need the API token. ', h('button', { type: 'button', class: 'small', click: askToken }, 'Enter the token'));
    else say('projects-note', err.message, true);
    return;
  }
  if (me !== view) return;
  const rows = $('projects').tBodies[0];
  if (!cursor) rows.replaceChildren();
  say('projects-note', page.items.length || cursor ? '' : 'No projects yet: create one below.');
  for (const p of page.items) {
    const latest = h('td', { class: 'muted' }, '…');
    rows.append(h('tr', { 'data-name': p.name },
      h('td', {}, h('a', { href: '#/projects/' + enc(p.name) }, p.name)),
      h('td', {}, p.production ? link(p.url) : h('span', { class: 'muted' }, 'nothing deployed yet'), p.pinned ? ' ' : null, p.pinned ? h('span', { class: 'badge' }, 'pinned') : null),
      latest));
    call('GET', '/projects/' + enc(p.name) + '/deployments?limit=1', undefined, true).then((d) => {
      const x = d.items[0];
      latest.replaceChildren(...(x ? [h('a', { href: '#/deployments/' + enc(x.id), class: 'st-' + x.status }, x.status), ' ' + (x.branch || '') + ', ' + when(x.createdAt)] : ['none']));
    }, (err) => { latest.textContent = err.message; });
  }
  projectsNext = page.next;
  $('more-projects').hidden = !page.next;
}
$('more-projects').addEventListener('click', () => loadProjects(view, projectsNext));
$('new-project').addEventListener('submit', (event) => {
  event.preventDefault();
  const f = event.target;
  act(f.querySelector('button'), 'new-project-msg', async () => {
    const p = await call('POST', '/projects', formBody(f));
    f.reset(); created = p;
    location.hash = '#/projects/' + enc(p.name);
  });
});

// A project: production, aliases, deploy, history. Refreshed every 2 s while one of its builds runs.
async function showProject(name, me) {
  stopWatch();
  shown = { name, project: null, rows: [], next: null, once: created && created.name === name ? created : null };
  created = null;
  $('project-view').hidden = false; document.title = name + ' · Slipway';
  $('p-name').textContent = name;
  for (const id of ['p-settings', 'p-production', 'p-extra', 'p-msg']) $(id).replaceChildren();
  $('p-pinned').hidden = true; $('p-branches').hidden = true; $('p-more').hidden = true;
  $('history').tBodies[0].replaceChildren();
  $('p-deploy').branch.value = ''; deployLabel();
  await refreshProject(me);
  while (me === view) {
    await sleep(2000);
    if (me === view && shown.rows.some((d) => RUNNING.includes(d.status))) await refreshProject(me);
  }
}
async function refreshProject(me) {
  const path = '/projects/' + enc(shown.name);
  try {
    const limit = Math.min(100, Math.max(20, shown.rows.length));
    const [project, page] = await Promise.all([call('GET', path), call('GET', path + '/deployments?limit=' + limit)]);
    // Re-rendered only on a change, so a poll does not take the keyboard focus off a button.
    const seen = JSON.stringify([project, page]);
    if (me !== view || seen === shown.seen) return;
    Object.assign(shown, { project, rows: page.items, next: page.next, seen });
    renderProject(); renderHistory();
  } catch (err) {
    if (me === view) say('p-msg', err.message, true);
  }
}
function renderProject() {
  const p = shown.project;
  const settings = ['repository ' + p.repoUrl, 'production branch ' + p.productionBranch];
  if (p.rootDir) settings.push('folder ' + p.rootDir);
  if (p.buildCommand) settings.push('build ' + [].concat(p.buildCommand).join(' '));
  if (p.outputDir) settings.push('output ' + p.outputDir);
  if (p.envNames && p.envNames.length) settings.push('env ' + p.envNames.join(', '));
  $('p-settings').textContent = settings.join(' · ');
  $('p-production').replaceChildren(...(p.production
    ? ['Production: ', link(p.url), ' serves ', h('a', { href: '#/deployments/' + enc(p.production.id), class: 'mono' }, p.production.id)]
    : ['Production: nothing deployed yet; it will be served at ', link(p.url)]));
  $('p-pinned').hidden = !p.pinned;
  const branches = p.branches || [];
  $('p-branches').hidden = branches.length === 0;
  $('p-branches').querySelector('ul').replaceChildren(...branches.map((b) =>
    h('li', {}, link(b.url, b.alias), ' → ', h('a', { href: '#/deployments/' + enc(b.id), class: 'mono' }, b.id))));
  const extra = [];
  if (Array.isArray(p.domains) && p.domains.length) {
    extra.push(h('p', {}, 'Domains: ', ...p.domains.flatMap((d, i) => {
      const host = typeof d === 'string' ? d : d.host || d.name || d.domain;
      return [i ? ', ' : '', d.url ? link(d.url, host) : host, d.status ? ' (' + d.status + ')' : ''];
    })));
  }
  const hooks = hookItems(p);
  if (hooks.length) extra.push(h('h3', {}, 'Push hooks'), h('ul', {}, ...hooks));
  // The hook secret comes once, in the answer that created the project: shown until the page changes.
  const once = shown.once ? hookItems(Object.fromEntries(Object.entries(shown.once).filter(([k]) => !(k in p)))) : [];
  if (once.length) extra.push(h('div', { class: 'notice', id: 'p-once' }, shown.once.message || 'Keep these now: they are not shown again.', h('ul', {}, ...once)));
  $('p-extra').replaceChildren(...extra);
  deployLabel();
}
const absolute = (u) => typeof u === 'string' && u.startsWith('/') ? location.origin + u : u;
const lines = (v) => typeof v === 'string' ? [absolute(v)]
  : Array.isArray(v) ? v.flatMap(lines)
  : v && typeof v === 'object' ? Object.entries(v).map(([k, x]) => k + ': ' + (typeof x === 'string' ? absolute(x) : JSON.stringify(x))) : [];
/** A project's hook fields (hook URLs, and a new hook secret) as list items of text. */
const hookItems = (obj) => Object.entries(obj).filter(([k]) => /hook/i.test(k))
  .flatMap(([k, v]) => lines(v).map((line) => h('li', {}, k === 'hooks' ? '' : k + ': ', h('span', { class: 'mono' }, line))));
function deployLabel() {
  const branch = $('p-deploy').branch.value.trim();
  const production = shown && shown.project ? shown.project.productionBranch : '';
  $('p-deploy').branch.placeholder = production;
  $('p-deploy').querySelector('button').textContent = 'Deploy ' + (branch || production || 'the production branch');
}
$('p-deploy').branch.addEventListener('input', deployLabel);
$('p-deploy').addEventListener('submit', (event) => {
  event.preventDefault();
  act(event.target.querySelector('button'), 'p-msg', async () => {
    const branch = $('p-deploy').branch.value.trim();
    const d = await call('POST', '/projects/' + enc(shown.name) + '/deployments', branch ? { branch } : {});
    location.hash = '#/deployments/' + enc(d.id);
  });
});
function renderHistory() {
  const name = enc(shown.name);
  $('p-more').hidden = !shown.next;
  if (!shown.rows.length) return $('history').tBodies[0].replaceChildren(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No deployments yet.')));
  $('history').tBodies[0].replaceChildren(...shown.rows.map((d) => {
    const button = (label, path, body, done) => {
      const b = h('button', { type: 'button', class: 'small' }, label);
      b.addEventListener('click', () => act(b, 'p-msg', async () => {
        const answer = await call('POST', path, body);
        await refreshProject(view);
        return answer.message || done;
      }));
      return b;
    };
    const live = d.status === 'deployed' && !d.production;
    return h('tr', { 'data-id': d.id },
      h('td', {}, h('a', { href: '#/deployments/' + enc(d.id), class: 'mono' }, d.id), d.status === 'deployed' ? h('div', {}, link(d.url, 'open site')) : null),
      h('td', { class: 'st-' + d.status }, d.status),
      h('td', {}, d.branch || '', h('div', { class: 'mono muted' }, d.commit ? d.commit.slice(0, 7) : '')),
      h('td', {}, when(d.createdAt)),
      h('td', {}, d.production ? h('span', { class: 'badge production' }, 'production') : null, d.alias ? h('span', { class: 'badge' }, d.alias) : null),
      h('td', {},
        live && d.target === 'production' ? button('Rollback to this', '/projects/' + name + '/rollback', { deploymentId: d.id }) : null,
        live ? button('Promote', '/projects/' + name + '/promote', { deploymentId: d.id }) : null,
        FINAL.includes(d.status) ? button('Redeploy', '/deployments/' + enc(d.id) + '/redeploy', undefined, d.id + ' is queued to build again') : null,
        d.status === 'queued' || d.status === 'building' ? button('Cancel', '/deployments/' + enc(d.id) + '/cancel', undefined, 'canceling ' + d.id) : null));
  }));
}
$('p-more').addEventListener('click', () => act($('p-more'), 'p-msg', async () => {
  const me = view;
  const page = await call('GET', '/projects/' + enc(shown.name) + '/deployments?cursor=' + enc(shown.next));
  if (me !== view) return;
  shown.rows = shown.rows.concat(page.items); shown.next = page.next;
  renderHistory();
}));

// One deployment: its status, its site, its live log; the same panel follows a deploy from the home form.
function showDeployment(id) {
  $('deployment-view').hidden = false; document.title = id + ' · Slipway';
  $('d-title').textContent = 'Deployment ' + id;
  $('d-back').href = '#/'; $('d-back').textContent = '← All projects';
  $('deployment-slot').append($('panel'));
  watch(id);
}
function stopWatch() { watching++; watchedId = null; }
function resetPanel(id) {
  $('status').textContent = id ? id + ': …' : '';
  for (const e of ['d-meta', 'failure', 'log', 'd-msg']) $(e).textContent = '';
  $('site').hidden = true; $('d-cancel').hidden = true; $('d-redeploy').hidden = true;
  $('d-link').hidden = !id || current === 'deployment';
  if (id) $('d-link').href = '#/deployments/' + enc(id);
}
// Build logs keep the tools' colours as data; the page shows the text without the escape codes.
const ANSI = /\\u001b\\[[0-?]*[ -\\/]*[@-~]|\\u001b\\][^\\u0007\\u001b]*(?:\\u0007|\\u001b\\\\)|\\u001b[@-Z\\\\-_]/g;
/** Follows a deployment: its record and new log lines every second until it is final. */
async function watch(id) {
  const me = ++watching;
  watchedId = id; resetPanel(id); $('panel').hidden = false;
  let cursor = null;
  for (;;) {
    let r;
    try {
      // The record first: once it reads final, the log read after it holds every line.
      r = await call('GET', '/deployments/' + enc(id));
      for (;;) {
        const log = await call('GET', '/deployments/' + enc(id) + '/logs' + (cursor ? '?after=' + enc(cursor) : ''));
        if (me !== watching) return;
        if (log.cursor !== '-') cursor = log.cursor;
        if (log.lines.length) { $('log').textContent += log.lines.join('\\n').replace(ANSI, '') + '\\n'; $('log').scrollTop = 1e9; }
        if (log.lines.length < 1000) break;
      }
    } catch (err) {
      if (me !== watching) return;
      say('d-msg', err.message, true);
      if (err.status === 401 || err.status === 404) return;
      await sleep(2000);
      continue;
    }
    showRecord(r);
    if (FINAL.includes(r.status)) return;
    await sleep(1000);
    if (me !== watching) return;
  }
}
function showRecord(r) {
  $('status').textContent = r.id + ': ' + r.status + (r.cancelRequested ? ' (canceling)' : '');
  $('d-meta').textContent = [r.repoUrl, r.branch ? 'branch ' + r.branch : '', r.commit ? 'commit ' + r.commit.slice(0, 7) : '', 'created ' + when(r.createdAt)].filter(Boolean).join(' · ');
  $('failure').textContent = r.status === 'failed' || r.status === 'canceled' ? r.error || '' : '';
  if (r.status === 'deployed' || r.liveBuild) {
    const a = $('site').querySelector('a'); a.href = r.url; a.textContent = 'Open ' + r.url; $('site').hidden = false;
  }
  $('d-cancel').hidden = r.status !== 'queued' && r.status !== 'building';
  $('d-redeploy').hidden = !FINAL.includes(r.status);
  if (current === 'deployment' && r.project) { $('d-back').href = '#/projects/' + enc(r.project); $('d-back').textContent = '← ' + r.project; }
}
$('d-cancel').addEventListener('click', () => act($('d-cancel'), 'd-msg', async () => {
  const answer = await call('POST', '/deployments/' + enc(watchedId) + '/cancel');
  return answer.status === 'canceling' ? 'Canceling: the build stops within a second.' : '';
}));
$('d-redeploy').addEventListener('click', () => act($('d-redeploy'), 'd-msg', async () => {
  const id = watchedId;
  await call('POST', '/deployments/' + enc(id) + '/redeploy');
  watch(id);
}));
route();
</script>
</body>
</html>
`;
