//! What a project's file becomes before QuickJS compiles it as a module,
//! as wrangler's bundler would have made it:
//!
//! * TypeScript (`.ts`, `.mts`, `.cts`) has its types stripped (oxc's
//!   parser, transformer and code generator; no type check, as esbuild
//!   does none);
//! * JSON (`.json`) becomes a module whose default export is the value;
//! * CommonJS (`.cjs`, or a `.js` file without `import`/`export` that its
//!   `package.json` does not declare `"type": "module"`) is wrapped: its
//!   body runs once, when first imported or required, with `module`,
//!   `exports` and `require`; the modules it `require`s by a literal name
//!   are imported statically (so the module graph stays QuickJS's), and
//!   `require` of a name that cannot be resolved (an optional dependency,
//!   a Node.js built-in) throws when it is called, as in Node.js. Its
//!   `module.exports` is the default export (or `exports.default` when it
//!   says `__esModule`, as esbuild decides), and the names it assigns to
//!   `exports` are named exports;
//! * an ES module in JavaScript is compiled as it is, so its line numbers
//!   are the file's.
//!
//! Syntax errors name the file, line and column.

use std::fmt::Write as _;
use std::path::Path;

use oxc::allocator::Allocator;
use oxc::ast::ast::{
    Argument, AssignmentExpression, AssignmentTarget, CallExpression, Expression,
    ObjectPropertyKind, Program, PropertyKey,
};
use oxc::ast_visit::{walk, Visit};
use oxc::codegen::Codegen;
use oxc::parser::Parser;
use oxc::semantic::SemanticBuilder;
use oxc::span::SourceType;
use oxc::transformer::{TransformOptions, Transformer};

/// The suffix the CommonJS wrapper adds to the specifiers it imports for
/// `require`: the resolver then uses the `require` conditions. (Not NUL:
/// QuickJS hands specifiers on as C strings.)
pub const REQUIRE_MARK: &str = "\u{1}require";

/// Why a file cannot become a module. Messages name the file as the
/// worker sees it, and a position; never the file's content.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// Not UTF-8.
    #[error("{0}: not UTF-8 text")]
    NotUtf8(String),
    /// A syntax error in TypeScript (or a construct that cannot be
    /// stripped).
    #[error("SyntaxError: {message} at {shown}:{line}:{column}")]
    Syntax {
        /// The file.
        shown: String,
        /// From 1.
        line: usize,
        /// From 1, in characters.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// Not valid JSON.
    #[error("{shown}: invalid JSON: {message}")]
    Json {
        /// The file.
        shown: String,
        /// serde_json's message (line and column, no content).
        message: String,
    },
}

/// How a module's `require` calls resolve: a literal name to its
/// canonical path, or `None` when it cannot be resolved.
pub trait RequireResolver {
    /// Resolves `specifier` as `require` from module `from`.
    fn resolve_require(&self, from: &Path, specifier: &str) -> bool;
}

/// The module source for `path` (canonical), whose text is `source`;
/// `shown` names it in errors; `esm_package` tells whether the nearest
/// `package.json` says `"type": "module"`.
pub fn compile(
    path: &Path,
    shown: &str,
    source: &[u8],
    esm_package: bool,
    requires: &dyn RequireResolver,
) -> Result<Vec<u8>, CompileError> {
    let text = std::str::from_utf8(source).map_err(|_| CompileError::NotUtf8(shown.into()))?;
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if extension == "json" {
        return json_module(text, shown);
    }
    let typescript = matches!(extension, "ts" | "mts" | "cts");
    let source_type = if typescript {
        SourceType::ts()
    } else {
        SourceType::mjs()
    };
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, text, source_type).parse();
    if let Some(error) = parsed.errors_first() {
        if !typescript {
            // QuickJS reports it, with its own message and position, as
            // for any JavaScript it compiles.
            return Ok(source.to_vec());
        }
        return Err(syntax_error(text, shown, error));
    }
    let commonjs = match extension {
        "cjs" | "cts" => true,
        "mjs" | "mts" => false,
        _ => !esm_package && !parsed.module_record.has_module_syntax,
    };
    let mut program = parsed.program;
    let code = if typescript {
        strip_types(&allocator, path, &mut program, text, shown)?
    } else {
        None
    };
    if !commonjs {
        return Ok(code.unwrap_or_else(|| text.to_string()).into_bytes());
    }
    let mut found = Found::default();
    found.visit_program(&program);
    let body = code.as_deref().unwrap_or(text);
    Ok(wrap_commonjs(path, body, &found, requires).into_bytes())
}

/// `ParserReturn::diagnostics`' first error, if any.
trait FirstError {
    fn errors_first(&self) -> Option<&oxc::diagnostics::OxcDiagnostic>;
}

impl FirstError for oxc::parser::ParserReturn<'_> {
    fn errors_first(&self) -> Option<&oxc::diagnostics::OxcDiagnostic> {
        if self.panicked || !self.diagnostics.is_empty() {
            self.diagnostics.iter().next()
        } else {
            None
        }
    }
}

fn syntax_error(text: &str, shown: &str, error: &oxc::diagnostics::OxcDiagnostic) -> CompileError {
    let offset = error
        .labels
        .iter()
        .map(|label| label.offset() as usize)
        .next()
        .unwrap_or(0)
        .min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    let column = before[line_start..].chars().count() + 1;
    CompileError::Syntax {
        shown: shown.into(),
        line,
        column,
        message: error.message.to_string(),
    }
}

/// TypeScript → JavaScript, types stripped.
fn strip_types<'a>(
    allocator: &'a Allocator,
    path: &Path,
    program: &mut Program<'a>,
    text: &str,
    shown: &str,
) -> Result<Option<String>, CompileError> {
    let semantic = SemanticBuilder::new().with_enum_eval(true).build(program);
    let scoping = semantic.semantic.into_scoping();
    let options = TransformOptions::default();
    let transformed =
        Transformer::new(allocator, path, &options).build_with_scoping(scoping, program);
    if let Some(error) = transformed.diagnostics.first() {
        return Err(syntax_error(text, shown, error));
    }
    Ok(Some(Codegen::new().build(program).code))
}

fn json_module(text: &str, shown: &str) -> Result<Vec<u8>, CompileError> {
    serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| CompileError::Json {
        shown: shown.into(),
        message: e.to_string(),
    })?;
    // JSON is a JavaScript expression (ES2019). On a line of its own, so a
    // comment cannot swallow it.
    let module = format!(
        "const __flexilib_json = (\n{text}\n);\nexport default __flexilib_json;\nexport function __flexilib_cjs() {{ return __flexilib_json; }}\n"
    );
    Ok(module.into_bytes())
}

/// What a CommonJS module requires and exports, as far as can be seen
/// without running it (what Node.js's cjs-module-lexer sees).
#[derive(Debug, Default)]
struct Found {
    requires: Vec<String>,
    exports: Vec<String>,
}

impl<'a> Visit<'a> for Found {
    fn visit_call_expression(&mut self, call: &CallExpression<'a>) {
        if let Expression::Identifier(callee) = &call.callee {
            if callee.name == "require" && call.arguments.len() == 1 {
                if let Some(Argument::StringLiteral(name)) = call.arguments.first() {
                    let name = name.value.to_string();
                    if !self.requires.contains(&name) {
                        self.requires.push(name);
                    }
                }
            }
        }
        // Object.defineProperty(exports, "name", …)
        if let Expression::StaticMemberExpression(member) = &call.callee {
            let on_object =
                matches!(&member.object, Expression::Identifier(o) if o.name == "Object");
            if on_object && member.property.name == "defineProperty" {
                if let (Some(Argument::Identifier(target)), Some(Argument::StringLiteral(name))) =
                    (call.arguments.first(), call.arguments.get(1))
                {
                    if target.name == "exports" {
                        self.export(name.value.as_str());
                    }
                }
            }
        }
        walk::walk_call_expression(self, call);
    }

    fn visit_assignment_expression(&mut self, assignment: &AssignmentExpression<'a>) {
        if let AssignmentTarget::StaticMemberExpression(member) = &assignment.left {
            let name = member.property.name.as_str();
            match &member.object {
                // exports.name = …
                Expression::Identifier(object) if object.name == "exports" => self.export(name),
                // module.exports.name = …
                Expression::StaticMemberExpression(inner)
                    if inner.property.name == "exports"
                        && matches!(&inner.object, Expression::Identifier(m) if m.name == "module") =>
                {
                    self.export(name);
                }
                // module.exports = { a, b: … }
                Expression::Identifier(object) if object.name == "module" && name == "exports" => {
                    if let Expression::ObjectExpression(literal) = &assignment.right {
                        for property in &literal.properties {
                            if let ObjectPropertyKind::ObjectProperty(property) = property {
                                match &property.key {
                                    PropertyKey::StaticIdentifier(key) => {
                                        self.export(key.name.as_str())
                                    }
                                    PropertyKey::StringLiteral(key) => {
                                        self.export(key.value.as_str())
                                    }
                                    _ => {}
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        walk::walk_assignment_expression(self, assignment);
    }
}

impl Found {
    fn export(&mut self, name: &str) {
        let identifier = !name.is_empty()
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
        if identifier
            && name != "default"
            && name != "__esModule"
            && !self.exports.iter().any(|e| e == name)
        {
            self.exports.push(name.to_string());
        }
    }
}

/// A CommonJS module as an ES module (see the module documentation). The
/// body starts on the first line, so its line numbers are the file's.
fn wrap_commonjs(path: &Path, body: &str, found: &Found, requires: &dyn RequireResolver) -> String {
    let quote = |text: &str| serde_json::Value::String(text.to_string()).to_string();
    let mut out = String::new();
    let mut table = String::from("{");
    for (index, name) in found.requires.iter().enumerate() {
        if requires.resolve_require(path, name) {
            let specifier = format!("{name}{REQUIRE_MARK}");
            // Writing into a String cannot fail.
            let _ = write!(
                out,
                "import * as __flexilib_d{index} from {};",
                quote(&specifier)
            );
            let _ = write!(table, "{}: __flexilib_d{index},", quote(name));
        }
    }
    table.push('}');
    let file = path.to_string_lossy();
    let dir = path
        .parent()
        .map(|d| d.to_string_lossy())
        .unwrap_or_default();
    let _ = write!(
        out,
        "var __flexilib_module; const __flexilib_deps = {table}; \
         function __flexilib_require(name) {{ const dep = __flexilib_deps[name]; \
         if (dep === undefined) {{ const e = new Error(\"Cannot find module '\" + name + \"'\"); e.code = 'MODULE_NOT_FOUND'; throw e; }} \
         return typeof dep.__flexilib_cjs === 'function' ? dep.__flexilib_cjs() : dep; }} \
         export function __flexilib_cjs() {{ if (__flexilib_module === undefined) {{ \
         __flexilib_module = {{ exports: {{}} }}; \
         (function (exports, require, module, __filename, __dirname) {{ "
    );
    out.push_str(body);
    let _ = write!(
        out,
        "\n}}).call(__flexilib_module.exports, __flexilib_module.exports, __flexilib_require, __flexilib_module, {}, {}); }} \
         return __flexilib_module.exports; }}\n\
         const __flexilib_exports = __flexilib_cjs();\n\
         export default (__flexilib_exports && __flexilib_exports.__esModule && 'default' in __flexilib_exports) ? __flexilib_exports.default : __flexilib_exports;\n",
        quote(&file),
        quote(&dir)
    );
    for (index, name) in found.exports.iter().enumerate() {
        let _ = writeln!(
            out,
            "const __flexilib_e{index} = __flexilib_exports == null ? undefined : __flexilib_exports[{}]; export {{ __flexilib_e{index} as {name} }};",
            quote(name)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    struct Resolves(Vec<&'static str>);

    impl RequireResolver for Resolves {
        fn resolve_require(&self, _from: &Path, specifier: &str) -> bool {
            self.0.contains(&specifier)
        }
    }

    fn compiled(name: &str, text: &str, esm_package: bool) -> Result<String, CompileError> {
        let path = PathBuf::from("/p").join(name);
        compile(
            &path,
            name,
            text.as_bytes(),
            esm_package,
            &Resolves(vec!["./dep"]),
        )
        .map(|bytes| String::from_utf8(bytes).expect("utf-8"))
    }

    #[test]
    fn typescript_loses_its_types_and_keeps_its_code() {
        let out = compiled(
            "a.ts",
            "interface A { x: number }\nexport const f = (a: A): number => a.x as number;\nenum E { One = 1 }\nexport const one: number = E.One;\n",
            false,
        )
        .expect("compiles");
        assert!(
            !out.contains("interface") && !out.contains(": number"),
            "{out}"
        );
        assert!(out.contains("export const f"), "{out}");
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let error = compiled("b.ts", "export const a = 1;\nconst b: = 2;\n", false)
            .expect_err("a syntax error");
        let text = error.to_string();
        assert!(
            text.starts_with("SyntaxError: ") && text.contains(" at b.ts:2:"),
            "{text}"
        );
    }

    #[test]
    fn commonjs_is_wrapped_with_its_requires_and_named_exports() {
        let out = compiled(
            "c.js",
            "const dep = require('./dep');\nconst gone = require('optional-thing');\nexports.hello = () => dep;\nmodule.exports.other = 1;\n",
            false,
        )
        .expect("compiles");
        assert!(
            out.starts_with("import * as __flexilib_d0 from \"./dep\\u0001require\";"),
            "{out}"
        );
        assert!(
            !out.contains("optional-thing\\u0001"),
            "an unresolvable require is not imported: {out}"
        );
        assert!(
            out.contains("as hello }") && out.contains("as other }"),
            "{out}"
        );
        // The body begins on the first line.
        assert_eq!(
            out.lines()
                .next()
                .map(|l| l.ends_with("const dep = require('./dep');")),
            Some(true)
        );
        // An ES module, or a package that says it is one, is left alone.
        let esm = compiled("d.js", "export default 1;\n", false).expect("compiles");
        assert_eq!(esm, "export default 1;\n");
        let declared = compiled("e.js", "globalThis.x = 1;\n", true).expect("compiles");
        assert_eq!(declared, "globalThis.x = 1;\n");
    }

    #[test]
    fn json_is_a_default_export() {
        let out = compiled("f.json", "{\"a\": [1, 2]}", false).expect("compiles");
        assert!(out.contains("export default __flexilib_json"), "{out}");
        assert!(compiled("g.json", "{nope}", false).is_err());
    }
}
