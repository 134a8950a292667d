// Slipway's error classes: a stable `code` per kind of failure, a message that names the value and
// the limit. HTTP status is chosen from the code in one place (upload-service's error handler).

export type ErrorCode =
  | 'INVALID_INPUT'
  | 'INVALID_URL'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'REPO_TOO_LARGE'
  | 'CLONE_FAILED'
  | 'RATE_LIMITED'
  | 'BUILD_FAILED'
  | 'UNAVAILABLE'
  | 'CONFIG_INVALID'
  | 'UNSAFE_PATH'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN';

export class SlipwayError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The request itself is wrong: fixing the request fixes it. */
export class InvalidInputError extends SlipwayError {
  constructor(message: string, code: 'INVALID_INPUT' | 'INVALID_URL' = 'INVALID_INPUT') {
    super(code, message);
  }
}

export class NotFoundError extends SlipwayError {
  constructor(message: string) {
    super('NOT_FOUND', message);
  }
}

/** The request is valid but the deployment is not in a state that allows it. */
export class ConflictError extends SlipwayError {
  constructor(message: string) {
    super('CONFLICT', message);
  }
}

export class RepoTooLargeError extends SlipwayError {
  constructor(message: string) {
    super('REPO_TOO_LARGE', message);
  }
}

export class CloneFailedError extends SlipwayError {
  constructor(message: string, cause?: unknown) {
    super('CLONE_FAILED', message, { cause });
  }
}

/** A path or object key that would leave its folder or prefix. */
export class UnsafePathError extends SlipwayError {
  constructor(message: string) {
    super('UNSAFE_PATH', message);
  }
}

/**
 * The repository's own build failed (non-zero exit, no output folder). Like BullMQ's
 * UnrecoverableError: fail now, never retry — running it again gives the same answer.
 */
export class BuildFailedError extends SlipwayError {
  constructor(message: string) {
    super('BUILD_FAILED', message);
  }
}

/** Too many requests right now; the client should retry later. */
export class TooManyRequestsError extends SlipwayError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super('RATE_LIMITED', message);
  }
}

/** No valid API token with a request that needs one (401, with WWW-Authenticate). */
export class UnauthorizedError extends SlipwayError {
  constructor(message: string) {
    super('UNAUTHORIZED', message);
  }
}

/** A request that is refused whoever sends it (a cross-origin change from a browser). */
export class ForbiddenError extends SlipwayError {
  constructor(message: string) {
    super('FORBIDDEN', message);
  }
}

/** Redis or S3 could not be reached; nothing was committed. */
export class UnavailableError extends SlipwayError {
  constructor(message: string, cause?: unknown) {
    super('UNAVAILABLE', message, { cause });
  }
}

export class ConfigError extends SlipwayError {
  constructor(message: string) {
    super('CONFIG_INVALID', message);
  }
}

/** A short description of any thrown value, for logs and records. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
