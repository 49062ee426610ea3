//! What ECS accepts as a cluster or service: a name of up to 255 ASCII
//! letters, digits, hyphens and underscores, or the resource's ARN
//! (`arn:PARTITION:ecs:REGION:ACCOUNT:cluster/NAME`, `…:service/NAME` or
//! `…:service/CLUSTER/NAME`) whose names follow the same rule.

/// The longest cluster or service name ECS accepts.
pub const MAX_NAME: usize = 255;

/// The longest value quoted whole in a diagnostic; longer ones are cut.
const QUOTED: usize = 80;

/// Why `value` is not a name or ARN of an ECS `kind` (`cluster` or
/// `service`), as the sentence a diagnostic shows.
pub fn check(kind: &str, value: &str) -> Result<(), String> {
    let fix = match kind {
        "cluster" => "the cluster's name, or its ARN (arn:aws:ecs:REGION:ACCOUNT:cluster/NAME)",
        _ => "the service's name, or its ARN (arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME)",
    };
    let why = match value.strip_prefix("arn:") {
        Some(rest) => check_arn(kind, rest),
        None => check_name(value),
    };
    why.map_err(|why| {
        format!(
            "{kind} = {} is not an ECS {kind} name or ARN: {why}. Give {fix}; a name is up to \
             {MAX_NAME} ASCII letters, digits, hyphens and underscores.",
            quoted(value)
        )
    })
}

/// One name: 1 to 255 of `[A-Za-z0-9_-]`.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    let length = name.chars().count();
    if length > MAX_NAME {
        return Err(format!("it is {length} characters long"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    match name.chars().enumerate().find(|(_, c)| !allowed(*c)) {
        Some((at, c)) => Err(format!("character {} ({c:?}) is not allowed", at + 1)),
        None => Ok(()),
    }
}

/// An ARN after `arn:`: `PARTITION:ecs:REGION:ACCOUNT:RESOURCE`.
fn check_arn(kind: &str, rest: &str) -> Result<(), String> {
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    let [partition, service, region, account, resource] = parts[..] else {
        return Err("an ARN has six parts separated by colons".into());
    };
    let lower = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if !partition.starts_with("aws") || !lower(partition) {
        return Err(format!("partition {partition:?} is not an AWS partition"));
    }
    if service != "ecs" {
        return Err(format!("it names the {service:?} service, not ecs"));
    }
    if !lower(region) {
        return Err(format!("region {region:?} is not a region"));
    }
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("account {account:?} is not a 12-digit account id"));
    }
    let Some(path) = resource
        .strip_prefix(kind)
        .and_then(|r| r.strip_prefix('/'))
    else {
        return Err(format!("its resource does not start with {kind}/"));
    };
    let names: Vec<&str> = path.split('/').collect();
    // Service ARNs name the cluster too (`service/CLUSTER/NAME`), or not (the older form).
    let most = if kind == "service" { 2 } else { 1 };
    if names.len() > most {
        return Err(format!("{path:?} has too many parts after {kind}/"));
    }
    names.into_iter().try_for_each(check_name)
}

/// `value` quoted, cut to its first characters when long.
fn quoted(value: &str) -> String {
    let length = value.chars().count();
    if length <= QUOTED {
        return format!("{value:?}");
    }
    let head: String = value.chars().take(QUOTED).collect();
    format!("{head:?}… ({length} characters)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arns_ecs_accepts_pass() {
        let long = "a".repeat(MAX_NAME);
        let cases = [
            ("cluster", "prod"),
            ("cluster", "Prod_2-blue"),
            ("cluster", long.as_str()),
            ("cluster", "arn:aws:ecs:us-east-1:123456789012:cluster/prod"),
            (
                "cluster",
                "arn:aws-cn:ecs:cn-north-1:123456789012:cluster/prod",
            ),
            (
                "cluster",
                "arn:aws-us-gov:ecs:us-gov-west-1:123456789012:cluster/p",
            ),
            ("service", "web"),
            ("service", "arn:aws:ecs:us-east-1:123456789012:service/web"),
            (
                "service",
                "arn:aws:ecs:us-east-1:123456789012:service/prod/web",
            ),
        ];
        for (kind, value) in cases {
            assert_eq!(check(kind, value), Ok(()), "{kind} {value}");
        }
    }

    #[test]
    fn what_ecs_refuses_is_refused_saying_why() {
        let huge = "a".repeat(100_000);
        let cases = [
            ("cluster", "pr\nod", "character 3 ('\\n') is not allowed"),
            ("cluster", "café", "character 4 ('é') is not allowed"),
            ("cluster", "Ｐrod", "character 1 ('Ｐ') is not allowed"),
            ("service", "web app", "character 4 (' ') is not allowed"),
            ("service", "web/x", "character 4 ('/') is not allowed"),
            ("cluster", huge.as_str(), "it is 100000 characters long"),
            (
                "cluster",
                &"b".repeat(MAX_NAME + 1),
                "it is 256 characters long",
            ),
            (
                "cluster",
                "arn:aws:ecs:us-east-1:123456789012:cluster/",
                "the name is empty",
            ),
            (
                "cluster",
                "arn:aws:ecs:us-east-1:123456789012:cluster/a b",
                "is not allowed",
            ),
            (
                "cluster",
                "arn:aws:ecs:us-east-1:123456789012:service/web",
                "start with cluster/",
            ),
            (
                "cluster",
                "arn:aws:ecs:us-east-1:123456789012:cluster/a/b",
                "too many parts",
            ),
            (
                "service",
                "arn:aws:ecs:us-east-1:123456789012:service/a/b/c",
                "too many parts",
            ),
            (
                "cluster",
                "arn:aws:ec2:us-east-1:123456789012:cluster/prod",
                "not ecs",
            ),
            (
                "cluster",
                "arn:aws:ecs:us-east-1:1234:cluster/prod",
                "12-digit account",
            ),
            (
                "cluster",
                "arn:gcp:ecs:us-east-1:123456789012:cluster/prod",
                "not an AWS partition",
            ),
            (
                "cluster",
                "arn:aws:ecs:US EAST:123456789012:cluster/prod",
                "not a region",
            ),
            ("cluster", "arn:aws:ecs:cluster/prod", "six parts"),
        ];
        for (kind, value, why) in cases {
            let err = check(kind, value).expect_err(value);
            assert!(err.contains(why), "{value:?}: {err}");
            assert!(err.starts_with(&format!("{kind} = ")), "{err}");
            assert!(
                err.contains("ASCII letters, digits, hyphens and underscores"),
                "{err}"
            );
        }
    }

    #[test]
    fn long_values_are_quoted_cut() {
        let err = check("service", &"x".repeat(100_000)).unwrap_err();
        assert!(err.len() < 600, "{} characters", err.len());
        assert!(err.contains("… (100000 characters)"), "{err}");
    }
}
