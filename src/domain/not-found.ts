/**
 * The sentences a command meets when what it names does not exist, written once: both stores
 * throw them, and so do the commands that look first.
 */
import { InputError } from './errors.js';

export function noSuchNewsletter(id: number): InputError {
  return new InputError(`There is no newsletter ${id}.`, ['See them all with `newsletter list`.']);
}

export function noSuchList(name: string): InputError {
  return new InputError(`There is no list named "${name}".`, [
    'See the lists with `newsletter recipients list --lists`.',
  ]);
}
