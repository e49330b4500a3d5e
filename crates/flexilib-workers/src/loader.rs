//! QuickJS's module loader for a worker: specifiers go through
//! [`Project`] (its directory only), and a module that does not compile
//! is reported to JavaScript by name and position only: the engine's own
//! message may quote the source, so it goes to the server's log instead.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::{Ctx, Exception, Module};

use crate::modules::Project;

/// Resolves specifiers against the project.
pub struct ProjectResolver {
    /// The worker's project.
    pub project: Rc<Project>,
}

impl Resolver for ProjectResolver {
    fn resolve<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        if name == CLOUDFLARE_WORKERS {
            return Ok(name.to_string());
        }
        match self.project.resolve(base, name) {
            Ok(path) => Ok(path.to_string_lossy().into_owned()),
            Err(e) => Err(Exception::throw_message(ctx, &e.to_string())),
        }
    }
}

/// The built-in module workers import `DurableObject`,
/// `WorkerEntrypoint`, `RpcTarget` and `env` from.
const CLOUDFLARE_WORKERS: &str = "cloudflare:workers";

/// Its source: the prelude's classes, and `env` once the worker's `env`
/// is made (a live binding, as on Cloudflare).
const CLOUDFLARE_WORKERS_SOURCE: &str = "\
const cf = globalThis[Symbol.for('flexilib.cloudflare:workers')];
export const DurableObject = cf.DurableObject;
export const WorkerEntrypoint = cf.WorkerEntrypoint;
export const RpcTarget = cf.RpcTarget;
export let env = {};
cf.setEnv = (value) => { env = value; };
";

/// Loads modules from the project, noting each file (they are watched).
pub struct ProjectLoader {
    /// The worker's project.
    pub project: Rc<Project>,
    /// Files read so far.
    pub files: Rc<RefCell<Vec<PathBuf>>>,
    /// The route, for log lines.
    pub route: String,
}

impl Loader for ProjectLoader {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js>> {
        if name == CLOUDFLARE_WORKERS {
            return Module::declare(ctx.clone(), name, CLOUDFLARE_WORKERS_SOURCE);
        }
        if crate::node::builtin(name) == Some(name) {
            // Its exports are what js/node.js made of it in this isolate.
            let short = name.trim_start_matches("node:");
            let exports: Vec<String> = ctx.eval(format!(
                "Object.keys(globalThis[Symbol.for('{}')]['{short}'].named)",
                crate::node::GLOBAL_KEY
            ))?;
            return Module::declare(
                ctx.clone(),
                name,
                crate::node::module_source(name, &exports),
            );
        }
        let path = Path::new(name);
        self.files.borrow_mut().push(path.to_path_buf());
        let source = self
            .project
            .read(path)
            .map_err(|e| Exception::throw_message(ctx, &e.to_string()))?;
        declare(ctx, &self.project, &self.route, name, source)
    }
}

/// Compiles module `name`; on failure the error JavaScript sees names
/// only the module, the kind of error and where, and the full message is
/// logged.
pub fn declare<'js>(
    ctx: &Ctx<'js>,
    project: &Project,
    route: &str,
    name: &str,
    source: Vec<u8>,
) -> rquickjs::Result<Module<'js>> {
    match Module::declare(ctx.clone(), name, source) {
        Ok(module) => Ok(module),
        Err(error) if error.is_exception() => {
            let thrown = ctx.catch();
            let full = crate::report::value_text(&thrown);
            crate::report::log(route, &format!("cannot compile {name}: {full}"));
            let kind = thrown
                .as_object()
                .and_then(|o| o.get::<_, Option<String>>("name").ok().flatten())
                .unwrap_or_else(|| "Error".into());
            let shown = project.shown(Path::new(name));
            let place = position(&full, name).unwrap_or_default();
            let message = format!(
                "cannot compile module '{shown}'{place} (the server's log has the details)"
            );
            Err(if kind == "SyntaxError" {
                Exception::throw_syntax(ctx, &message)
            } else {
                Exception::throw_message(ctx, &format!("{kind}: {message}"))
            })
        }
        Err(error) => Err(error),
    }
}

/// ` at line L, column C` from the first stack frame in file `name`.
fn position(text: &str, name: &str) -> Option<String> {
    let at = text.find(&format!("{name}:"))? + name.len() + 1;
    let rest = &text[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ':'))
        .unwrap_or(rest.len());
    let mut numbers = rest[..end].split(':');
    let line = numbers.next().filter(|l| !l.is_empty())?;
    Some(match numbers.next().filter(|c| !c.is_empty()) {
        Some(column) => format!(" at line {line}, column {column}"),
        None => format!(" at line {line}"),
    })
}

#[cfg(test)]
mod tests {
    use super::position;

    #[test]
    fn the_position_comes_from_the_stack_frame_of_the_file() {
        let text = "SyntaxError: invalid redefinition of 'x'\n    at /srv/app/bad.js:2:5\n";
        assert_eq!(
            position(text, "/srv/app/bad.js").as_deref(),
            Some(" at line 2, column 5")
        );
        assert_eq!(position("SyntaxError: x", "/srv/app/bad.js"), None);
    }
}
