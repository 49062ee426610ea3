//! `os/arch[/variant]` as the daemon and registries spell it.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/amd64")]
pub struct PlatformParseError(pub String);

impl FromStr for Platform {
    type Err = PlatformParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = (2..=3).contains(&parts.len()) && parts.iter().all(|p| !p.is_empty());
        if !ok {
            return Err(PlatformParseError(s.to_string()));
        }
        Ok(Platform {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

impl Platform {
    /// Whether an image whose config says `actual` serves this platform. A
    /// variant is compared only when asked; `arm64` means `arm64/v8`.
    pub fn accepts(&self, actual: &Platform) -> bool {
        if self.os != actual.os || self.architecture != actual.architecture {
            return false;
        }
        let norm = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", None) => Some("v8".to_string()),
            (_, v) => v.map(str::to_string),
        };
        match &self.variant {
            None => true,
            Some(_) => norm(self) == norm(actual),
        }
    }

    /// A tag-safe slug: `linux/arm/v7` → `linux-arm-v7`.
    pub fn slug(&self) -> String {
        self.to_string().replace('/', "-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_accept() {
        assert!(p("linux/amd64").accepts(&p("linux/amd64")));
        assert!(!p("linux/amd64").accepts(&p("linux/arm64")));
        assert!(p("linux/arm64/v8").accepts(&p("linux/arm64")));
        assert!(p("linux/arm64").accepts(&p("linux/arm64/v8")));
        assert!(!p("linux/arm/v7").accepts(&p("linux/arm/v6")));
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//".parse::<Platform>().is_err());
        assert_eq!(p("linux/arm/v7").slug(), "linux-arm-v7");
    }
}
