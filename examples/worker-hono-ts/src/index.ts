import { Hono } from "hono";
import ms from "ms";
import { greet, type Greeting } from "./greet";

type Bindings = { GREETING: string };

enum Unit {
  Milliseconds = "ms",
}

const app = new Hono<{ Bindings: Bindings }>();

app.get("/", (c) => {
  const greeting: Greeting = greet(c.env.GREETING);
  return c.text(greeting.text + "\n");
});

// `ms` is a CommonJS package: `module.exports = function (val, options)`.
app.get("/duration/:value", (c) => c.json({ [Unit.Milliseconds]: ms(c.req.param("value")) }));

app.get("/users/:id", (c) => c.json({ id: c.req.param("id"), path: new URL(c.req.url).pathname }));

export default app;
