// The project view's secrets: its environment variables (names, where, when and by which token;
// values are write-only: typed into a password field, sent once, cleared, never shown), its access
// token for an https repository (write-only too) and its SSH deploy key (only the public half).
import { call, type EnvListing, type Project } from './api';
import { $, act, enc, h, say, when } from './dom';

let project: string | null = null;

export async function showSecrets(p: Project): Promise<void> {
  project = p.name;
  const listing = await call<EnvListing>('GET', '/projects/' + enc(p.name) + '/env');
  if (project !== p.name) return;
  renderEnv(listing);
  const access: (Node | string)[] = [];
  access.push(p.gitAuth ? 'Access token: set, for user ' + p.gitAuth.username + '. ' : 'Access token: none (needed for a private https repository). ');
  access.push(p.deployKey ? 'Deploy key: ' : 'Deploy key: none (needed for an ssh:// repository).');
  if (p.deployKey) access.push(h('span', { class: 'mono' }, p.deployKey.publicKey));
  $('p-access').replaceChildren(...access);
  $('p-key').textContent = p.deployKey ? 'Make a new deploy key (the old one stops working)' : 'Make a deploy key';
}

function renderEnv(listing: EnvListing): void {
  const body = $<HTMLTableElement>('p-env').tBodies[0]!;
  $('p-env-version').textContent = 'version ' + listing.version;
  if (!listing.variables.length) {
    body.replaceChildren(h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No environment variables.')));
    return;
  }
  body.replaceChildren(
    ...listing.variables.map((v) => {
      const where = v.target === 'branch' ? 'branch ' + v.branch : v.target;
      const remove = h('button', { type: 'button', class: 'small' }, 'Remove') as HTMLButtonElement;
      const query = v.target === 'branch' ? '?branch=' + enc(v.branch!) : '?target=' + v.target;
      remove.addEventListener('click', () =>
        act(remove, 'p-secrets-msg', async () => {
          renderEnv(await call<EnvListing>('DELETE', '/projects/' + enc(project!) + '/env/' + enc(v.name) + query));
          return 'removed ' + v.name + ' from ' + where;
        }),
      );
      return h('tr', {}, h('td', { class: 'mono' }, v.name), h('td', {}, where), h('td', {}, when(v.updatedAt)), h('td', { class: 'mono' }, v.by), h('td', {}, remove));
    }),
  );
}

export function startSecrets(): void {
  const envForm = $<HTMLFormElement>('p-env-set');
  envForm.addEventListener('submit', (event) => {
    event.preventDefault();
    void act(envForm.querySelector('button')!, 'p-secrets-msg', async () => {
      const field = (name: string) => envForm.elements.namedItem(name) as HTMLInputElement;
      const name = field('name').value.trim();
      const branch = field('branch').value.trim();
      const body = branch ? { value: field('value').value, branch } : { value: field('value').value, target: field('target').value };
      // The value leaves the page once: the field is emptied whether the API took it or not.
      field('value').value = '';
      renderEnv(await call<EnvListing>('PUT', '/projects/' + enc(project!) + '/env/' + enc(name), body));
      field('name').value = '';
      return 'set ' + name + '; deployments from now on build with it';
    });
  });
  const tokenForm = $<HTMLFormElement>('p-token');
  tokenForm.addEventListener('submit', (event) => {
    event.preventDefault();
    void act(tokenForm.querySelector('button')!, 'p-secrets-msg', async () => {
      const field = (name: string) => tokenForm.elements.namedItem(name) as HTMLInputElement;
      const gitAuth = { username: field('username').value.trim(), token: field('token').value };
      field('token').value = '';
      const p = await call<Project>('PATCH', '/projects/' + enc(project!), { gitAuth });
      await showSecrets(p);
      return 'the access token can read the repository, and is saved';
    });
  });
  $('p-key').addEventListener('click', () =>
    act($<HTMLButtonElement>('p-key'), 'p-secrets-msg', async () => {
      const made = await call<{ publicKey: string; message: string }>('POST', '/projects/' + enc(project!) + '/deploy-key', {});
      await showSecrets(await call<Project>('GET', '/projects/' + enc(project!)));
      say('p-secrets-msg', made.message);
    }),
  );
}
