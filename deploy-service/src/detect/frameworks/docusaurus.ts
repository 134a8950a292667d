// Docusaurus: the site lands in build/, or in the folder the build script's `docusaurus build
// --out-dir` names.
import { defaults, type Framework, type OutputFolder } from './framework';
import { commandArgs, folder, optionValue } from './static-config';

export const docusaurus: Framework = {
  id: 'docusaurus',
  name: 'Docusaurus',
  kind: 'framework',
  packages: ['@docusaurus/core'],
  excludes: ['webpack'],
  async outputs(app): Promise<OutputFolder[]> {
    const cli = optionValue(commandArgs(app.script, /\bdocusaurus\s+build\b/) ?? [], ['--out-dir']);
    const dir = cli === null ? null : folder(cli);
    return dir ? [{ dir, why: '--out-dir in the build script' }, ...defaults('Docusaurus', ['build'])] : defaults('Docusaurus', ['build']);
  },
};
