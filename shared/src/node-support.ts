// The Node.js lines Slipway runs on. The images use Node 24 LTS; 22 works; 20 still works but is past
// its end of life (April 2026), and the AWS SDK's releases from January 2027 need 22.

/** The oldest major line that is not past its end of life. */
export const SUPPORTED_NODE_MAJOR = 22;

/** One line to show a person when `version` is past its end of life; null when it is supported. */
export function nodeSupportNote(version = process.version): string | null {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1]);
  if (!Number.isInteger(major) || major >= SUPPORTED_NODE_MAJOR) return null;
  return `Node ${version} is past its end of life: use Node 22 or 24 (the AWS SDK's releases from January 2027 need 22)`;
}

// The SDK warns on its own, once in every process that makes a client, in several lines, in every
// service and test process (its `NodeVersionSupportWarning` is a plain 'Warning' whose text starts
// so, which --disable-warning cannot name; only this variable turns it off). Slipway says it once,
// where a person reads it: npm start's banner, the README, `engines`.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
