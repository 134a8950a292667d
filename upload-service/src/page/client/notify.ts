// The project view's forge loop: whether a forge token is set (write-only: sent once from a password
// field), which webhooks the project notifies, and what the last deliveries answered; the deployment
// view lists its own deliveries (commit statuses, the pull request's comment, webhooks).
import { call, type Project } from './api';
import { $, act, enc, h, when } from './dom';

export interface Delivery {
  at: string;
  kind: string;
  target: string;
  ok: boolean;
  event?: string;
  state?: string;
  code?: number;
  error?: string;
  retryAt?: string;
}

let project: string | null = null;

const answer = (d: Delivery) => (d.ok ? 'delivered' + (d.code ? ' (' + d.code + ')' : '') : (d.error || 'failed') + (d.retryAt ? '; again at ' + when(d.retryAt) : '; given up'));

export async function showNotify(p: Project): Promise<void> {
  project = p.name;
  $('p-forge').textContent = p.forge ? 'Forge token: set' + (p.forge.apiUrl ? ', for ' + p.forge.apiUrl : '') + '. Hooks\' deployments post commit statuses and one comment per pull request.' : 'Forge token: none (set one for commit statuses and pull-request comments).';
  const hooks = p.notifications ?? [];
  $('p-hooks').textContent = hooks.length ? 'Notifies ' + hooks.map((n) => n.url + (n.events ? ' (' + n.events.join(', ') + ')' : '')).join(', ') + '.' : 'No webhooks (set notifications through the API).';
  const { items } = await call<{ items: Delivery[] }>('GET', '/projects/' + enc(p.name) + '/deliveries');
  if (project !== p.name) return;
  const body = $<HTMLTableElement>('p-deliveries').tBodies[0]!;
  body.replaceChildren(
    ...(items.length
      ? items.slice(0, 10).map((d) => h('tr', { class: d.ok ? '' : 'error' }, h('td', {}, when(d.at)), h('td', {}, d.event ?? ''), h('td', { class: 'mono' }, d.target), h('td', {}, answer(d))))
      : [h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'None yet.'))]),
  );
}

/** The deployment's own deliveries, under its status. */
export async function showDeliveries(id: string): Promise<void> {
  const { items } = await call<{ items: Delivery[] }>('GET', '/deployments/' + enc(id) + '/deliveries');
  $('d-deliveries').replaceChildren(...items.slice(0, 6).map((d) => h('li', { class: d.ok ? '' : 'error' }, when(d.at) + ' ' + d.kind + (d.state ? ' ' + d.state : d.event ? ' ' + d.event : '') + ' → ' + d.target + ': ' + answer(d))));
}

export function startNotify(): void {
  const form = $<HTMLFormElement>('p-forge-set');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void act(form.querySelector('button')!, 'p-notify-msg', async () => {
      const field = (name: string) => form.elements.namedItem(name) as HTMLInputElement;
      const apiUrl = field('apiUrl').value.trim();
      const forge = { token: field('token').value, ...(apiUrl ? { apiUrl } : {}) };
      field('token').value = ''; // sent once, never kept in the page
      await showNotify(await call<Project>('PATCH', '/projects/' + enc(project!), { forge }));
      return 'forge token saved';
    });
  });
}
