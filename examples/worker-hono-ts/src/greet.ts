/** A greeting for `who`, typed as TypeScript code would be. */
export interface Greeting {
  text: string;
  length: number;
}

export function greet(who: string): Greeting {
  const text: string = `${who}!`;
  return { text, length: text.length } satisfies Greeting;
}
