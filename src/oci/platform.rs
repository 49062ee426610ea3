//! Platforms (`os/arch[/variant]`) as users write them and as registries
//! record them, with the normalisation containerd applies when it picks a
//! manifest, so `linux/arm64` matches an entry saying `linux/arm64/v8`.

use std::fmt;

/// Operating systems Go knows (GOOS); images use the same names.
pub const KNOWN_OS: &[&str] = &[
    "linux",
    "windows",
    "darwin",
    "freebsd",
    "netbsd",
    "openbsd",
    "dragonfly",
    "illumos",
    "solaris",
    "aix",
    "android",
    "ios",
    "plan9",
    "js",
    "wasip1",
    "zos",
    "hurd",
];

/// Architectures Go knows (GOARCH), most common first because the error
/// message lists them in this order.
pub const KNOWN_ARCH: &[&str] = &[
    "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le", "mips64", "mipsle",
    "mips", "ppc64", "loong64", "wasm", "ppc", "riscv", "sparc64",
];

/// Why a platform string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    #[error(
        "invalid platform {input:?}; expected os/arch or os/arch/variant, e.g. \"linux/amd64\" or \
         \"linux/arm/v7\""
    )]
    Shape { input: String },
    #[error("unknown operating system {os:?}; expected one of {}", KNOWN_OS.join(", "))]
    UnknownOs { input: String, os: String },
    #[error("unknown architecture {arch:?}; expected one of {}", KNOWN_ARCH.join(", "))]
    UnknownArch { input: String, arch: String },
}

/// A platform. Values from registries are kept as written (see
/// [`Platform::new`]); user input is validated by [`Platform::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// `linux/amd64`, the platform a build gets when none is asked for.
impl Default for Platform {
    fn default() -> Platform {
        Platform::new("linux", "amd64", None)
    }
}

impl Platform {
    /// A platform as a registry or config blob states it, unvalidated.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
        }
    }

    /// Parses and validates `os/arch[/variant]` against Go's lists, accepting
    /// common aliases (`x86_64`, `aarch64`, `macos`).
    pub fn parse(input: &str) -> Result<Platform, PlatformError> {
        let lower = input.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(*variant)),
            _ => {
                return Err(PlatformError::Shape {
                    input: input.into(),
                })
            }
        };
        if os.is_empty() || arch.is_empty() || variant.is_some_and(str::is_empty) {
            return Err(PlatformError::Shape {
                input: input.into(),
            });
        }
        let os = normalize_os(os);
        if !KNOWN_OS.contains(&os) {
            return Err(PlatformError::UnknownOs {
                input: input.into(),
                os: os.into(),
            });
        }
        let (arch, alias_variant) = normalize_arch(arch);
        if !KNOWN_ARCH.contains(&arch) {
            return Err(PlatformError::UnknownArch {
                input: input.into(),
                arch: arch.into(),
            });
        }
        Ok(Platform::new(os, arch, variant.or(alias_variant)))
    }

    /// The platform with aliases resolved and implied variants made explicit:
    /// arm64 means v8, arm without a variant means v7, amd64 drops `v1`.
    pub fn normalized(&self) -> Platform {
        let os = self.os.to_ascii_lowercase();
        let os = normalize_os(&os);
        let arch = self.architecture.to_ascii_lowercase();
        let (arch, alias_variant) = normalize_arch(&arch);
        let variant = self.variant.as_deref().map(str::to_ascii_lowercase);
        let variant = variant.or(alias_variant.map(str::to_string));
        let variant = match (arch, variant.as_deref()) {
            ("arm64", None | Some("8") | Some("v8")) => Some("v8".to_string()),
            ("arm", None | Some("7")) => Some("v7".to_string()),
            ("arm", Some("5")) => Some("v5".to_string()),
            ("arm", Some("6")) => Some("v6".to_string()),
            ("amd64", Some("v1")) => None,
            (_, v) => v.map(str::to_string),
        };
        Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant,
        }
    }

    /// True if both name the same platform after normalisation.
    pub fn matches(&self, other: &Platform) -> bool {
        self.normalized() == other.normalized()
    }

    /// A tag-safe slug: `linux/arm/v7` → `linux-arm-v7`.
    pub fn slug(&self) -> String {
        self.to_string().replace('/', "-")
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::parse(s)
    }
}

fn normalize_os(os: &str) -> &str {
    match os {
        "macos" | "osx" => "darwin",
        other => other,
    }
}

/// Resolves architecture aliases; some aliases also imply a variant.
fn normalize_arch(arch: &str) -> (&str, Option<&'static str>) {
    match arch {
        "x86_64" | "x86-64" => ("amd64", None),
        "aarch64" => ("arm64", None),
        "armhf" => ("arm", Some("v7")),
        "armel" => ("arm", Some("v6")),
        "i386" | "i686" | "x86" => ("386", None),
        other => (other, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises_aliases() {
        let cases = [
            ("linux/amd64", "linux/amd64"),
            ("linux/arm64", "linux/arm64"),
            ("linux/arm64/v8", "linux/arm64/v8"),
            ("linux/arm/v6", "linux/arm/v6"),
            ("Linux/X86_64", "linux/amd64"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/armhf", "linux/arm/v7"),
            ("windows/amd64", "windows/amd64"),
            ("macos/arm64", "darwin/arm64"),
        ];
        for (input, want) in cases {
            assert_eq!(Platform::parse(input).unwrap().to_string(), want, "{input}");
        }
    }

    #[test]
    fn rejects_typos_listing_the_known_values() {
        let err = Platform::parse("linux/amd46").unwrap_err().to_string();
        assert!(
            err.starts_with(
                "unknown architecture \"amd46\"; expected one of amd64, arm64, arm, 386"
            ),
            "{err}"
        );
        let err = Platform::parse("lnux/amd64").unwrap_err().to_string();
        assert!(err.contains("unknown operating system \"lnux\""), "{err}");
        assert!(err.contains("linux, windows, darwin"), "{err}");
        for bad in [
            "linux",
            "linux/",
            "linux/arm/v7/x",
            "",
            "/amd64",
            "linux/arm/",
        ] {
            assert!(
                matches!(Platform::parse(bad), Err(PlatformError::Shape { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn normalisation_makes_implied_variants_explicit() {
        let cases = [
            (Platform::new("linux", "arm64", None), "linux/arm64/v8"),
            (Platform::new("linux", "arm", None), "linux/arm/v7"),
            (Platform::new("linux", "arm", Some("6")), "linux/arm/v6"),
            (Platform::new("linux", "amd64", Some("v1")), "linux/amd64"),
            (
                Platform::new("linux", "amd64", Some("v3")),
                "linux/amd64/v3",
            ),
            (Platform::new("linux", "x86_64", None), "linux/amd64"),
            (Platform::new("unknown", "unknown", None), "unknown/unknown"),
        ];
        for (platform, want) in cases {
            assert_eq!(platform.normalized().to_string(), want, "{platform}");
        }
    }

    #[test]
    fn matching_uses_normalisation() {
        let p = |s: &str| Platform::parse(s).unwrap();
        assert!(p("linux/arm64").matches(&Platform::new("linux", "arm64", Some("v8"))));
        assert!(p("linux/arm/v7").matches(&Platform::new("linux", "arm", None)));
        assert!(p("linux/amd64").matches(&Platform::new("linux", "amd64", None)));
        assert!(!p("linux/amd64").matches(&Platform::new("linux", "arm64", None)));
        assert!(!p("linux/arm/v6").matches(&Platform::new("linux", "arm", None)));
        assert!(!p("linux/amd64").matches(&Platform::new("windows", "amd64", None)));
        assert!(!p("linux/amd64").matches(&Platform::new("unknown", "unknown", None)));
    }
}
