// The web page at GET /: submit a repository, watch its status and live log, open the site.
// Plain HTML and a few lines of script; every value from the server is set with textContent. When
// the API asks for a token (401) the page asks for it once and keeps it in this browser's storage;
// the live log is read with fetch, not EventSource, so it can carry the token too.
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Slipway</title>
<style>
  [hidden] { display: none !important; }
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #1b1f24; }
  h1 { margin-bottom: 0; } p.lead { margin-top: .25rem; color: #57606a; }
  form { display: grid; gap: .5rem; grid-template-columns: 1fr 1fr; }
  #auth { margin-top: 1rem; padding: .75rem; border: 1px solid #d4a72c; border-radius: 6px; background: #fff8c5; }
  label { display: grid; font-size: .85rem; color: #57606a; }
  label.wide, button { grid-column: 1 / -1; }
  input { font: inherit; padding: .4rem .5rem; border: 1px solid #d0d7de; border-radius: 6px; }
  button { font: inherit; padding: .5rem; border: 0; border-radius: 6px; background: #1f6feb; color: #fff; cursor: pointer; }
  button:disabled { background: #8c959f; }
  #status { margin-top: 1.5rem; font-weight: 600; }
  #error { color: #cf222e; }
  pre { background: #0d1117; color: #e6edf3; padding: .75rem; border-radius: 6px; max-height: 24rem; overflow: auto; font-size: .8rem; white-space: pre-wrap; }
</style>
</head>
<body>
<h1>Slipway</h1>
<p class="lead">Push a git URL, get a live site.</p>
<form id="deploy">
  <label class="wide">Repository URL <input name="repoUrl" required placeholder="https://github.com/owner/site.git"></label>
  <label>Branch <input name="branch" placeholder="default branch"></label>
  <label>App folder (rootDir) <input name="rootDir" placeholder="."></label>
  <label>Build command <input name="buildCommand" placeholder="npm run build"></label>
  <label>Output folder <input name="outputDir" placeholder="dist, build, out or public"></label>
  <button type="submit">Deploy</button>
</form>
<form id="auth" hidden>
  <label class="wide">This Slipway needs an API token <input id="token" type="password" autocomplete="off" required></label>
  <button type="submit">Save the token in this browser</button>
</form>
<div id="status"></div>
<div id="error"></div>
<p id="site" hidden><a target="_blank" rel="noopener">Open the site</a></p>
<pre id="log" hidden></pre>
<script>
const $ = (id) => document.getElementById(id);
const form = $('deploy');
let source = null, timer = null;
const TOKEN_KEY = 'slipway-api-token';
const headers = (extra) => {
  const token = localStorage.getItem(TOKEN_KEY);
  return Object.assign({}, extra, token ? { authorization: 'Bearer ' + token } : {});
};
async function api(path, options) {
  const res = await fetch(path, Object.assign({}, options, { headers: headers(options && options.headers) }));
  if (res.status === 401) { localStorage.removeItem(TOKEN_KEY); $('auth').hidden = false; $('token').focus(); }
  return res;
}
$('auth').addEventListener('submit', (event) => {
  event.preventDefault();
  localStorage.setItem(TOKEN_KEY, $('token').value.trim());
  $('token').value = ''; $('auth').hidden = true; $('error').textContent = '';
});
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (source) source.abort();
  clearInterval(timer);
  $('error').textContent = ''; $('status').textContent = 'Cloning and uploading…';
  $('site').hidden = true; $('log').hidden = true; $('log').textContent = '';
  const body = {};
  for (const [k, v] of new FormData(form)) if (String(v).trim()) body[k] = String(v).trim();
  form.querySelector('button').disabled = true;
  try {
    const res = await api('/deploy', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const data = await res.json();
    if (!res.ok) throw new Error(data.error ? data.error.message : res.statusText);
    watch(data);
  } catch (err) {
    $('status').textContent = ''; $('error').textContent = err.message;
  } finally {
    form.querySelector('button').disabled = false;
  }
});
function watch(d) {
  $('status').textContent = d.id + ': ' + d.status;
  $('log').hidden = false;
  source = new AbortController();
  tail(d.logsUrl, source.signal).catch(() => {});
  timer = setInterval(async () => {
    const r = await (await api(d.statusUrl)).json();
    $('status').textContent = r.id + ': ' + r.status + (r.error ? ' — ' + r.error : '');
    if (r.status === 'deployed') { const a = $('site').querySelector('a'); a.href = r.url; a.textContent = 'Open ' + r.url; $('site').hidden = false; }
    if (['deployed', 'failed', 'canceled'].includes(r.status)) clearInterval(timer);
  }, 1000);
}
// Build logs keep the tools' colours as data; the page shows the text without the escape codes.
const ANSI = /\\u001b\\[[0-?]*[ -\\/]*[@-~]|\\u001b\\][^\\u0007\\u001b]*(?:\\u0007|\\u001b\\\\)|\\u001b[@-Z\\\\-_]/g;
// Server-sent events over fetch: "data: <line>" messages until "event: end".
async function tail(url, signal) {
  const res = await api(url, { headers: { accept: 'text/event-stream' }, signal });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf('\\n\\n')) >= 0) {
      const message = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
      if (/^event: end$/m.test(message)) return;
      const data = message.split('\\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
      if (data.length) { $('log').textContent += data.join('\\n').replace(ANSI, '') + '\\n'; $('log').scrollTop = 1e9; }
    }
  }
}
</script>
</body>
</html>
`;
