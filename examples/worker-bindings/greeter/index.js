// The second worker: its `fetch`, and an RPC method other workers call
// through a service binding (`env.GREETER.greet(name)`).
import { WorkerEntrypoint } from "cloudflare:workers";

export default class Greeter extends WorkerEntrypoint {
  fetch(request) {
    const name = new URL(request.url).searchParams.get("name") ?? "you";
    return new Response(`Hello, ${name}, from the greeter worker\n`);
  }

  greet(name) {
    return { text: `Hello, ${name}, by RPC`, at: new Date(0) };
  }
}
