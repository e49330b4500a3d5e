export default { async fetch() { return new Response("plain fetch"); }, hello(arg, env) { return "hello " + arg.name + " " + typeof env; } };
