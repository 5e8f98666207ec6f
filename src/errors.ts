/** Bad input (an argument, a configured name, a backup id): the message names it; never retried. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}
