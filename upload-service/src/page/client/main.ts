// The web page's script: hash routes (#/, #/projects/<name>, #/deployments/<id>) so every view has a
// deep link that survives a reload, the API token form, and each view started once. Every value
// from the server is set with textContent or as an attribute, never as HTML. Bundled by esbuild when
// the upload-service starts (../page.ts) and inlined into the page, whose CSP allows this script's hash only.
import { saveToken } from './api';
import { $ } from './dom';
import { loadProjects, startHome } from './home';
import { showDeployment, startPanel, stopWatch } from './panel';
import { showProject, startProject } from './project';
import { startSecrets } from './secrets';
import { startNotify } from './notify';
import { startPreviews } from './previews';
import { state } from './state';

function route(): void {
  let parts: string[];
  try {
    parts = location.hash.split('/').map(decodeURIComponent);
  } catch {
    parts = [];
  }
  const [, kind, arg] = parts;
  const me = ++state.view;
  const from = state.current;
  for (const s of ['home-view', 'project-view', 'deployment-view']) $(s).hidden = true;
  if (kind === 'projects' && arg) {
    state.current = 'project';
    void showProject(arg, me);
    return;
  }
  if (kind === 'deployments' && arg) {
    state.current = 'deployment';
    showDeployment(arg);
    return;
  }
  state.current = 'home';
  $('home-view').hidden = false;
  document.title = 'Slipway';
  if (from !== 'home') {
    stopWatch();
    $('home-slot').append($('panel'));
    $('panel').hidden = true;
  }
  void loadProjects(me, null);
}

$('auth').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $<HTMLInputElement>('token');
  saveToken(token.value.trim());
  token.value = '';
  $('auth').hidden = true;
  $('error').textContent = '';
  for (const m of document.querySelectorAll('.msg')) m.textContent = '';
  route();
});
window.addEventListener('hashchange', () => {
  route();
  const heading = document.querySelector<HTMLElement>('section:not([hidden]) h2');
  if (heading) heading.focus();
});
startHome();
startProject();
startSecrets();
startNotify();
startPreviews();
startPanel();
route();
