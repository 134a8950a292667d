// What the page's views share: which route is shown (each route bumps `view`, so an older view's
// loops stop), and the answer to POST /projects, whose hook secret is shown once.
import type { Project } from './api';

export const state = {
  view: 0,
  current: null as 'home' | 'project' | 'deployment' | null,
  created: null as Project | null,
};
