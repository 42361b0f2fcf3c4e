/**
 * One result type for everything that can fail on bad input without being a bug: parsing a completion,
 * checking a gold row, executing a call in the sandbox. TypeChat's shape and names, verbatim:
 * `{success: true, data}` or `{success: false, message}`, where `message` is a short, readable reason
 * ("unknown tool \"get_weather\"", "invalid JSON: expected a value at position 0, found \"hello\"").
 *
 * What this is not: an exception wrapper. Code that returns a Result never throws for the failures it
 * describes; a thrown exception still means a bug.
 */

/** The value, when it worked. */
export interface Success<T> {
  success: true;
  data: T;
}

/** Why it did not work, in one readable sentence. */
export interface Failure {
  success: false;
  message: string;
}

export type Result<T> = Success<T> | Failure;

/** Wrap a value. */
export function success<T>(data: T): Success<T> {
  return { success: true, data };
}

/** Wrap a reason. */
export function failure(message: string): Failure {
  return { success: false, message };
}
