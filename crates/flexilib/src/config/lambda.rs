//! The value of a Lambda rule: `lambda:COMMAND [ARG…] [option=value…]`.
//!
//! Tokens (separated by whitespace; no quoting) holding `=` are options, the
//! others form the command line. A command with a `/` is relative to the
//! config file's directory; a bare name is looked up in `PATH` when an
//! instance starts. A command with arguments is an interpreter running the
//! function's code (`python3 -m awslambdaric app.handler`); one without is
//! the function itself (a `bootstrap`). Options:
//!
//! | option | meaning | default |
//! |---|---|---|
//! | `name=` | the function's name | the command's file name |
//! | `timeout=` | seconds an invocation may run | 3 |
//! | `memory=` | MB, reported (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, `REPORT`) | 128 |
//! | `concurrency=` | most instances at once | 10 |
//! | `queue=` | requests that may wait for an instance when all are busy (then 429) | 0 |
//! | `idle=` | seconds an idle instance is kept | 300 |
//! | `handler=` | `_HANDLER` | the last argument, if the command has any |
//! | `dir=` | working directory and `LAMBDA_TASK_ROOT` (relative to the config file) | the config file's directory |
//! | `env.NAME=` | an extra environment variable | |
//! | `runtime=` | instead of a command: `python3.x` / `nodejs*.x` run `handler=` with the runtime client FlexiLib ships, `provided.*` runs `dir=`'s `bootstrap` | |

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A Lambda function as the config describes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LambdaSpec {
    /// The function's name (`AWS_LAMBDA_FUNCTION_NAME`, the Invoke API's `{name}`).
    pub name: String,
    /// The program: an absolute path, or a bare name looked up in `PATH`.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Working directory and `LAMBDA_TASK_ROOT`.
    pub dir: PathBuf,
    /// How long one invocation may run.
    pub timeout: Duration,
    /// Memory size in MB (reported; not enforced).
    pub memory_mb: u32,
    /// Most instances running at once.
    pub concurrency: u32,
    /// Requests that may wait for a busy instance before 429.
    pub queue: u32,
    /// How long an idle instance is kept before it is stopped.
    pub idle: Duration,
    /// `_HANDLER`, if any.
    pub handler: Option<String>,
    /// Extra environment variables, in config order.
    pub env: Vec<(String, String)>,
    /// The language of a managed runtime (`runtime=`, a SAM `Runtime`):
    /// its dependencies (`requirements.txt`, `package.json`) are installed.
    pub language: Option<Language>,
    /// `program` runs the language's runtime client that FlexiLib ships
    /// (its script goes before `args`).
    pub shipped_client: bool,
    /// The managed runtime's identifier (`python3.12`, `nodejs20.x`):
    /// `AWS_EXECUTION_ENV` is `AWS_Lambda_` and it, as on AWS.
    pub runtime: Option<String>,
}

/// The language of a managed runtime that FlexiLib runs with a runtime
/// client it ships (`runtimes/` in the crate), so a function needs nothing
/// installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// `python3 flexilib_runtime.py module.function`.
    Python,
    /// `node flexilib_runtime.mjs file.export`.
    Node,
}

/// How a managed runtime's function is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedCommand {
    /// `python3`, `node`, or the function's `bootstrap`.
    pub program: PathBuf,
    /// The handler, for an interpreter.
    pub args: Vec<String>,
    /// The interpreter's language (its shipped client runs the handler).
    pub language: Option<Language>,
}

/// How a managed runtime runs `handler` in `dir`, or `None` for a runtime
/// FlexiLib does not run. `provided.*` runs `dir/bootstrap`; the others
/// need a handler.
pub fn managed_runtime(
    runtime: &str,
    handler: Option<&str>,
    dir: &Path,
) -> Option<Result<ManagedCommand, String>> {
    let needs_handler = || {
        handler
            .map(String::from)
            .ok_or_else(|| format!("`Runtime: {runtime}` needs a handler"))
    };
    let command = if runtime.starts_with("python3") {
        needs_handler().map(|h| ManagedCommand {
            program: PathBuf::from("python3"),
            args: vec![h],
            language: Some(Language::Python),
        })
    } else if runtime.starts_with("nodejs") {
        needs_handler().map(|h| ManagedCommand {
            program: PathBuf::from("node"),
            args: vec![h],
            language: Some(Language::Node),
        })
    } else if runtime.starts_with("provided") {
        Ok(ManagedCommand {
            program: dir.join("bootstrap"),
            args: Vec::new(),
            language: None,
        })
    } else {
        return None;
    };
    Some(command)
}

impl LambdaSpec {
    /// True for an interpreter command (one with arguments, such as
    /// `python3 -m awslambdaric app.handler`): its code is the function's
    /// directory, which is watched, rather than the program file.
    pub fn is_interpreted(&self) -> bool {
        !self.args.is_empty()
    }
}

/// AWS's default timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// AWS's largest timeout (15 minutes).
const MAX_TIMEOUT_SECONDS: f64 = 900.0;

/// Parses the text after `lambda:`; `base` is the config file's directory.
pub fn parse(value: &str, base: &Path) -> Result<LambdaSpec, String> {
    let mut command: Vec<&str> = Vec::new();
    let mut name = None;
    let mut timeout = DEFAULT_TIMEOUT;
    let mut memory_mb = 128;
    let mut concurrency = 10;
    let mut queue = 0;
    let mut idle = Duration::from_secs(300);
    let mut handler = None;
    let mut dir = None;
    let mut env = Vec::new();
    let mut runtime = None;
    for token in value.split_whitespace() {
        let Some((key, setting)) = token.split_once('=') else {
            command.push(token);
            continue;
        };
        if let Some(variable) = key.strip_prefix("env.") {
            let valid = !variable.is_empty()
                && !variable.starts_with(|c: char| c.is_ascii_digit())
                && variable
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!(
                    "`{key}`: an environment variable name has letters, digits and `_`"
                ));
            }
            env.push((variable.to_string(), setting.to_string()));
            continue;
        }
        match key {
            "name" => {
                let valid = !setting.is_empty()
                    && setting.len() <= 64
                    && setting
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !valid {
                    return Err(format!(
                        "`name={setting}`: a function name has 1 to 64 letters, digits, `-` and `_`"
                    ));
                }
                name = Some(setting.to_string());
            }
            "timeout" => timeout = seconds(key, setting, MAX_TIMEOUT_SECONDS)?,
            "idle" => idle = seconds(key, setting, 86_400.0 * 365.0)?,
            "memory" => memory_mb = number(key, setting, 128, 10_240)?,
            "concurrency" => concurrency = number(key, setting, 1, 1000)?,
            "queue" => queue = number(key, setting, 0, 100_000)?,
            "handler" if !setting.is_empty() => handler = Some(setting.to_string()),
            "runtime" if !setting.is_empty() => runtime = Some(setting),
            "dir" if !setting.is_empty() => dir = Some(absolute(&base.join(setting))),
            "handler" | "dir" | "runtime" => return Err(format!("`{key}=` needs a value")),
            _ => {
                return Err(format!(
                    "unknown lambda option `{key}` (name, timeout, memory, concurrency, queue, idle, handler, dir, env.NAME, runtime)"
                ))
            }
        }
    }
    if let Some(runtime) = runtime {
        if let Some(first) = command.first() {
            return Err(format!(
                "`runtime={runtime}` runs the handler itself: no command (`{first}`) with it"
            ));
        }
        let dir = dir.unwrap_or_else(|| absolute(base));
        let Some(managed) = managed_runtime(runtime, handler.as_deref(), &dir) else {
            return Err(format!(
                "`runtime={runtime}`: python3.x, nodejs*.x or provided.* (others need a command)"
            ));
        };
        let ManagedCommand {
            program,
            args,
            language,
        } = managed.map_err(|_| {
            format!("`runtime={runtime}` needs `handler=` (`app.handler`, `index.handler`)")
        })?;
        let name = match name {
            Some(name) => name,
            None => default_name(&dir)
                .map_err(|_| "give the function a name with `name=`".to_string())?,
        };
        return Ok(LambdaSpec {
            name,
            program,
            args,
            dir,
            timeout,
            memory_mb,
            concurrency,
            queue,
            idle,
            handler,
            env,
            shipped_client: language.is_some(),
            language,
            runtime: Some(runtime.to_string()),
        });
    }
    let Some((&program, args)) = command.split_first() else {
        return Err(
            "`lambda:` needs a command, e.g. `lambda:functions/hello/bootstrap`, or `runtime=`"
                .into(),
        );
    };
    let program = if program.contains('/') {
        absolute(&base.join(program))
    } else {
        PathBuf::from(program)
    };
    let name = match name {
        Some(name) => name,
        None => default_name(&program)?,
    };
    // An interpreter command's last argument names the handler.
    let handler = handler.or_else(|| args.last().map(|arg| (*arg).to_string()));
    Ok(LambdaSpec {
        name,
        program,
        args: args.iter().map(|arg| (*arg).to_string()).collect(),
        dir: dir.unwrap_or_else(|| absolute(base)),
        timeout,
        memory_mb,
        concurrency,
        queue,
        idle,
        handler,
        env,
        language: None,
        shipped_client: false,
        runtime: None,
    })
}

/// The function's command and directory exist: a command with a `/` as a
/// file, one without in `PATH`; `dir=` as a directory. The error names the
/// path.
pub fn check_files(spec: &LambdaSpec) -> Result<(), String> {
    if !spec.dir.is_dir() {
        return Err(format!(
            "the function's directory {} does not exist",
            spec.dir.display()
        ));
    }
    let program = &spec.program;
    if program.components().count() > 1 || program.is_absolute() {
        if !program.is_file() {
            return Err(format!(
                "the function's command {} does not exist",
                program.display()
            ));
        }
        return Ok(());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| dir.join(program).is_file()) {
        return Ok(());
    }
    Err(format!(
        "the function's command `{}` is not in PATH",
        program.display()
    ))
}

/// The command's file name, when it is a valid function name.
fn default_name(program: &Path) -> Result<String, String> {
    let file = program
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    let valid = !file.is_empty()
        && file.len() <= 64
        && file
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(file.to_string())
    } else {
        Err(format!(
            "`{file}` is not a valid function name; give one with `name=`"
        ))
    }
}

fn seconds(key: &str, text: &str, max: f64) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= max => {
            Ok(Duration::from_secs_f64(secs))
        }
        _ => Err(format!(
            "`{key}={text}`: a number of seconds above 0, at most {max}"
        )),
    }
}

fn number(key: &str, text: &str, min: u32, max: u32) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(value) if (min..=max).contains(&value) => Ok(value),
        _ => Err(format!(
            "`{key}={text}`: a whole number from {min} to {max}"
        )),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> LambdaSpec {
        match parse(text, Path::new("/etc/fl")) {
            Ok(spec) => spec,
            Err(error) => panic!("{text}: {error}"),
        }
    }

    #[test]
    fn executable_with_options() {
        let spec = ok("functions/hello/bootstrap timeout=2 concurrency=4 memory=256 env.A=b=c");
        assert_eq!(spec.name, "bootstrap");
        assert_eq!(
            spec.program,
            PathBuf::from("/etc/fl/functions/hello/bootstrap")
        );
        assert!(spec.args.is_empty() && !spec.is_interpreted());
        assert_eq!(spec.dir, PathBuf::from("/etc/fl"));
        assert_eq!(spec.timeout, Duration::from_secs(2));
        assert_eq!((spec.memory_mb, spec.concurrency, spec.queue), (256, 4, 0));
        assert_eq!(spec.handler, None);
        assert_eq!(spec.env, vec![("A".to_string(), "b=c".to_string())]);
    }

    #[test]
    fn interpreter_defaults() {
        let spec = ok("python3 -m awslambdaric app.handler dir=fn name=py queue=5 idle=0.5");
        assert_eq!(spec.program, PathBuf::from("python3"));
        assert!(spec.is_interpreted());
        assert_eq!(spec.args, ["-m", "awslambdaric", "app.handler"]);
        assert_eq!(spec.handler.as_deref(), Some("app.handler"));
        assert_eq!(spec.dir, PathBuf::from("/etc/fl/fn"));
        assert_eq!(spec.name, "py");
        assert_eq!(spec.timeout, DEFAULT_TIMEOUT);
        assert_eq!((spec.memory_mb, spec.concurrency, spec.queue), (128, 10, 5));
        assert_eq!(spec.idle, Duration::from_millis(500));
        assert_eq!(
            ok("node ric.js index.handler handler=other.fn")
                .handler
                .as_deref(),
            Some("other.fn")
        );
    }

    #[test]
    fn managed_runtimes() {
        let spec = ok("runtime=python3.12 handler=app.handler dir=fns/py");
        assert_eq!(spec.program, PathBuf::from("python3"));
        assert_eq!(spec.args, ["app.handler"]);
        assert_eq!(spec.language, Some(Language::Python));
        assert!(spec.shipped_client);
        assert_eq!(spec.name, "py", "the directory's name");
        assert!(spec.is_interpreted(), "its directory is watched");
        let spec = ok("runtime=nodejs20.x handler=index.handler dir=js name=web");
        assert_eq!(
            (spec.program, spec.language, spec.name.as_str()),
            (PathBuf::from("node"), Some(Language::Node), "web")
        );
        let spec = ok("runtime=provided.al2023 dir=rs");
        assert_eq!(spec.program, PathBuf::from("/etc/fl/rs/bootstrap"));
        assert_eq!((spec.language, spec.args.len()), (None, 0));
        let err = |text: &str| parse(text, Path::new("/x")).err().unwrap_or_default();
        assert!(err("runtime=python3.12 dir=a").contains("needs `handler=`"));
        assert!(
            err("runtime=java21 handler=a.B dir=a").contains("python3.x, nodejs*.x or provided.*")
        );
        assert!(err("python3 app.h runtime=python3.12 handler=a.b").contains("no command"));
    }

    #[test]
    fn errors() {
        let err = |text: &str| parse(text, Path::new("/x")).err().unwrap_or_default();
        assert!(err("").contains("needs a command"));
        assert!(err("timeout=2").contains("needs a command"));
        assert!(err("b timeout=0").contains("`timeout=0`"));
        assert!(err("b timeout=901").contains("at most 900"));
        assert!(err("b memory=64").contains("from 128 to 10240"));
        assert!(err("b concurrency=0").contains("from 1 to 1000"));
        assert!(err("b speed=1").contains("unknown lambda option `speed`"));
        assert!(err("b env.1X=2").contains("environment variable name"));
        assert!(err("b name=a.b").contains("function name"));
        assert!(err("fn/boot.strap").contains("give one with `name=`"));
        assert!(err("b dir=").contains("needs a value"));
    }
}
