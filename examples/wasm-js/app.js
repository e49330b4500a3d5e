// A wasi:http component in JavaScript, built with componentize-js (the
// SpiderMonkey engine of StarlingMonkey inside the component) from
// `build.sh`. It answers with the Service Worker `fetch` event, which
// componentize-js attaches to the world's `wasi:http/incoming-handler`
// export; `wasi:cli/environment` and `wasi:filesystem/preopens` are
// imported (wit/world.wit) so that the guest can show what the host grants.
//
// The last path segment picks what it does:
//
//   /, /hello        "hello from a JS component: METHOD PATH", and
//                    ", hello NAME" when the request has `x-name: NAME`
//   /echo            the request body back, streamed through, with its
//                    content type
//   /stream          three lines, 200 ms apart, each sent as it is written
//   /env?NAME        the variable's value, or "(unset)"; /env alone: the
//                    names of all variables, as JSON
//   /dirs            the directories granted (`dir=` options), as JSON
//   /file?PATH       the file's content, or "cannot open PATH: ERROR"
//   /fetch?URL       an outbound GET: "upstream said: STATUS BODY", or the
//                    error
//   /throw           an uncaught exception (the engine answers 500 and
//                    writes the stack to stderr)
//   anything else    404 "no such page: PATH"

import { getEnvironment } from 'wasi:cli/environment@0.2.10';
import { getDirectories } from 'wasi:filesystem/preopens@0.2.10';

const GREETING = 'hello from a JS component';

addEventListener('fetch', (event) => event.respondWith(handle(event.request)));

function text(body, status = 200) {
  return new Response(body, { status, headers: { 'content-type': 'text/plain' } });
}

async function handle(request) {
  const url = new URL(request.url);
  const action = url.pathname.split('/').pop();
  const arg = decodeURIComponent(url.search.slice(1));
  switch (action) {
    case '':
    case 'hello': {
      const name = request.headers.get('x-name');
      return text(`${GREETING}: ${request.method} ${url.pathname}${name ? `, hello ${name}` : ''}\n`);
    }
    case 'echo':
      return new Response(request.body, {
        headers: { 'content-type': request.headers.get('content-type') ?? 'application/octet-stream' },
      });
    case 'stream':
      return new Response(lines(3, 200), { headers: { 'content-type': 'text/plain' } });
    case 'env': {
      const env = getEnvironment();
      if (!arg) return text(JSON.stringify(env.map(([name]) => name)));
      const found = env.find(([name]) => name === arg);
      return text(found ? found[1] : '(unset)');
    }
    case 'dirs':
      return text(JSON.stringify(getDirectories().map(([, path]) => path)));
    case 'file':
      try {
        return text(readFile(arg));
      } catch (e) {
        return text(`cannot open ${arg}: ${e?.payload ?? e?.message ?? e}`);
      }
    case 'fetch':
      try {
        const response = await fetch(arg);
        return text(`upstream said: ${response.status} ${await response.text()}`);
      } catch (e) {
        return text(`outbound error: ${e?.message ?? e}`);
      }
    case 'throw':
      throw new Error('the guest threw on purpose');
  }
  return text(`no such page: ${url.pathname}\n`, 404);
}

// `count` lines, `delayMs` apart, as a stream the host sends as it is written.
function lines(count, delayMs) {
  let sent = 0;
  const encoder = new TextEncoder();
  return new ReadableStream({
    async pull(controller) {
      if (sent > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      sent += 1;
      controller.enqueue(encoder.encode(`line ${sent}\n`));
      if (sent === count) controller.close();
    },
  });
}

// Reads PATH through the directory granted at its prefix (wasi:filesystem;
// the host refuses paths that leave it).
function readFile(path) {
  for (const [dir, guestPath] of getDirectories()) {
    const prefix = guestPath.endsWith('/') ? guestPath : `${guestPath}/`;
    if (!path.startsWith(prefix)) continue;
    const file = dir.openAt({ symlinkFollow: false }, path.slice(prefix.length), {}, { read: true });
    const [bytes] = file.read(file.stat().size, 0n);
    return new TextDecoder().decode(bytes);
  }
  throw new Error('no directory granted');
}
