// Every error superv reports to a user, in one table: a stable code, and a message template.
// A test checks that each code is documented in docs/errors.md.

export const ERRORS = {
  SUPERV_ERR_USAGE: 'usage: %s',
  SUPERV_ERR_UNKNOWN_SETTING: 'unknown setting %s%s',
  SUPERV_ERR_BAD_VALUE: 'bad value for %s: %s',
  SUPERV_ERR_CONFIG_FILE: 'cannot read config file %s: %s',
  SUPERV_ERR_APP_NOT_FOUND: 'app file not found: %s',
  SUPERV_ERR_BOOT_FAILED: 'worker failed to boot: %s',
  SUPERV_ERR_NAME_IN_USE: 'a supervisor named %s is already running (pid %s)',
  SUPERV_ERR_NOT_RUNNING: 'no supervisor named %s is running',
  SUPERV_ERR_NOT_ANSWERING: 'the supervisor named %s (pid %s) is running but not answering: %s',
  SUPERV_ERR_UNSAFE_PATH: 'refusing an unsafe path: %s',
  SUPERV_ERR_CONTROL: 'control request failed: %s',
  SUPERV_ERR_NO_LOG_FILE: 'the supervisor named %s runs in the foreground, without a log file: %s',
  SUPERV_ERR_NOT_A_TTY: '%s needs a terminal: %s',
} as const;

export type ErrorCode = keyof typeof ERRORS;

/** An error meant for the user: printed as `superv: <message>` with a non-zero exit, no stack. */
export class SupervError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, ...args: string[]) {
    let i = 0;
    super(ERRORS[code].replace(/%s/g, () => args[i++] ?? ''));
    this.code = code;
  }
}
