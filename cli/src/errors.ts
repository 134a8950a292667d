// The exit codes scripts can rely on, and the one error class that carries one to main.ts.

export const EXIT = {
  /** Done; a followed deployment ended `deployed`. */
  ok: 0,
  /** A followed deployment ended `failed` or `canceled`. */
  deploymentFailed: 1,
  /** Bad arguments: an unknown command or option, a missing or malformed value. */
  usage: 2,
  /** The API refused the request (4xx), a missing or wrong token included. */
  refused: 3,
  /** The API could not be reached, or failed (5xx). */
  unreachable: 4,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error whose message is the whole story for the user; main.ts prints it and exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = 'UsageError';
  }
}
