// The home view: deploy a URL (the panel follows it), the projects with their production and latest
// deployment, and a form for a new project.
import { ApiError, askToken, call, type Deployment, type Page, type Project } from './api';
import { $, act, enc, formBody, h, link, say, when } from './dom';
import { resetPanel, stopWatch, watch } from './panel';
import { state } from './state';

let projectsNext: string | null = null;

export async function loadProjects(me: number, cursor: string | null): Promise<void> {
  let page: Page<Project>;
  try {
    // Quiet: a list the visitor did not ask for does not pop up the token question.
    page = await call<Page<Project>>('GET', '/projects' + (cursor ? '?cursor=' + enc(cursor) : ''), undefined, true);
  } catch (err) {
    if (me !== state.view) return;
    if (err instanceof ApiError && err.status === 401) $('projects-note').replaceChildren('The projects need the API token. ', h('button', { type: 'button', class: 'small', click: askToken }, 'Enter the token'));
    else say('projects-note', (err as Error).message, true);
    return;
  }
  if (me !== state.view) return;
  const rows = $<HTMLTableElement>('projects').tBodies[0]!;
  if (!cursor) rows.replaceChildren();
  say('projects-note', page.items.length || cursor ? '' : 'No projects yet: create one below.');
  for (const p of page.items) {
    const latest = h('td', { class: 'muted' }, '…');
    rows.append(
      h(
        'tr',
        { 'data-name': p.name },
        h('td', {}, h('a', { href: '#/projects/' + enc(p.name) }, p.name)),
        h('td', {}, p.production ? link(p.url) : h('span', { class: 'muted' }, 'nothing deployed yet'), p.pinned ? ' ' : null, p.pinned ? h('span', { class: 'badge' }, 'pinned') : null),
        latest,
      ),
    );
    call<Page<Deployment>>('GET', '/projects/' + enc(p.name) + '/deployments?limit=1', undefined, true).then(
      (d) => {
        const x = d.items[0];
        latest.replaceChildren(...(x ? [h('a', { href: '#/deployments/' + enc(x.id), class: 'st-' + x.status }, x.status), ' ' + (x.branch || '') + ', ' + when(x.createdAt)] : ['none']));
      },
      (err: Error) => {
        latest.textContent = err.message;
      },
    );
  }
  projectsNext = page.next;
  $('more-projects').hidden = !page.next;
}

export function startHome(): void {
  const form = $<HTMLFormElement>('deploy');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    stopWatch();
    resetPanel(null);
    $('error').textContent = '';
    $('status').textContent = 'Cloning and uploading…';
    $('panel').hidden = false;
    const button = form.querySelector('button')!;
    button.disabled = true;
    try {
      void watch((await call<Deployment>('POST', '/deploy', formBody(form))).id);
    } catch (err) {
      $('panel').hidden = true;
      $('error').textContent = (err as Error).message;
    } finally {
      button.disabled = false;
    }
  });
  $('more-projects').addEventListener('click', () => void loadProjects(state.view, projectsNext));
  $('new-project').addEventListener('submit', (event) => {
    event.preventDefault();
    const f = event.target as HTMLFormElement;
    void act(f.querySelector('button')!, 'new-project-msg', async () => {
      const p = await call<Project>('POST', '/projects', formBody(f));
      f.reset();
      state.created = p;
      location.hash = '#/projects/' + enc(p.name);
    });
  });
}
