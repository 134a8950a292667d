// Which site a request's Host names: a deployment (`<id>.<BASE_DOMAIN>`), a project's production
// (`<project>.`), a project branch (`<branch>--<project>.`), a custom domain, or none.
import { ProjectNameSchema, isDeploymentId } from '@slipway/shared';

/** What a Host header names: a deployment, a project's production, a project's branch, a custom domain, or nothing. */
export type SiteHost = { deployment: string } | { project: string; branch: string | null } | { domain: string };

const DOMAIN_NAME = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** A Host header's name: lowercase, without the port or a final dot. */
export function hostName(host: string): string {
  return host.toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
}

export function siteFromHost(host: string | undefined, baseDomain: string): SiteHost | null {
  if (!host) return null;
  const name = hostName(host);
  const suffix = `.${baseDomain}`;
  // Another name with a dot may be a project's custom domain (looked up by the caller).
  if (!name.endsWith(suffix)) return name !== baseDomain && DOMAIN_NAME.test(name) ? { domain: name } : null;
  const label = name.slice(0, -suffix.length);
  if (isDeploymentId(label)) return { deployment: label };
  // `<branch>--<project>`: neither part holds "--" (project names may not, branch labels cannot).
  const parts = label.split('--');
  if (parts.length > 2) return null;
  const [first, second] = parts as [string, string | undefined];
  const project = second ?? first;
  if (!ProjectNameSchema.safeParse(project).success) return null;
  if (second !== undefined && !/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/.test(first)) return null;
  return { project, branch: second === undefined ? null : first };
}

/** The deployment id a Host header names directly, or null. */
export function siteIdFromHost(host: string | undefined, baseDomain: string): string | null {
  const site = siteFromHost(host, baseDomain);
  return site && 'deployment' in site ? site.deployment : null;
}
