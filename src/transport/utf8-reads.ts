/**
 * The `onread` callback of a plain SMTP connection (smtp-session.ts): the socket reads into one
 * buffer it reuses, and hands over how many bytes it read. Each read is decoded at once (the
 * buffer is overwritten by the next read), as UTF-8 across reads: a character cut between two
 * reads comes out whole with the second (a StringDecoder keeps its first bytes), as the socket's
 * `setEncoding('utf8')` would decode it. test/unit/transport-utf8-reads.test.ts cuts replies at
 * every byte.
 */
import { StringDecoder } from 'node:string_decoder';

export type ReadCallback = (bytes: number, buffer: Buffer) => boolean;

export function utf8Reads(onText: (text: string) => void): ReadCallback {
  const decoder = new StringDecoder('utf8');
  return (bytes, buffer) => {
    const text = decoder.write(buffer.subarray(0, bytes));
    if (text !== '') onText(text);
    // Keep reading: the session applies no back-pressure to replies.
    return true;
  };
}
