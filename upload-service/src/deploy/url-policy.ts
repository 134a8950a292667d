// Repository URL policy: which URLs Slipway will clone, and the checked address git must use,
// so a request cannot make the server fetch from an internal address.
import { lookup } from 'node:dns/promises';
import { InvalidInputError, isIpAddress, nonPublicRange } from '@slipway/shared';

export interface RepoTarget {
  /** The URL as git will be given it. */
  url: string;
  host: string;
  port: number;
  /** The address the host resolved to and was checked; git is pinned to it. Undefined for an IP literal. */
  address: string | undefined;
}

export interface UrlPolicy {
  allowPrivateNetworks: boolean;
  allowedHosts?: readonly string[] | undefined;
}

const invalid = (message: string) => new InvalidInputError(message, 'INVALID_URL');

/** Validates a repository URL and resolves its host; throws InvalidInputError (INVALID_URL). */
export async function checkRepoUrl(raw: string, policy: UrlPolicy): Promise<RepoTarget> {
  if (raw.startsWith('-')) throw invalid('repoUrl must not start with "-"');
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

  if (isIpAddress(host)) {
    checkAddress(host, host, policy);
    return { url: url.href, host, port, address: undefined };
  }
  if (!/^[a-z0-9.-]+$/i.test(host)) throw invalid(`repoUrl host ${JSON.stringify(host)} is not a valid host name`);
  let addresses: { address: string }[];
  try {
    addresses = await lookup(host, { all: true, verbatim: true });
  } catch {
    throw invalid(`repoUrl host ${JSON.stringify(host)} does not resolve`);
  }
  for (const { address } of addresses) checkAddress(host, address, policy);
  return { url: url.href, host, port, address: addresses[0]?.address };
}

function checkAddress(host: string, address: string, policy: UrlPolicy): void {
  if (policy.allowPrivateNetworks) return;
  const range = nonPublicRange(address);
  if (range !== null) throw invalid(`repoUrl host ${JSON.stringify(host)} is a ${range} address (${address}); only public hosts can be cloned`);
}
