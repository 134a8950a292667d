// The project view's protected previews: whether previews ask for a password (set from a password
// field that is emptied once sent, or removed), and share links for one preview that expire.
import { call, type Project } from './api';
import { $, act, enc, h } from './dom';

let project: string | null = null;

export function showPreviews(p: Project): void {
  project = p.name;
  const protection = p.previewProtection as { enabled: boolean; passwordSet: boolean } | undefined;
  $('p-protection').textContent = !protection?.enabled
    ? 'Previews are open to anyone who has their address. Set a password to close them (production stays public).'
    : protection.passwordSet
      ? 'Previews ask for the password (or a share link); production stays public.'
      : 'Previews are closed and no password is set (it was not restored after a Redis loss): set one, or make share links.';
  $('p-protection-off').hidden = !protection?.enabled;
  $('p-share').hidden = !protection?.enabled;
}

export function startPreviews(): void {
  const set = $<HTMLFormElement>('p-protection-set');
  const field = (form: HTMLFormElement, name: string) => form.elements.namedItem(name) as HTMLInputElement;
  set.addEventListener('submit', (event) => {
    event.preventDefault();
    void act(set.querySelector('button')!, 'p-previews-msg', async () => {
      const previewPassword = field(set, 'password').value;
      field(set, 'password').value = ''; // sent once, never kept in the page
      showPreviews(await call<Project>('PATCH', '/projects/' + enc(project!), { previewPassword }));
      return 'previews closed: they ask for this password';
    });
  });
  const off = $<HTMLButtonElement>('p-protection-off');
  off.addEventListener('click', () => {
    void act(off, 'p-previews-msg', async () => {
      showPreviews(await call<Project>('PATCH', '/projects/' + enc(project!), { previewPassword: null }));
      return 'previews open again';
    });
  });
  const share = $<HTMLFormElement>('p-share');
  share.addEventListener('submit', (event) => {
    event.preventDefault();
    void act(share.querySelector('button')!, 'p-previews-msg', async () => {
      const which = field(share, 'preview').value.trim();
      const hours = Number(field(share, 'hours').value || '72');
      const target = /^#?\d+$/.test(which) ? { pullRequest: Number(which.replace('#', '')) } : { branch: which };
      const link = await call<{ url: string; expiresAt: string }>('POST', '/projects/' + enc(project!) + '/preview-links', { ...target, hours });
      $('p-share-link').replaceChildren(h('a', { href: link.url, class: 'mono' }, link.url), ' (until ' + new Date(link.expiresAt).toLocaleString() + ')');
    });
  });
}
