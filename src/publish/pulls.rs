//! The registries a build pulls from, so the daemon gets the provider's
//! credentials for exactly those hosts (BuildKit's auth session and the
//! classic builder's `X-Registry-Config` both take them by host): every
//! image the Dockerfile names in `FROM`, `COPY --from=` or
//! `RUN --mount=…,from=` that is not one of its own stages, plus
//! `cache_from`. Without this a `FROM` image on a private registry is
//! pulled anonymously and the build fails, although the provider knows the
//! credentials.
//!
//! Written by hand: no maintained crate parses Dockerfiles into
//! instructions; this reads only the image names, after `ARG` defaults and
//! build args are substituted as the builders do (`$X`, `${X}`,
//! `${X:-default}`). A name that still holds a variable is skipped: the
//! daemon then pulls that one anonymously, as before.

use std::collections::{BTreeMap, BTreeSet};

use super::PublishRequest;
use crate::docker::{Daemon, RegistryCredentials};
use crate::oci::Reference;
use crate::registry::RegistryClient;

/// The API hosts of every registry image `dockerfile` pulls, sorted.
pub fn pulled_hosts(dockerfile: &str, build_args: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    let mut stages: BTreeSet<String> = BTreeSet::new();
    let mut images: Vec<String> = Vec::new();
    let mut seen_from = false;
    for line in instructions(dockerfile) {
        let mut words = line.split_whitespace();
        let Some(keyword) = words.next() else {
            continue;
        };
        let words: Vec<&str> = words.collect();
        match keyword.to_ascii_uppercase().as_str() {
            // Only ARGs before the first FROM are in scope of FROM lines.
            "ARG" if !seen_from => {
                for word in words {
                    let (name, default) = word.split_once('=').unwrap_or((word, ""));
                    let value = build_args.get(name).cloned().unwrap_or_else(|| {
                        substitute(default.trim_matches('"'), &args).unwrap_or_default()
                    });
                    args.insert(name.to_string(), value);
                }
            }
            "FROM" => {
                seen_from = true;
                let operands: Vec<&str> = words
                    .iter()
                    .copied()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                if let Some(image) = operands.first() {
                    if let Some(image) = substitute(image, &args) {
                        if !stages.contains(&image.to_ascii_lowercase()) {
                            images.push(image);
                        }
                    }
                }
                if let [_, as_word, name, ..] = operands.as_slice() {
                    if as_word.eq_ignore_ascii_case("as") {
                        stages.insert(name.to_ascii_lowercase());
                    }
                }
            }
            "COPY" | "RUN" => {
                for word in words.iter().take_while(|w| w.starts_with("--")) {
                    if let Some(from) = from_flag(word) {
                        let lower = from.to_ascii_lowercase();
                        if !stages.contains(&lower) && from.parse::<u32>().is_err() {
                            images.push(from.to_string());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    images
        .iter()
        .filter(|image| !image.eq_ignore_ascii_case("scratch"))
        .filter_map(|image| Reference::parse(image).ok())
        .map(|r| r.api_host().to_string())
        .collect()
}

/// The provider's credentials for every registry the build pulls from (its
/// `FROM` images and `cache_from`), for the daemon to pull with. A registry
/// whose credentials cannot be had is left out (the daemon then pulls
/// anonymously), and so is a loopback registry for a daemon that does not
/// share this machine's loopback: that address names another machine there.
pub(super) async fn build_credentials(
    registry: &RegistryClient,
    daemon: &Daemon,
    req: &PublishRequest,
) -> RegistryCredentials {
    let path = req.context.join(&req.dockerfile);
    let text = match read_dockerfile(&path) {
        Ok(text) => text,
        Err(e) => {
            tracing::info!(path = %path.display(), error = %e, "the Dockerfile was not read for its base images");
            String::new()
        }
    };
    let mut hosts = pulled_hosts(&text, &req.build_args);
    hosts.extend(req.cache_from.iter().map(|r| r.api_host().to_string()));
    let local = super::daemon_push::daemon_is_local(&daemon.endpoint);
    let mut out = std::collections::HashMap::new();
    for host in hosts {
        if !local && crate::oci::is_loopback_host(&host) {
            continue;
        }
        if let Some(creds) = super::daemon_push::docker_credentials(registry, &host).await {
            out.insert(host, creds);
        }
    }
    RegistryCredentials(out)
}

/// A Dockerfile is a few KiB; more than this is not read for base images.
const MAX_DOCKERFILE: u64 = 1024 * 1024;

fn read_dockerfile(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_DOCKERFILE)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// The image of `--from=X` (COPY) or `--mount=…,from=X,…` (RUN).
fn from_flag(word: &str) -> Option<&str> {
    if let Some(from) = word.strip_prefix("--from=") {
        return Some(from);
    }
    word.strip_prefix("--mount=")?
        .split(',')
        .find_map(|kv| kv.strip_prefix("from="))
}

/// The Dockerfile's instructions, one string each: comments dropped and
/// lines ending in `\` joined to the next.
fn instructions(dockerfile: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                if !current.trim().is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                current.clear();
            }
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

/// `text` with `$X`, `${X}` and `${X:-default}` replaced from `args`; `None`
/// when a variable has no value, so no half-substituted name is used.
fn substitute(text: &str, args: &BTreeMap<String, String>) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, default, used) = if let Some(inner) = after.strip_prefix('{') {
            let end = inner.find('}')?;
            let body = &inner[..end];
            match body.split_once(":-") {
                Some((name, default)) => (name, Some(default), end + 2),
                None => (body, None, end + 2),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], None, end)
        };
        match args.get(name).filter(|v| !v.is_empty()) {
            Some(value) => out.push_str(value),
            None => out.push_str(default?),
        }
        rest = &after[used..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(dockerfile: &str, args: &[(&str, &str)]) -> Vec<String> {
        let args = args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        pulled_hosts(dockerfile, &args).into_iter().collect()
    }

    #[test]
    fn every_pulled_image_names_its_registry_and_stages_are_not_pulled() {
        let dockerfile = "\
# syntax comment
ARG BASE=registry.example.com:5000/base:1
FROM --platform=$BUILDPLATFORM ${BASE} AS build
RUN --mount=type=cache,target=/c,from=cache.example.com/tools:2 true
COPY --from=build /a /a
FROM scratch
COPY --from=other.example.com/x:1 \\
     /b /b
COPY --from=0 /a /c
FROM build
";
        assert_eq!(
            hosts(dockerfile, &[]),
            [
                "cache.example.com",
                "other.example.com",
                "registry.example.com:5000"
            ]
        );
    }

    #[test]
    fn build_args_override_defaults_and_unknown_variables_are_skipped() {
        let dockerfile = "ARG REG=a.example.com\nFROM $REG/app:1\nFROM ${NOPE}/x\nFROM ${NOPE:-b.example.com}/y\n";
        assert_eq!(
            hosts(dockerfile, &[("REG", "127.0.0.1:5000")]),
            ["127.0.0.1:5000", "b.example.com"]
        );
        assert_eq!(hosts(dockerfile, &[]), ["a.example.com", "b.example.com"]);
    }

    #[test]
    fn docker_hub_images_are_its_api_host() {
        assert_eq!(hosts("FROM alpine:3\n", &[]), ["registry-1.docker.io"]);
        assert!(hosts("from scratch\n", &[]).is_empty());
    }
}
