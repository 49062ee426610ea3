//! Image references in the Docker grammar (`[host[:port]/]path[:tag][@digest]`),
//! parsed once into a typed value so the client never re-parses strings.

use std::fmt;
use std::net::IpAddr;
use std::sync::LazyLock;

use regex::Regex;

pub use super::digest::is_valid_digest;
use super::digest::Digest;

/// The registry Docker assumes when a reference names none.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub actually serves the distribution API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

const MAX_NAME_LEN: usize = 255;

// The patterns below are literals exercised by the unit tests, so compiling
// them cannot fail at run time.

static COMPONENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$").unwrap_or_else(|_| unreachable!())
});
static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\w[\w.-]{0,127}$").unwrap_or_else(|_| unreachable!()));
// Hostname labels or an IPv4 address, or a bracketed IPv6 address, then an optional port.
static HOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])",
        r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*",
        r"|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$",
    ))
    .unwrap_or_else(|_| unreachable!())
});

/// Why a reference string was rejected. Messages say what is wrong and what a
/// valid value looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("image reference is empty; expected something like \"nginx:1.27\" or \"127.0.0.1:5000/web:latest\"")]
    Empty,
    #[error(
        "invalid registry host {host:?} in {input:?}; expected host[:port], e.g. \"ghcr.io\" or \
         \"127.0.0.1:5000\""
    )]
    InvalidHost { input: String, host: String },
    #[error(
        "invalid repository name {repository:?} in {input:?}: {reason}; expected lowercase path \
         components like \"library/nginx\" (letters, digits and single . _ __ or - separators)"
    )]
    InvalidRepository {
        input: String,
        repository: String,
        reason: String,
    },
    #[error(
        "invalid tag {tag:?} in {input:?}; a tag is 1 to 128 characters of letters, digits, _ . \
         and -, not starting with . or -"
    )]
    InvalidTag { input: String, tag: String },
    #[error(
        "invalid digest {digest:?} in {input:?}; expected algorithm:hex, e.g. \"sha256:\" followed \
         by 64 lowercase hex digits"
    )]
    InvalidDigest { input: String, digest: String },
    #[error(
        "{input:?} names a tag or digest, but a repository without one is expected here, e.g. \
         \"127.0.0.1:5000/web\""
    )]
    UnexpectedTagOrDigest { input: String },
}

/// A parsed image reference.
///
/// `registry` is the canonical display form (`docker.io` for Docker Hub);
/// use [`Reference::api_host`] for the host requests go to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference, applying Docker's defaults: registry `docker.io`,
    /// `library/` for single-component Docker Hub names, tag `latest` when
    /// neither tag nor digest is given.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (name_and_tag, digest) = match trimmed.split_once('@') {
            Some((left, digest)) => (left, Some(parse_digest(input, digest)?)),
            None => (trimmed, None),
        };
        let (name, tag) = split_tag(name_and_tag);
        if let Some(tag) = tag {
            if !TAG.is_match(tag) {
                return Err(ReferenceError::InvalidTag {
                    input: input.into(),
                    tag: tag.into(),
                });
            }
        }
        let (registry, repository) = split_name(input, name)?;
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_string()),
            (None, None) => Some("latest".to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// A reference to another manifest in the same repository, by digest.
    pub fn with_digest(&self, digest: &Digest) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.clone()),
        }
    }

    /// `registry/repository`, without tag or digest.
    pub fn repository_reference(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host[:port] requests are sent to (Docker Hub's API lives elsewhere
    /// than its display name).
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Maps a registry's display name to the host serving its API.
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        registry
    }
}

/// Parses a repository (no tag, no digest) into `(registry, repository)` with
/// the same defaults as [`Reference::parse`].
pub fn parse_repository(input: &str) -> Result<(String, String), ReferenceError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(ReferenceError::Empty);
    }
    if trimmed.contains('@') || split_tag(trimmed).1.is_some() {
        return Err(ReferenceError::UnexpectedTagOrDigest {
            input: input.into(),
        });
    }
    split_name(input, trimmed)
}

/// True for 127.0.0.0/8, `localhost` and `::1`, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim();
    let bare = if let Some(rest) = host.strip_prefix('[') {
        // "[::1]:5000" or "[::1]"
        rest.split(']').next().unwrap_or(rest)
    } else if host.parse::<IpAddr>().is_ok() {
        // A bare IPv6 address contains colons that are not a port separator.
        host
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Splits `name[:tag]`; a colon before the last `/` is a port, not a tag.
fn split_tag(name_and_tag: &str) -> (&str, Option<&str>) {
    let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
    match name_and_tag[last_slash..].rfind(':') {
        Some(i) => {
            let at = last_slash + i;
            (&name_and_tag[..at], Some(&name_and_tag[at + 1..]))
        }
        None => (name_and_tag, None),
    }
}

/// Splits a name into registry and repository, as Docker does: the first
/// component is a host only if it contains `.` or `:`, is `localhost`, or
/// has uppercase letters (which repositories cannot).
fn split_name(input: &str, name: &str) -> Result<(String, String), ReferenceError> {
    let (registry, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            if !HOST.is_match(first) {
                return Err(ReferenceError::InvalidHost {
                    input: input.into(),
                    host: first.into(),
                });
            }
            (canonical_registry(first), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    let repository = if registry == DOCKER_HUB && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    validate_repository(input, &registry, &repository)?;
    Ok((registry, repository))
}

fn canonical_registry(host: &str) -> String {
    let lower = host.to_ascii_lowercase();
    match lower.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => DOCKER_HUB.to_string(),
        _ => lower,
    }
}

fn validate_repository(
    input: &str,
    registry: &str,
    repository: &str,
) -> Result<(), ReferenceError> {
    let fail = |reason: &str| ReferenceError::InvalidRepository {
        input: input.into(),
        repository: repository.into(),
        reason: reason.into(),
    };
    if repository.is_empty() {
        return Err(fail("the repository name is empty"));
    }
    if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
        return Err(fail("the name is longer than 255 characters"));
    }
    if repository.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(fail("repository names must be lowercase"));
    }
    for component in repository.split('/') {
        if component.is_empty() {
            return Err(fail("it has an empty path component"));
        }
        if !COMPONENT.is_match(component) {
            return Err(fail(&format!(
                "path component {component:?} is not allowed"
            )));
        }
    }
    Ok(())
}

fn parse_digest(input: &str, digest: &str) -> Result<Digest, ReferenceError> {
    Digest::parse(digest).map_err(|_| ReferenceError::InvalidDigest {
        input: input.into(),
        digest: digest.into(),
    })
}

#[cfg(test)]
#[path = "reference_tests.rs"]
mod tests;
