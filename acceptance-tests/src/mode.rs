//! How Terraform reaches the provider in a test.

/// Every data-source test runs once per mode (see the `acc_test!` macro).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Installed from a filesystem mirror; Terraform starts it with AutoMTLS, as users do.
    Installed,
    /// Started by the harness with `--debug`; Terraform attaches through
    /// `TF_REATTACH_PROVIDERS` over plaintext gRPC, as terraform-plugin-testing does.
    Reattach,
}

/// Defines `mod $name { fn installed(); fn reattach(); }`, both ignored by plain
/// `cargo test`, each calling `$body` with its [`Mode`].
///
/// ```text
/// acc_test!(reads_a_tag, |mode| {
///     let tf = Workdir::new(mode, "...");
/// });
/// ```
#[macro_export]
macro_rules! acc_test {
    ($(#[$meta:meta])* $name:ident, |$mode:ident| $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($mode: $crate::Mode) $body

            #[test]
            #[ignore = "acceptance: run make testacc"]
            fn installed() {
                body($crate::Mode::Installed)
            }

            #[test]
            #[ignore = "acceptance: run make testacc"]
            fn reattach() {
                body($crate::Mode::Reattach)
            }
        }
    };
}
