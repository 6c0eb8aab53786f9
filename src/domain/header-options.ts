/**
 * The --subject and --from a newsletter is created or edited with, checked the same way by
 * `newsletters create` and `newsletters edit`: each is one header line (no line break, which
 * would let a value add headers of its own), a subject is not empty, and a From is one address.
 */
import { fromAddressProblem } from './from-address.js';

const HEADER_BREAK = /[\r\n\0\u2028\u2029]/;

/** Every problem with the options given (an absent one is not checked), in the order printed. */
export function headerOptionProblems(options: {
  subject?: string | undefined;
  from?: string | undefined;
}): string[] {
  const problems: string[] = [];
  if (options.subject !== undefined) {
    if (HEADER_BREAK.test(options.subject))
      problems.push('--subject contains a line break; a subject is one line.');
    if (!options.subject.trim()) problems.push('--subject is empty.');
  }
  if (options.from !== undefined && HEADER_BREAK.test(options.from))
    problems.push('--from contains a line break.');
  else if (options.from !== undefined) {
    const problem = fromAddressProblem('--from', options.from);
    if (problem) problems.push(problem);
  }
  return problems;
}
