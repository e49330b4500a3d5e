//! The value of a SAM rule: `sam:PATH/template.yaml [param.NAME=value…] [client=aws] [function=ID]`,
//! and the template it names ([`template`]): the functions of an AWS SAM
//! application, each a Lambda function ([`LambdaSpec`]) with the API
//! routes its `HttpApi` and `Api` events declare.
//!
//! The template is read when the config is (its errors stop the load,
//! naming the template's file and line) and again by the live target
//! whenever it changes.

pub mod template;
pub mod yaml;

use std::path::{Path, PathBuf};

pub use template::{ApiKind, ApiRoute, Payload, TemplateError};

/// A SAM application as a rule names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SamSpec {
    /// The template (absolute).
    pub template: PathBuf,
    /// `param.NAME=value` options: overrides of the template's
    /// `Parameters` defaults, as `sam deploy --parameter-overrides`.
    pub params: Vec<(String, String)>,
    /// `client=aws`: Python and Node functions run with AWS's runtime
    /// clients (`awslambdaric`, `aws-lambda-ric`), installed where they
    /// run, instead of the ones FlexiLib ships.
    pub aws_clients: bool,
    /// `function=ID`: the rule serves that function's Function URL (its
    /// `FunctionUrlConfig`) instead of the template's APIs.
    pub function: Option<String>,
}

/// Parses the text after `sam:`; `base` is the config file's directory.
pub fn parse(value: &str, base: &Path) -> Result<SamSpec, String> {
    let mut template = None;
    let mut params = Vec::new();
    let mut aws_clients = false;
    let mut function = None;
    for token in value.split_whitespace() {
        match token.split_once('=') {
            Some(("client", "aws")) => aws_clients = true,
            Some(("client", "flexilib")) => aws_clients = false,
            Some(("client", other)) => {
                return Err(format!(
                    "`client={other}`: `flexilib` (the runtime clients FlexiLib ships, the default) or `aws` (awslambdaric, aws-lambda-ric)"
                ))
            }
            Some(("function", id)) => {
                if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(format!(
                        "`function={id}`: a function's logical ID has letters and digits"
                    ));
                }
                function = Some(id.to_string());
            }
            Some((key, setting)) => {
                let Some(name) = key.strip_prefix("param.") else {
                    return Err(format!(
                        "unknown sam option `{key}` (param.NAME=value overrides a template parameter; client=flexilib|aws; function=ID)"
                    ));
                };
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(format!(
                        "`{key}`: a template parameter's name has letters and digits only"
                    ));
                }
                params.push((name.to_string(), setting.to_string()));
            }
            None if template.is_none() => template = Some(token),
            None => {
                return Err(format!(
                    "`{token}`: a `sam:` rule names one template, then `param.NAME=value` options"
                ))
            }
        }
    }
    let Some(template) = template else {
        return Err("`sam:` needs a template, e.g. `sam:app/template.yaml`".into());
    };
    let path = base.join(template);
    Ok(SamSpec {
        template: std::path::absolute(&path).unwrap_or(path),
        params,
        aws_clients,
        function,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_values() {
        let spec = parse(
            "app/template.yaml param.Stage=dev param.Table=t=1",
            Path::new("/etc"),
        );
        let Ok(spec) = spec else { panic!("{spec:?}") };
        assert_eq!(spec.template, PathBuf::from("/etc/app/template.yaml"));
        assert_eq!(
            spec.params,
            [
                ("Stage".into(), "dev".into()),
                ("Table".into(), "t=1".into())
            ]
        );
        let err = |text: &str| parse(text, Path::new("/x")).err().unwrap_or_default();
        assert!(err("").contains("needs a template"));
        assert!(err("t.yaml speed=1").contains("unknown sam option `speed`"));
        assert!(err("t.yaml param.a-b=1").contains("letters and digits"));
        assert!(err("a.yaml b.yaml").contains("names one template"));
        assert!(err("t.yaml client=x").contains("`client=x`"));
        assert!(parse("t.yaml client=aws", Path::new("/x")).is_ok_and(|s| s.aws_clients));
        assert!(parse("t.yaml function=Hello", Path::new("/x"))
            .is_ok_and(|s| s.function.as_deref() == Some("Hello")));
        assert!(err("t.yaml function=a.b").contains("logical ID"));
    }
}
