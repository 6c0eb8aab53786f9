// mjml 5 ships no type declarations and @types/mjml describes v4 (a synchronous compile). This is
// the small part of v5 that src/render/mjml.ts uses, checked against mjml-core 5.4.1.
declare module 'mjml' {
  export interface MjmlValidationIssue {
    line?: number;
    message: string;
    tagName?: string;
    /** `Line 5 of /abs/file.mjml, included at line 9 of file /abs/main.mjml (mj-text) — …` */
    formattedMessage?: string;
  }

  export interface MjmlOptions {
    validationLevel?: 'strict' | 'soft' | 'skip';
    /** The file being compiled: includes resolve relative to its folder. */
    filePath?: string;
    /** Shown in validation messages as the file's path. */
    actualPath?: string;
    /** Defaults to true in mjml 5: without `false`, every mj-include is silently dropped. */
    ignoreIncludes?: boolean;
    /** Folders includes may read from, besides the including file's own folder. */
    includePath?: string | string[];
    keepComments?: boolean;
    minify?: boolean;
    beautify?: boolean;
  }

  export interface MjmlResult {
    html: string;
    errors: MjmlValidationIssue[];
  }

  /** Async since mjml 5. With validationLevel 'strict' it rejects with an Error carrying `errors`. */
  export default function mjml2html(input: string, options?: MjmlOptions): Promise<MjmlResult>;
}
