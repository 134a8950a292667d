// The project view: production, branch aliases, domains and hooks, a deploy form, and the history
// with rollback, promote, redeploy and cancel. Refreshed every 2 s while one of its builds runs.
import { call, type Deployment, type Page, type Project } from './api';
import { $, act, enc, h, link, say, sleep, when } from './dom';
import { FINAL, stopWatch } from './panel';
import { showSecrets } from './secrets';
import { showNotify } from './notify';
import { showPreviews } from './previews';
import { state } from './state';

const RUNNING = ['uploading', 'queued', 'building'];

interface Shown {
  name: string;
  project: Project | null;
  rows: Deployment[];
  next: string | null;
  /** The answer that created the project (its hook secret is shown until the page changes). */
  once: Project | null;
  seen?: string;
}
let shown: Shown | null = null;

const deployForm = () => $<HTMLFormElement>('p-deploy');
const branchInput = () => deployForm().elements.namedItem('branch') as HTMLInputElement;

export async function showProject(name: string, me: number): Promise<void> {
  stopWatch();
  shown = { name, project: null, rows: [], next: null, once: state.created && state.created.name === name ? state.created : null };
  state.created = null;
  $('project-view').hidden = false;
  document.title = name + ' · Slipway';
  $('p-name').textContent = name;
  for (const id of ['p-settings', 'p-production', 'p-extra', 'p-msg']) $(id).replaceChildren();
  $('p-pinned').hidden = true;
  $('p-branches').hidden = true;
  $('p-more').hidden = true;
  $<HTMLTableElement>('history').tBodies[0]!.replaceChildren();
  branchInput().value = '';
  deployLabel();
  await refreshProject(me);
  while (me === state.view) {
    await sleep(2000);
    if (me === state.view && shown.rows.some((d) => RUNNING.includes(d.status))) await refreshProject(me);
  }
}

async function refreshProject(me: number): Promise<void> {
  const s = shown!;
  const path = '/projects/' + enc(s.name);
  try {
    const limit = Math.min(100, Math.max(20, s.rows.length));
    const [project, page] = await Promise.all([call<Project>('GET', path), call<Page<Deployment>>('GET', path + '/deployments?limit=' + limit)]);
    // Re-rendered only on a change, so a poll does not take the keyboard focus off a button.
    const seen = JSON.stringify([project, page]);
    if (me !== state.view || seen === s.seen) return;
    Object.assign(s, { project, rows: page.items, next: page.next, seen });
    renderProject();
    renderHistory();
    await showSecrets(project);
    showPreviews(project);
    await showNotify(project);
  } catch (err) {
    if (me === state.view) say('p-msg', (err as Error).message, true);
  }
}

function renderProject(): void {
  const s = shown!;
  const p = s.project!;
  const settings = ['repository ' + p.repoUrl, 'production branch ' + p.productionBranch];
  if (p.rootDir) settings.push('folder ' + p.rootDir);
  if (p.buildCommand) settings.push('build ' + ([] as string[]).concat(p.buildCommand).join(' '));
  if (p.outputDir) settings.push('output ' + p.outputDir);
  if (p.envNames && p.envNames.length) settings.push('env ' + p.envNames.join(', '));
  if (Array.isArray(p.watchPaths)) settings.push('builds pushes that change ' + (p.watchPaths as string[]).join(', '));
  $('p-settings').textContent = settings.join(' · ');
  $('p-production').replaceChildren(
    ...(p.production
      ? ['Production: ', link(p.url), ' serves ', h('a', { href: '#/deployments/' + enc(p.production.id), class: 'mono' }, p.production.id)]
      : ['Production: nothing deployed yet; it will be served at ', link(p.url)]),
  );
  $('p-pinned').hidden = !p.pinned;
  const branches = p.branches || [];
  $('p-branches').hidden = branches.length === 0;
  $('p-branches').querySelector('ul')!.replaceChildren(...branches.map((b) => h('li', {}, link(b.url, b.alias), ' → ', h('a', { href: '#/deployments/' + enc(b.id), class: 'mono' }, b.id))));
  const extra: HTMLElement[] = [];
  if (Array.isArray(p.domains) && p.domains.length) {
    extra.push(
      h(
        'p',
        {},
        'Domains: ',
        ...p.domains.flatMap((d, i) => {
          const host = typeof d === 'string' ? d : d.host || d.name || d.domain || '';
          return [i ? ', ' : '', typeof d !== 'string' && d.url ? link(d.url, host) : host, typeof d !== 'string' && d.status ? ' (' + d.status + ')' : ''];
        }),
      ),
    );
  }
  const hooks = hookItems(p);
  if (hooks.length) extra.push(h('h3', {}, 'Push hooks'), h('ul', {}, ...hooks));
  // The hook secret comes once, in the answer that created the project: shown until the page changes.
  const once = s.once ? hookItems(Object.fromEntries(Object.entries(s.once).filter(([k]) => !(k in p)))) : [];
  if (once.length) extra.push(h('div', { class: 'notice', id: 'p-once' }, s.once!.message || 'Keep these now: they are not shown again.', h('ul', {}, ...once)));
  $('p-extra').replaceChildren(...extra);
  deployLabel();
}

const absolute = (u: string) => (u.startsWith('/') ? location.origin + u : u);
const lines = (v: unknown): string[] =>
  typeof v === 'string'
    ? [absolute(v)]
    : Array.isArray(v)
      ? v.flatMap(lines)
      : v && typeof v === 'object'
        ? Object.entries(v).map(([k, x]) => k + ': ' + (typeof x === 'string' ? absolute(x) : JSON.stringify(x)))
        : [];
/** A project's hook fields (hook URLs, and a new hook secret) as list items of text. */
const hookItems = (obj: Record<string, unknown>) =>
  Object.entries(obj)
    .filter(([k]) => /hook/i.test(k))
    .flatMap(([k, v]) => lines(v).map((line) => h('li', {}, k === 'hooks' ? '' : k + ': ', h('span', { class: 'mono' }, line))));

function deployLabel(): void {
  const branch = branchInput().value.trim();
  const production = shown?.project ? shown.project.productionBranch : '';
  branchInput().placeholder = production;
  deployForm().querySelector('button')!.textContent = 'Deploy ' + (branch || production || 'the production branch');
}

function renderHistory(): void {
  const s = shown!;
  const name = enc(s.name);
  const body = $<HTMLTableElement>('history').tBodies[0]!;
  $('p-more').hidden = !s.next;
  if (!s.rows.length) {
    body.replaceChildren(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No deployments yet.')));
    return;
  }
  body.replaceChildren(
    ...s.rows.map((d) => {
      const button = (label: string, path: string, requestBody?: unknown, done?: string) => {
        const b = h('button', { type: 'button', class: 'small' }, label) as HTMLButtonElement;
        b.addEventListener('click', () =>
          act(b, 'p-msg', async () => {
            const answer = await call<{ message?: string }>('POST', path, requestBody);
            await refreshProject(state.view);
            return answer.message || done;
          }),
        );
        return b;
      };
      const live = d.status === 'deployed' && !d.production;
      return h(
        'tr',
        { 'data-id': d.id },
        h('td', {}, h('a', { href: '#/deployments/' + enc(d.id), class: 'mono' }, d.id), d.status === 'deployed' ? h('div', {}, link(d.url, 'open site')) : null),
        h('td', { class: 'st-' + d.status }, d.status),
        h('td', {}, d.branch || '', h('div', { class: 'mono muted' }, d.commit ? d.commit.slice(0, 7) : '')),
        h('td', {}, when(d.createdAt)),
        h('td', {}, d.production ? h('span', { class: 'badge production' }, 'production') : null, d.alias ? h('span', { class: 'badge' }, d.alias) : null),
        h(
          'td',
          {},
          live && d.target === 'production' ? button('Rollback to this', '/projects/' + name + '/rollback', { deploymentId: d.id }) : null,
          live ? button('Promote', '/projects/' + name + '/promote', { deploymentId: d.id }) : null,
          FINAL.includes(d.status) && d.status !== 'skipped' ? button('Redeploy', '/deployments/' + enc(d.id) + '/redeploy', undefined, d.id + ' is queued to build again') : null,
          d.status === 'queued' || d.status === 'building' ? button('Cancel', '/deployments/' + enc(d.id) + '/cancel', undefined, 'canceling ' + d.id) : null,
        ),
      );
    }),
  );
}

export function startProject(): void {
  branchInput().addEventListener('input', deployLabel);
  deployForm().addEventListener('submit', (event) => {
    event.preventDefault();
    void act(deployForm().querySelector('button')!, 'p-msg', async () => {
      const branch = branchInput().value.trim();
      const d = await call<Deployment>('POST', '/projects/' + enc(shown!.name) + '/deployments', branch ? { branch } : {});
      location.hash = '#/deployments/' + enc(d.id);
    });
  });
  $('p-more').addEventListener('click', () =>
    act($<HTMLButtonElement>('p-more'), 'p-msg', async () => {
      const me = state.view;
      const s = shown!;
      const page = await call<Page<Deployment>>('GET', '/projects/' + enc(s.name) + '/deployments?cursor=' + enc(s.next!));
      if (me !== state.view) return;
      s.rows = s.rows.concat(page.items);
      s.next = page.next;
      renderHistory();
    }),
  );
}
