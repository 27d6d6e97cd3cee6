/** The rule a password set through the API, the dashboard or `starling ctl` must meet (MQTT users and admins alike). */

/** Fewest characters of a password. */
export const MIN_PASSWORD_LENGTH = 8;
/** Most characters of a password (hashing cost is per byte). */
export const MAX_PASSWORD_LENGTH = 1024;

/** Passwords that guessing tools try first; refused whatever their length. */
const COMMON = new Set(['password', 'password1', 'password123', '12345678', '123456789', '1234567890', 'qwertyuiop', 'qwerty123', '11111111', 'iloveyou', 'starling', 'starling1', 'mosquitto', 'changeme', 'letmein1', 'admin123', 'administrator']);

/** Why `password` is too weak for `username`, or undefined when it will do. */
export function weakPassword(password: string, username: string): string | undefined {
  if (password.length === 0) return 'password is empty';
  if (password.length < MIN_PASSWORD_LENGTH) return `password is shorter than ${MIN_PASSWORD_LENGTH} characters`;
  if (password.length > MAX_PASSWORD_LENGTH) return `password is longer than ${MAX_PASSWORD_LENGTH} characters`;
  if (new Set(password).size === 1) return 'password is one character repeated';
  const lower = password.toLowerCase();
  if (COMMON.has(lower)) return 'password is one of the most common passwords';
  if (username.length >= 3 && lower.includes(username.toLowerCase())) return 'password contains the user name';
  return undefined;
}
