//! Raw attribute values → the typed inputs of a publish, once. Validation
//! (unknown values skipped) and the conversion apply uses share these
//! functions, so what validate accepts is exactly what apply can build.

use std::path::{Path, PathBuf};

use super::{attr, BuildModel};
use crate::diag::{Diagnostic, Diagnostics};
use crate::docker::{dockerfile_in_context, BuilderKind, ContextError};
use crate::oci::{parse_repository, Platform, Reference};
use crate::publish::PublishRequest;
use crate::registry::assemble::Format;
use crate::value::{AttrPath, Value};

pub const MANIFEST_FORMATS: [&str; 2] = ["docker", "oci"];
pub const BUILDERS: [&str; 3] = ["auto", "buildkit", "classic"];
pub const DEFAULT_DOCKERFILE: &str = "Dockerfile";

pub fn format(text: &str) -> Option<Format> {
    match text {
        "docker" => Some(Format::Docker),
        "oci" => Some(Format::Oci),
        _ => None,
    }
}

pub fn builder(text: &str) -> Option<BuilderKind> {
    match text {
        "auto" => Some(BuilderKind::Auto),
        "buildkit" => Some(BuilderKind::BuildKit),
        "classic" => Some(BuilderKind::Classic),
        _ => None,
    }
}

/// A Docker tag: 1–128 of `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
pub fn valid_tag(tag: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    (1..=128).contains(&tag.len()) && tag.chars().all(ok_char) && !tag.starts_with(['.', '-'])
}

/// Static checks; values still unknown are skipped.
pub fn validate(config: &Value) -> Diagnostics {
    let m = BuildModel::from_value(config);
    let mut d = Diagnostics::new();
    if let Some(e) = check_context(&m) {
        d.push(e);
    }
    if let Some(repo) = m.repository.as_str() {
        if let Err(e) = parse_repository(repo) {
            d.push(Diagnostic::attr_error(
                attr::repository,
                "Invalid Repository",
                e.to_string(),
            ));
        }
    }
    check_list(&mut d, &m.platforms, attr::platforms, |p| {
        Platform::parse(p)
            .err()
            .map(|e| ("Invalid Platform", e.to_string()))
    });
    check_platform_aliases(&mut d, &m.platforms);
    for (i, r) in m
        .cache_from
        .as_list()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if let Some(Err(e)) = r.as_str().map(Reference::parse) {
            d.push(
                Diagnostic::error(
                    "Invalid Cache Image",
                    format!("cache_from has {:?}: {e}", r.as_str().unwrap_or_default()),
                )
                .at(AttrPath::attr(attr::cache_from).then_index(i)),
            );
        }
    }
    check_list(&mut d, &m.tags, attr::tags, |t| {
        (!valid_tag(t)).then(|| {
            (
                "Invalid Tag",
                format!(
                    "{t:?} is not a valid tag: 1 to 128 letters, digits, _ . and -, not starting \
                     with . or -"
                ),
            )
        })
    });
    super::secrets::validate(config, &mut d);
    super::evidence::validate(config, &mut d);
    for (name, value, allowed) in [
        (
            attr::manifest_format,
            &m.manifest_format,
            &MANIFEST_FORMATS[..],
        ),
        (attr::builder, &m.builder, &BUILDERS[..]),
    ] {
        if let Some(v) = value.as_str() {
            if !allowed.contains(&v) {
                d.push(Diagnostic::attr_error(
                    name,
                    "Invalid Value",
                    format!("{name} = {v:?} is not one of {}.", allowed.join(", ")),
                ));
            }
        }
    }
    d
}

/// The context and Dockerfile, checked on disk when both are known.
fn check_context(config: &BuildModel) -> Option<Diagnostic> {
    let context = config.context.as_str()?;
    let dockerfile = match &config.dockerfile {
        Value::Null => DEFAULT_DOCKERFILE,
        Value::String(s) => s.as_str(),
        _ => return None,
    };
    if Path::new(dockerfile).is_absolute() {
        return Some(Diagnostic::attr_error(
            attr::dockerfile,
            "Dockerfile Outside The Context",
            format!("dockerfile = {dockerfile:?} is absolute; give a path relative to `context` ({context})."),
        ));
    }
    dockerfile_in_context(Path::new(context), Path::new(dockerfile))
        .err()
        .map(context_diagnostic)
}

/// A context problem, blamed on `context` or on `dockerfile`.
pub fn context_diagnostic(e: ContextError) -> Diagnostic {
    let (attr, summary) = match &e {
        ContextError::ContextMissing { .. } => (attr::context, "Build Context Not Found"),
        ContextError::DockerfileMissing { .. } => (attr::dockerfile, "Dockerfile Not Found"),
        ContextError::DockerfileOutsideContext { .. } => {
            (attr::dockerfile, "Dockerfile Outside The Context")
        }
        ContextError::BadIgnoreFile { .. } => (attr::context, "Invalid .dockerignore"),
        _ => (attr::context, "Build Context Unreadable"),
    };
    Diagnostic::attr_error(attr, summary, format!("{e}."))
}

fn check_list(
    d: &mut Diagnostics,
    list: &Value,
    name: &str,
    check: impl Fn(&str) -> Option<(&'static str, String)>,
) {
    let Some(items) = list.as_list() else {
        return;
    };
    if items.is_empty() {
        d.push(Diagnostic::attr_error(
            name,
            "Empty List",
            format!("`{name}` needs at least one entry; leave it out for the default."),
        ));
    }
    let mut seen = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(text) = item.as_str() else { continue };
        let path = AttrPath::attr(name).then_index(i);
        if let Some((summary, detail)) = check(text) {
            d.push(Diagnostic::error(summary, detail).at(path));
        } else if seen.contains(&text) {
            d.push(
                Diagnostic::error(
                    "Duplicate Entry",
                    format!("{text:?} appears twice in `{name}`."),
                )
                .at(path),
            );
        }
        seen.push(text);
    }
}

/// Two spellings of one platform (`linux/amd64` and `linux/x86_64`, `linux/arm64` and
/// `linux/arm64/v8`): both would build the same image, so the second is refused naming the
/// first. The same text twice is `check_list`'s "Duplicate Entry" already.
fn check_platform_aliases(d: &mut Diagnostics, platforms: &Value) {
    let mut seen: Vec<(usize, &str, Platform)> = Vec::new();
    for (i, item) in platforms.as_list().unwrap_or_default().iter().enumerate() {
        let Some((text, platform)) = item
            .as_str()
            .and_then(|t| Platform::parse(t).ok().map(|p| (t, p.normalized())))
        else {
            continue;
        };
        let earlier = seen.iter().find(|(_, t, p)| *p == platform && *t != text);
        if let Some((j, first, _)) = earlier {
            d.push(
                Diagnostic::error(
                    "Duplicate Platform",
                    format!(
                        "{text:?} and {first:?} (platforms[{j}]) are the same platform, \
                         {platform}; keep one of them in `{}`.",
                        attr::platforms
                    ),
                )
                .at(AttrPath::attr(attr::platforms).then_index(i)),
            );
        } else {
            seen.push((i, text, platform));
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// The publish a wholly known planned value asks for, or the diagnostics
/// that say why it cannot be made (which validate would have reported).
pub fn publish_request(planned: &Value) -> Result<PublishRequest, Diagnostics> {
    let mut d = validate(planned);
    if d.has_errors() {
        return Err(d);
    }
    let m = BuildModel::from_value(planned);
    let text = |v: &Value| v.as_str().map(str::to_string);
    let (Some(context), Some(repo_text)) = (text(&m.context), text(&m.repository)) else {
        d.push(Diagnostic::internal(
            "apply got a plan without a known context or repository",
        ));
        return Err(d);
    };
    let repository = match parse_repository(&repo_text) {
        Ok((registry, repository)) => Reference {
            registry,
            repository,
            tag: None,
            digest: None,
        },
        Err(e) => {
            d.push(Diagnostic::attr_error(
                attr::repository,
                "Invalid Repository",
                e.to_string(),
            ));
            return Err(d);
        }
    };
    let evidence = match super::evidence::request(planned) {
        Ok(e) => e,
        Err(e) => {
            d.extend(e);
            return Err(d);
        }
    };
    let secrets = match super::secrets::resolve(planned) {
        Ok(s) => s,
        Err(e) => {
            d.extend(e);
            return Err(d);
        }
    };
    Ok(PublishRequest {
        context: PathBuf::from(context),
        dockerfile: PathBuf::from(text(&m.dockerfile).unwrap_or_else(|| DEFAULT_DOCKERFILE.into())),
        repository,
        tags: strings(&m.tags),
        // validate above proved every entry parses.
        platforms: strings(&m.platforms)
            .iter()
            .filter_map(|p| Platform::parse(p).ok())
            .collect(),
        build_args: m.build_args.to_string_map(),
        target: text(&m.target).filter(|t| !t.is_empty()),
        labels: m.labels.to_string_map(),
        secrets,
        no_cache: m.no_cache.as_bool().unwrap_or(false),
        format: text(&m.manifest_format)
            .as_deref()
            .and_then(format)
            .unwrap_or(Format::Docker),
        builder: text(&m.builder)
            .as_deref()
            .and_then(builder)
            .unwrap_or_default(),
        // validate above proved every entry parses.
        cache_from: strings(&m.cache_from)
            .iter()
            .filter_map(|r| Reference::parse(r).ok())
            .collect(),
        cache_inline: m.cache_inline.as_bool().unwrap_or(false),
        evidence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&'static str, Value)]) -> Value {
        let ctx = std::env::temp_dir().join(format!("stevedore-inputs-{}", std::process::id()));
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), "FROM scratch\n").unwrap();
        let mut v = Value::object([
            (attr::context, Value::string(ctx.display().to_string())),
            (attr::repository, Value::string("127.0.0.1:5000/web")),
        ]);
        for (k, val) in pairs {
            v.set(k, val.clone());
        }
        v
    }

    fn blamed(v: &Value) -> Vec<String> {
        validate(v)
            .0
            .iter()
            .map(|d| format!("{:?}", d.attribute.as_ref().map(|a| a.steps().to_vec())))
            .collect()
    }

    #[test]
    fn validate_blames_the_attribute_at_fault() {
        assert!(validate(&config(&[])).is_empty());
        let cases: [(&str, Value, &str); 8] = [
            (
                attr::context,
                Value::string("/nonexistent/ctx"),
                attr::context,
            ),
            (
                attr::dockerfile,
                Value::string("../Dockerfile"),
                attr::dockerfile,
            ),
            (
                attr::dockerfile,
                Value::string("/etc/passwd"),
                attr::dockerfile,
            ),
            (
                attr::repository,
                Value::string("127.0.0.1:5000/web:v1"),
                attr::repository,
            ),
            (
                attr::platforms,
                Value::string_list(["linux/amd64", "linux/amd46"]),
                attr::platforms,
            ),
            (attr::tags, Value::string_list(["ok", "-bad"]), attr::tags),
            (
                attr::manifest_format,
                Value::string("v1"),
                attr::manifest_format,
            ),
            (attr::builder, Value::string("kaniko"), attr::builder),
        ];
        for (name, value, attr) in cases {
            let got = blamed(&config(&[(name, value)]));
            assert_eq!(got.len(), 1, "{name}: {got:?}");
            assert!(got[0].contains(attr), "{name}: {got:?}");
        }
        let got = validate(&config(&[(
            attr::platforms,
            Value::string_list(["linux/amd64", "linux/amd46"]),
        )]));
        assert_eq!(
            got.0[0].attribute,
            Some(AttrPath::attr(attr::platforms).then_index(1))
        );
    }

    #[test]
    fn two_spellings_of_one_platform_are_refused_naming_both() {
        for (first, second) in [
            ("linux/amd64", "linux/x86_64"),
            ("linux/arm64", "linux/aarch64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/arm/v7", "linux/armhf"),
            ("linux/amd64", "Linux/AMD64"),
        ] {
            let list = Value::string_list(["linux/386", first, second]);
            let d = validate(&config(&[(attr::platforms, list)]));
            assert_eq!(d.0.len(), 1, "{first} {second}: {d:?}");
            assert_eq!(
                d.0[0].attribute,
                Some(AttrPath::attr(attr::platforms).then_index(2))
            );
            assert_eq!(d.0[0].summary, "Duplicate Platform");
            let detail = &d.0[0].detail;
            assert!(detail.contains(&format!("{first:?}")), "{detail}");
            assert!(detail.contains(&format!("{second:?}")), "{detail}");
        }
        let distinct =
            Value::string_list(["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm/v6"]);
        assert!(validate(&config(&[(attr::platforms, distinct)])).is_empty());
        // The same text twice stays one "Duplicate Entry".
        let same = Value::string_list(["linux/amd64", "linux/amd64"]);
        let d = validate(&config(&[(attr::platforms, same)]));
        assert_eq!(d.0.len(), 1, "{d:?}");
        assert_eq!(d.0[0].summary, "Duplicate Entry");
    }

    #[test]
    fn validate_skips_unknown_values() {
        for name in [
            attr::context,
            attr::dockerfile,
            attr::repository,
            attr::platforms,
            attr::tags,
            attr::manifest_format,
        ] {
            assert!(
                validate(&config(&[(name, Value::Unknown)])).is_empty(),
                "{name}"
            );
        }
        let partly = Value::List(vec![Value::string("linux/amd64"), Value::Unknown]);
        assert!(validate(&config(&[(attr::platforms, partly)])).is_empty());
    }

    #[test]
    fn tags() {
        for ok in ["latest", "v1.2.3", "_x", "A-b_c.d"] {
            assert!(valid_tag(ok), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", &"x".repeat(129)] {
            assert!(!valid_tag(bad), "{bad}");
        }
    }
}
