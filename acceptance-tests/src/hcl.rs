//! Pieces of Terraform configuration every test needs.

use crate::cliconfig::PROVIDER_VERSION;
use crate::registry::Registry;

/// `terraform { required_providers { stevedore = ... } }` pinned to the mirrored version.
pub fn terraform_block() -> String {
    format!(
        r#"terraform {{
  required_providers {{
    stevedore = {{
      source  = "stevedore/stevedore"
      version = "{PROVIDER_VERSION}"
    }}
  }}
}}
"#
    )
}

/// A `provider "stevedore"` block with one `registry_auth` for `registry` using `password`
/// (its real one, or a wrong one to test rejection). Empty for a registry without auth.
pub fn provider_block(registry: &Registry, password: Option<&str>) -> String {
    let Some(creds) = &registry.credentials else {
        return String::new();
    };
    format!(
        r#"provider "stevedore" {{
  registry_auth {{
    address  = {address}
    username = {username}
    password = {password}
  }}
}}
"#,
        address = quote(&registry.address),
        username = quote(&creds.username),
        password = quote(password.unwrap_or(&creds.password)),
    )
}

/// `resource "stevedore_ecs_redeploy" "web"` for `cluster`/`service`; `body` adds
/// attribute lines.
pub fn ecs_redeploy_block(cluster: &str, service: &str, body: &str) -> String {
    format!(
        "\nresource \"stevedore_ecs_redeploy\" \"web\" {{\n  cluster = {}\n  service = {}\n{body}}}\n",
        quote(cluster),
        quote(service),
    )
}

/// An HCL string literal (JSON string syntax, with template sequences escaped).
pub fn quote(s: &str) -> String {
    serde_json::to_string(s)
        .expect("a string always serializes")
        .replace("${", "$${")
        .replace("%{", "%%{")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_templates_and_quotes() {
        assert_eq!(quote(r#"a"${b}"#), r#""a\"$${b}""#);
    }
}
