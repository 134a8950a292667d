// Share links for a project's closed previews (sites/protect.ts):
//   POST   /projects/:name/preview-links   {branch | pullRequest | deployment, hours?}: 201 {url, host, expiresAt}
//   DELETE /projects/:name/preview-links   ends every link and every preview cookie made so far: 204
// A link opens the one preview host it was made for, for `hours` (default 72, at most 720), without
// the password; it is signed, not stored, so it is ended only by its expiry or by the DELETE (or a new
// password), which makes the project's preview stamp anew.
import express, { type RequestHandler } from 'express';
import { z } from 'zod';
import { ConflictError, InvalidInputError, NotFoundError, branchLabel, isDeploymentId, newPreviewStamp, pullRequestLabel, siteUrl, DeployRequestSchema, type Config, type ProjectRecord, type Projects } from '@slipway/shared';
import { describeIssues } from '../deploy/deploy';
import { DEFAULT_SHARE_HOURS, MAX_SHARE_HOURS, SHARE_PARAM, type PreviewGate } from '../sites/protect';

const LinkSchema = z
  .strictObject({
    branch: DeployRequestSchema.shape.branch.unwrap().optional(),
    pullRequest: z.number({ error: 'pullRequest is a pull (or merge) request number' }).int().positive().max(1e9).optional(),
    deployment: z.string().refine(isDeploymentId, 'deployment is a deployment id').optional(),
    hours: z.number({ error: `hours is a number from 1 to ${MAX_SHARE_HOURS}` }).int().min(1).max(MAX_SHARE_HOURS, `hours is at most ${MAX_SHARE_HOURS} (30 days)`).optional(),
  })
  .refine((b) => [b.branch, b.pullRequest, b.deployment].filter((v) => v !== undefined).length === 1, 'give one of branch, pullRequest or deployment: the preview the link opens');

export function previewLinksRouter(
  deps: { config: Config; projects: Projects; gate: PreviewGate },
  guards: { change: RequestHandler[] },
  mustGet: (name: string) => Promise<ProjectRecord>,
  saved: (name: string) => Promise<void>,
): express.Router {
  const { config, projects, gate } = deps;
  const router = express.Router();

  router.post('/projects/:name/preview-links', ...guards.change, async (req, res) => {
    const body = LinkSchema.safeParse(req.body ?? {});
    if (!body.success) throw new InvalidInputError(describeIssues(body.error.issues));
    const { branch, pullRequest, deployment, hours = DEFAULT_SHARE_HOURS } = body.data;
    const project = await mustGet(String(req.params.name));
    if (project.previewStamp === undefined) throw new ConflictError(`the previews of project ${project.name} are open to anyone: set previewPassword to close them first`);
    if (deployment !== undefined && !(await projects.hasDeployment(project.name, deployment))) throw new NotFoundError(`deployment ${deployment} is not a deployment of ${project.name}`);
    const label = deployment ?? `${pullRequest !== undefined ? pullRequestLabel(pullRequest) : branchLabel(branch!, project.name)}--${project.name}`;
    const url = new URL(siteUrl(config, label));
    const expiresAt = Date.now() + hours * 3_600_000;
    url.searchParams.set(SHARE_PARAM, gate.shareToken(url.hostname, project.previewStamp, expiresAt));
    res.status(201).json({ url: url.toString(), host: url.hostname, expiresAt: new Date(Math.floor(expiresAt / 1000) * 1000).toISOString() });
  });

  router.delete('/projects/:name/preview-links', ...guards.change, async (req, res) => {
    const project = await mustGet(String(req.params.name));
    const result = await projects.renewPreviewStamp(project.name, newPreviewStamp());
    if (result === 'no-project') throw new NotFoundError(`no project named ${project.name}`);
    if (result === 'open') throw new ConflictError(`the previews of project ${project.name} are open to anyone: there is no link to end`);
    await saved(project.name);
    res.status(204).end();
  });
  return router;
}
