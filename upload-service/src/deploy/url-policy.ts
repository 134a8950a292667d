// Repository URL policy: which URLs Slipway will clone, and the checked address git must use,
// so a request cannot make the server fetch from an internal address. SSH URLs (`ssh://git@host/path`
// and git's `git@host:path`) are taken only where a deploy key can go with them (a project's), under
// the same host rules.
import { lookup } from 'node:dns/promises';
import { InvalidInputError, isIpAddress, nonPublicRange } from '@slipway/shared';

export interface RepoTarget {
  /** The URL as git will be given it. */
  url: string;
  transport: 'https' | 'ssh';
  host: string;
  port: number;
  /** The address the host resolved to and was checked; git is pinned to it. Undefined for an IP literal. */
  address: string | undefined;
  /** SSH: the user to log in as (`git`). */
  user?: string;
}

export interface UrlPolicy {
  allowPrivateNetworks: boolean;
  allowedHosts?: readonly string[] | undefined;
}

const invalid = (message: string) => new InvalidInputError(message, 'INVALID_URL');

/** git's scp-like SSH form: user@host:path (no scheme, no port). */
const SCP_LIKE = /^([A-Za-z0-9._][A-Za-z0-9._-]{0,63})@([A-Za-z0-9.-]{1,253}):(?!\/\/)([A-Za-z0-9._~/+-]{1,1024})$/;
const SSH_USER = /^[A-Za-z0-9._][A-Za-z0-9._-]{0,63}$/;
const SSH_PATH = /^\/[A-Za-z0-9._~/+-]{1,1024}$/;

/**
 * Validates a repository URL and resolves its host; throws InvalidInputError (INVALID_URL). `ssh`:
 * SSH URLs are taken too (a project with a deploy key clones them).
 */
export async function checkRepoUrl(raw: string, policy: UrlPolicy, options: { ssh?: boolean } = {}): Promise<RepoTarget> {
  if (raw.startsWith('-')) throw invalid('repoUrl must not start with "-"');
  const scp = SCP_LIKE.exec(raw);
  if (scp || raw.startsWith('ssh://')) return checkSshUrl(raw, scp, policy, options.ssh === true);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid(`repoUrl ${JSON.stringify(raw.slice(0, 200))} is not a URL; give an https:// git URL`);
  }
  const allowed = policy.allowPrivateNetworks ? ['https:', 'http:'] : ['https:'];
  if (!allowed.includes(url.protocol)) {
    throw invalid(`repoUrl scheme ${JSON.stringify(url.protocol.replace(/:$/, ''))} is not allowed; use ${allowed.map((p) => p.replace(':', '://')).join(' or ')}`);
  }
  if (url.username || url.password) throw invalid('repoUrl must not contain credentials; only public repositories can be deployed');
  if (url.search || url.hash) throw invalid('repoUrl must not have a query string or fragment');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw invalid('repoUrl has no host');
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  if (policy.allowedHosts && !policy.allowedHosts.includes(host.toLowerCase())) {
    throw invalid(`repoUrl host ${JSON.stringify(host)} is not in GIT_ALLOWED_HOSTS (${policy.allowedHosts.join(', ')})`);
  }

  return { url: url.href, transport: 'https', host, port, address: await checkedAddress(host, policy) };
}

/** An SSH URL: a user, a host checked as an https one's is, a port (22), a path; nothing that ssh could take for an option. */
async function checkSshUrl(raw: string, scp: RegExpExecArray | null, policy: UrlPolicy, allowed: boolean): Promise<RepoTarget> {
  if (!allowed) throw invalid('an SSH repoUrl needs a deploy key: create a project with it and POST /projects/:name/deploy-key, or give an https:// URL');
  let user: string;
  let host: string;
  let port = 22;
  if (scp) [, user, host] = scp as unknown as [string, string, string];
  else {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw invalid(`repoUrl ${JSON.stringify(raw.slice(0, 200))} is not a URL`);
    }
    if (url.password) throw invalid('repoUrl must not contain a password; an SSH repository is cloned with the project\'s deploy key');
    if (url.search || url.hash) throw invalid('repoUrl must not have a query string or fragment');
    if (!SSH_PATH.test(decodeURIComponent(url.pathname))) throw invalid('repoUrl path is letters, digits and . _ ~ / + - only, such as /owner/site.git');
    user = decodeURIComponent(url.username || 'git');
    host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    port = url.port ? Number(url.port) : 22;
  }
  if (!SSH_USER.test(user)) throw invalid(`repoUrl user ${JSON.stringify(user.slice(0, 64))} is letters, digits and . _ - only, such as git`);
  if (!host || host.startsWith('-')) throw invalid('repoUrl has no host');
  if (policy.allowedHosts && !policy.allowedHosts.includes(host.toLowerCase())) {
    throw invalid(`repoUrl host ${JSON.stringify(host)} is not in GIT_ALLOWED_HOSTS (${policy.allowedHosts.join(', ')})`);
  }
  return { url: raw, transport: 'ssh', user, host, port, address: await checkedAddress(host, policy) };
}

/** The address git is pinned to: the host resolved and every address checked (undefined for an IP literal, itself checked). */
async function checkedAddress(host: string, policy: UrlPolicy): Promise<string | undefined> {
  if (isIpAddress(host)) {
    checkAddress(host, host, policy);
    return undefined;
  }
  if (!/^[a-z0-9.-]+$/i.test(host) || host.startsWith('-')) throw invalid(`repoUrl host ${JSON.stringify(host)} is not a valid host name`);
  let addresses: { address: string }[];
  try {
    addresses = await lookup(host, { all: true, verbatim: true });
  } catch {
    throw invalid(`repoUrl host ${JSON.stringify(host)} does not resolve`);
  }
  for (const { address } of addresses) checkAddress(host, address, policy);
  return addresses[0]?.address;
}

function checkAddress(host: string, address: string, policy: UrlPolicy): void {
  if (policy.allowPrivateNetworks) return;
  const range = nonPublicRange(address);
  if (range !== null) throw invalid(`repoUrl host ${JSON.stringify(host)} is a ${range} address (${address}); only public hosts can be cloned`);
}
