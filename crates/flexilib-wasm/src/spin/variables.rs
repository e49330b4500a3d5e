//! Spin variables: the application's `[variables]` (a default, or
//! `required`, with the value given by the route option `variable.NAME=`),
//! each component's `[component.ID.variables]` (templates such as
//! `"{{ api_host }}/v1"` over the application's), and the
//! `fermyon:spin/variables@2.0.0` interface that hands a component its own.

use std::collections::BTreeMap;

use super::bindings::fermyon::spin::variables;
use super::manifest::Variable;
use crate::guest::GuestState;

/// Why variables could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum VariableError {
    /// A name Spin would refuse.
    #[error(
        "variable name {0:?}: names are lower-case letters, digits and `_`, starting with a letter"
    )]
    Name(String),
    /// A required variable without a value.
    #[error(
        "variable `{0}` is required: give it a value with the route option variable.{0}=VALUE"
    )]
    Required(String),
    /// Neither a default nor `required`.
    #[error("variable `{0}` needs a default or `required = true`")]
    NoDefault(String),
    /// Both a default and `required`.
    #[error("variable `{0}` cannot both have a default and be required")]
    Both(String),
    /// A value given for a variable the manifest does not declare.
    #[error("option variable.{0}: the manifest declares no variable `{0}`")]
    Undeclared(String),
    /// A template that does not parse or names an unknown variable.
    #[error("template {template:?}: {message}")]
    Template {
        /// The template.
        template: String,
        /// What is wrong.
        message: String,
    },
}

/// Whether `name` is a valid Spin variable name.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The application's variables with their values: the route's
/// `variable.NAME=` options over the manifest's defaults.
pub fn resolve_app(
    declared: &BTreeMap<String, Variable>,
    given: &[(String, String)],
) -> Result<BTreeMap<String, String>, VariableError> {
    for (name, _) in given {
        if !declared.contains_key(name) {
            return Err(VariableError::Undeclared(name.clone()));
        }
    }
    let mut values = BTreeMap::new();
    for (name, variable) in declared {
        if !valid_name(name) {
            return Err(VariableError::Name(name.clone()));
        }
        let given = given.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v);
        let value = match (given, &variable.default, variable.required) {
            (_, Some(_), true) => return Err(VariableError::Both(name.clone())),
            (Some(value), _, _) => value.clone(),
            (None, Some(default), false) => default.clone(),
            (None, None, true) => return Err(VariableError::Required(name.clone())),
            (None, None, false) => return Err(VariableError::NoDefault(name.clone())),
        };
        values.insert(name.clone(), value);
    }
    Ok(values)
}

/// Expands `{{ name }}` in `template` with the application's variables.
pub fn expand(template: &str, app: &BTreeMap<String, String>) -> Result<String, VariableError> {
    let error = |message: String| VariableError::Template {
        template: template.to_string(),
        message,
    };
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| error("`{{` without `}}`".into()))?;
        let name = after[..end].trim();
        let value = app
            .get(name)
            .ok_or_else(|| error(format!("no application variable `{name}`")))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A component's variables: its templates expanded.
pub fn resolve_component(
    templates: &BTreeMap<String, String>,
    app: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, VariableError> {
    templates
        .iter()
        .map(|(name, template)| {
            if !valid_name(name) {
                return Err(VariableError::Name(name.clone()));
            }
            Ok((name.clone(), expand(template, app)?))
        })
        .collect()
}

impl variables::Host for GuestState {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<String, variables::Error>> {
        if !valid_name(&name) {
            return Ok(Err(variables::Error::InvalidName(name)));
        }
        let value = self
            .spin
            .as_ref()
            .and_then(|spin| spin.context.variables.get(&name).cloned());
        Ok(value.ok_or(variables::Error::Undefined(name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(items: &[(&str, Option<&str>, bool)]) -> BTreeMap<String, Variable> {
        items
            .iter()
            .map(|(name, default, required)| {
                let variable = Variable {
                    default: default.map(str::to_string),
                    required: *required,
                    _secret: false,
                };
                (name.to_string(), variable)
            })
            .collect()
    }

    #[test]
    fn values_come_from_options_over_defaults_and_templates_expand() {
        let vars = declared(&[("greeting", Some("hi"), false), ("token", None, true)]);
        let given = vec![("token".to_string(), "s3cret".to_string())];
        let app = resolve_app(&vars, &given).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(app["greeting"], "hi");
        assert_eq!(app["token"], "s3cret");
        let templates = BTreeMap::from([(
            "message".to_string(),
            "{{ greeting }}, {{token}}!".to_string(),
        )]);
        let component = resolve_component(&templates, &app).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(component["message"], "hi, s3cret!");

        assert!(matches!(
            resolve_app(&vars, &[]),
            Err(VariableError::Required(_))
        ));
        let unknown = vec![("nope".to_string(), "x".to_string())];
        assert!(matches!(
            resolve_app(&vars, &unknown),
            Err(VariableError::Undeclared(_))
        ));
        assert!(resolve_app(&declared(&[("Bad", Some("x"), false)]), &[]).is_err());
        assert!(expand("{{ missing }}", &app).is_err());
        assert!(expand("{{ greeting", &app).is_err());
        assert!(
            valid_name("api_key2") && !valid_name("2x") && !valid_name("a-b") && !valid_name("")
        );
    }
}
