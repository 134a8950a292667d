// Angular: the site lands in angular.json's outputPath for the first (or default) project: since v17
// in its browser/ folder, before that in the folder itself. Detected only with an angular.json.
import { type Framework, type OutputFolder } from './framework';
import { folder } from './static-config';

type AngularJson = { defaultProject?: string; projects?: Record<string, { architect?: { build?: { options?: { outputPath?: unknown } } } }> };

export const angular: Framework = {
  id: 'angular',
  name: 'Angular',
  kind: 'framework',
  packages: ['@angular/core'],
  with: ['@angular/cli'],
  excludes: ['webpack', 'vite'],
  applies: async (app) => (await angularJson(app.read)) !== null,
  async outputs(app): Promise<OutputFolder[]> {
    const doc = (await angularJson(app.read))!;
    const names = Object.keys(doc.projects ?? {});
    const name = doc.defaultProject && doc.projects?.[doc.defaultProject] ? doc.defaultProject : names[0];
    if (!name) return [];
    const outputPath = doc.projects![name]!.architect?.build?.options?.outputPath;
    const object = typeof outputPath === 'object' && outputPath !== null ? (outputPath as { base?: unknown; browser?: unknown }) : null;
    const named = typeof outputPath === 'string' ? outputPath : typeof object?.base === 'string' ? object.base : null;
    const base = (named === null ? null : folder(named)) ?? `dist/${name}`;
    const why = named === null ? `Angular's default for the project ${name}` : `outputPath in angular.json (project ${name})`;
    const browser = typeof object?.browser === 'string' ? object.browser : 'browser';
    if (browser === '') return [{ dir: base, why }];
    return [
      { dir: `${base}/${browser}`, why: `${why}, its ${browser}/ folder (Angular 17 and later)` },
      { dir: base, why: `${why} (before Angular 17)` },
    ];
  },
};

async function angularJson(read: (rel: string) => Promise<string | null>): Promise<AngularJson | null> {
  const text = await read('angular.json');
  if (text === null) return null;
  try {
    const doc = JSON.parse(text) as unknown;
    return typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as AngularJson) : null;
  } catch {
    return null;
  }
}
