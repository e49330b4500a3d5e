export default {
  fetch(request) {
    const name = new URL(request.url).searchParams.get("name") ?? "you";
    return new Response(`Hello, ${name}, from the greeter worker\n`);
  },
};
