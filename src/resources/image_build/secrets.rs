//! The three ways to hand a build a BuildKit secret, and what each means to
//! Terraform: `secrets` (values in the configuration: sensitive, but in
//! Terraform 1.0's state), `secret_env` (the name of an environment variable
//! of the provider process) and `secret_files` (a file path). Only ids and
//! sources ever reach `context_hash`: a changed value alone plans nothing.

use std::collections::BTreeMap;

use super::{attr, BuildModel};
use crate::diag::{Diagnostic, Diagnostics};
use crate::docker::SecretValue;
use crate::value::{AttrPath, Value};

/// BuildKit refuses secrets larger than this (its session's limit).
pub const MAX_SECRET_BYTES: u64 = 500 * 1024;

/// The secret attributes, in the order their ids are checked.
pub const SOURCES: [&str; 3] = [attr::secrets, attr::secret_env, attr::secret_files];

/// Static checks of known values: ids valid and used once across the three
/// maps; the variables and files exist (they are read at apply).
pub fn validate(config: &Value, d: &mut Diagnostics) {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for name in SOURCES {
        let Value::Map(entries) = config.get(name) else {
            continue;
        };
        for (id, source) in entries {
            let at = AttrPath::attr(name).then_key(id);
            if !valid_id(id) {
                d.push(
                    Diagnostic::error(
                        "Invalid Secret Id",
                        format!(
                            "{name} has the id {id:?}; secret ids are 1 to 64 letters, digits, \
                             `_`, `-` and `.`, as `RUN --mount=type=secret,id=...` names them."
                        ),
                    )
                    .at(at.clone()),
                );
            }
            if let Some(first) = seen.insert(id.clone(), name) {
                d.push(
                    Diagnostic::error(
                        "Secret Given Twice",
                        format!(
                            "the secret id {id:?} is set in both {first} and {name}; keep one."
                        ),
                    )
                    .at(at.clone()),
                );
            }
            let Some(source) = source.as_str() else {
                continue;
            };
            if let Err(why) = check_source(name, source) {
                d.push(Diagnostic::error("Secret Not Available", why).at(at));
            }
        }
    }
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

fn check_source(name: &str, source: &str) -> Result<(), String> {
    match name {
        attr::secret_env => match std::env::var_os(source) {
            Some(_) => Ok(()),
            None => Err(format!(
                "secret_env names the environment variable {source:?}, which the provider process \
                 does not have; export it where terraform runs (the provider inherits terraform's \
                 environment)."
            )),
        },
        attr::secret_files => match std::fs::metadata(source) {
            Ok(m) if !m.is_file() => Err(format!(
                "secret_files names {source:?}, which is not a file."
            )),
            Ok(m) if m.len() > MAX_SECRET_BYTES => Err(format!(
                "secret_files names {source:?}, which has {} bytes; BuildKit takes secrets of at \
                 most {MAX_SECRET_BYTES}.",
                m.len()
            )),
            Ok(_) => Ok(()),
            Err(e) => Err(format!(
                "secret_files names {source:?}, which cannot be read ({e}); relative paths are \
                 from the directory terraform runs in."
            )),
        },
        _ => Ok(()),
    }
}

/// `secret:<id>` → where it comes from, for `context_hash`: never a value
/// nor a hash of one.
pub fn hash_inputs(planned: &Value, inputs: &mut BTreeMap<String, String>) {
    let planned = BuildModel::from_value(planned);
    for (id, _) in planned.secrets.to_string_map() {
        inputs.insert(format!("secret:{id}"), attr::secrets.into());
    }
    for (id, var) in planned.secret_env.to_string_map() {
        inputs.insert(format!("secret:{id}"), format!("env:{var}"));
    }
    for (id, path) in planned.secret_files.to_string_map() {
        inputs.insert(format!("secret:{id}"), format!("file:{path}"));
    }
}

/// Every secret's value, read now (at apply): from the configuration, the
/// provider's environment, or the file. Errors name the attribute and the
/// id, never a value.
pub fn resolve(planned: &Value) -> Result<BTreeMap<String, SecretValue>, Diagnostics> {
    let planned = BuildModel::from_value(planned);
    let mut d = Diagnostics::new();
    let mut out = BTreeMap::new();
    for (id, value) in planned.secrets.to_string_map() {
        out.insert(id, SecretValue(value));
    }
    for (id, var) in planned.secret_env.to_string_map() {
        match std::env::var(&var) {
            Ok(value) => {
                out.insert(id, SecretValue(value));
            }
            Err(_) => d.push(
                Diagnostic::error(
                    "Secret Not Available",
                    format!(
                        "secret_env[{id:?}] names the environment variable {var:?}, which the \
                         provider process does not have (or is not UTF-8); export it where \
                         terraform runs."
                    ),
                )
                .at(AttrPath::attr(attr::secret_env).then_key(&id)),
            ),
        }
    }
    for (id, path) in planned.secret_files.to_string_map() {
        match read_secret_file(&path) {
            Ok(value) => {
                out.insert(id, SecretValue(value));
            }
            Err(why) => d.push(
                Diagnostic::error(
                    "Secret Not Available",
                    format!("secret_files[{id:?}]: {why}"),
                )
                .at(AttrPath::attr(attr::secret_files).then_key(&id)),
            ),
        }
    }
    if d.has_errors() {
        Err(d)
    } else {
        Ok(out)
    }
}

fn read_secret_file(path: &str) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {path:?}: {e}"))?;
    let mut value = String::new();
    file.take(MAX_SECRET_BYTES + 1)
        .read_to_string(&mut value)
        .map_err(|e| format!("cannot read {path:?} as UTF-8 text: {e}"))?;
    if value.len() as u64 > MAX_SECRET_BYTES {
        return Err(format!(
            "{path:?} is larger than the {MAX_SECRET_BYTES} bytes BuildKit takes"
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&'static str, &[(&str, &str)])]) -> Value {
        Value::object(
            pairs
                .iter()
                .map(|(attr, entries)| (*attr, Value::string_map(entries.iter().copied()))),
        )
    }

    #[test]
    fn only_ids_and_sources_enter_the_hash() {
        let mut inputs = BTreeMap::new();
        let planned = cfg(&[
            (attr::secrets, &[("npm", "hunter2")]),
            (attr::secret_env, &[("gh", "GH_TOKEN")]),
            (attr::secret_files, &[("pip", "./pip.conf")]),
        ]);
        hash_inputs(&planned, &mut inputs);
        assert_eq!(
            inputs,
            BTreeMap::from([
                ("secret:gh".to_string(), "env:GH_TOKEN".to_string()),
                ("secret:npm".to_string(), attr::secrets.to_string()),
                ("secret:pip".to_string(), "file:./pip.conf".to_string()),
            ])
        );
        let mut other = BTreeMap::new();
        hash_inputs(
            &cfg(&[(attr::secrets, &[("npm", "another value")])]),
            &mut other,
        );
        assert_eq!(
            other["secret:npm"],
            attr::secrets,
            "a new value alone changes nothing"
        );
    }

    #[test]
    fn values_come_from_the_environment_and_files_at_apply() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tok");
        std::fs::write(&file, "from-a-file").unwrap();
        std::env::set_var("STEVEDORE_TEST_SECRET_7731", "from-the-env");
        let planned = cfg(&[
            (attr::secret_env, &[("a", "STEVEDORE_TEST_SECRET_7731")]),
            (attr::secret_files, &[("b", file.to_str().unwrap())]),
        ]);
        let got = resolve(&planned).unwrap();
        assert_eq!(got["a"].0, "from-the-env");
        assert_eq!(got["b"].0, "from-a-file");
    }

    #[test]
    fn missing_sources_and_reused_ids_are_attributed_without_values() {
        let planned = cfg(&[
            (attr::secrets, &[("npm", "hunter2")]),
            (attr::secret_env, &[("npm", "STEVEDORE_TEST_UNSET_9912")]),
            (attr::secret_files, &[("bad id!", "/nonexistent/tok")]),
        ]);
        let mut d = Diagnostics::new();
        validate(&planned, &mut d);
        let shown: Vec<(String, String)> =
            d.0.iter()
                .map(|x| (x.attribute.as_ref().unwrap().to_string(), x.summary.clone()))
                .collect();
        assert!(
            shown.contains(&("secret_env[\"npm\"]".into(), "Secret Given Twice".into())),
            "{shown:?}"
        );
        assert!(
            shown.contains(&("secret_env[\"npm\"]".into(), "Secret Not Available".into())),
            "{shown:?}"
        );
        assert!(
            shown.contains(&(
                "secret_files[\"bad id!\"]".into(),
                "Invalid Secret Id".into()
            )),
            "{shown:?}"
        );
        assert!(
            shown.contains(&(
                "secret_files[\"bad id!\"]".into(),
                "Secret Not Available".into()
            )),
            "{shown:?}"
        );
        assert!(!format!("{:?}", d.0).contains("hunter2"));
        let err = resolve(&planned).unwrap_err();
        assert!(err.has_errors());
    }
}
