//! The go-plugin handshake: the magic cookie, protocol version negotiation,
//! the private unix socket, and the one line printed on stdout.

use std::path::PathBuf;

pub const COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
pub const COOKIE_VALUE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
pub const PROTOCOL_VERSION: u32 = 6;
/// The provider address used for reattach (debug) mode.
pub const PROVIDER_ADDRESS: &str = "registry.terraform.io/stevedore/stevedore";

pub const NOT_A_COMMAND: &str =
    "This binary is a plugin. These are not meant to be executed directly.\n\
Please execute the program that consumes these plugins, which will load any\n\
plugins automatically. To debug the provider with Terraform, run it with --debug.";

/// True when Terraform (or another go-plugin host) started us.
pub fn cookie_ok(value: Option<&str>) -> bool {
    value == Some(COOKIE_VALUE)
}

/// Picks the protocol version from PLUGIN_PROTOCOL_VERSIONS. We speak only 6;
/// go-plugin falls back to its lowest version when nothing matches, which is
/// 6 here too, so the answer is always 6 and a mismatch is only logged.
pub fn negotiate(offered: Option<&str>) -> u32 {
    let offered: Vec<u32> = offered
        .unwrap_or("")
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    if !offered.is_empty() && !offered.contains(&PROTOCOL_VERSION) {
        tracing::warn!(
            ?offered,
            "host does not offer plugin protocol 6; answering 6 anyway"
        );
    }
    PROTOCOL_VERSION
}

/// `CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT`, exactly six fields.
pub fn line(version: u32, socket: &std::path::Path, cert_field: &str) -> String {
    format!("1|{version}|unix|{}|grpc|{cert_field}", socket.display())
}

/// A fresh private directory (mode 0700) for the socket, under
/// PLUGIN_UNIX_SOCKET_DIR when the host sets it.
pub fn socket_dir(base: Option<PathBuf>) -> std::io::Result<tempfile::TempDir> {
    let mut b = tempfile::Builder::new();
    b.prefix("plugin");
    let dir = match base {
        Some(base) => b.tempdir_in(base)?,
        None => b.tempdir()?,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(dir)
}

/// What `--debug` prints so Terraform can attach to a running provider.
pub fn reattach_json(socket: &std::path::Path) -> String {
    serde_json::json!({
        PROVIDER_ADDRESS: {
            "Protocol": "grpc",
            "ProtocolVersion": PROTOCOL_VERSION,
            "Pid": std::process::id(),
            "Test": true,
            "Addr": {"Network": "unix", "String": socket.display().to_string()},
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_line_has_six_fields() {
        let l = line(6, std::path::Path::new("/tmp/p/plugin.sock"), "");
        assert_eq!(l, "1|6|unix|/tmp/p/plugin.sock|grpc|");
        assert_eq!(l.split('|').count(), 6);
    }

    #[test]
    fn negotiation_always_answers_six() {
        for offered in [
            Some("5,6"),
            Some("6,5"),
            Some("6"),
            None,
            Some(""),
            Some("4,5"),
        ] {
            assert_eq!(negotiate(offered), 6, "{offered:?}");
        }
    }

    #[test]
    fn cookie_must_match_exactly() {
        assert!(cookie_ok(Some(COOKIE_VALUE)));
        assert!(!cookie_ok(None));
        assert!(!cookie_ok(Some("nope")));
    }
}
