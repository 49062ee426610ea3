use super::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

#[test]
fn host_names_are_what_tls_sees() {
    for (address, want) in [
        ("10.0.0.5:5000", "10.0.0.5"),
        ("https://Reg.Example:5000/v2/", "reg.example"),
        ("reg.example.", "reg.example"),
        ("[::1]:5000", "::1"),
        ("[0:0:0:0:0:0:0:1]", "::1"),
        ("ghcr.io", "ghcr.io"),
        ("registry-1.docker.io:443", "docker.io"),
        ("index.docker.io", "docker.io"),
    ] {
        assert_eq!(host_name(address), want, "{address}");
    }
}

fn name(text: &str) -> ServerName<'static> {
    ServerName::try_from(text.to_string()).unwrap()
}

#[test]
fn only_the_insecure_hosts_go_unchecked() {
    let insecure = vec![host_name("reg.example:5000"), host_name("10.0.0.5:5000")];
    for (server, want) in [
        ("reg.example", true),
        ("REG.example", true),
        ("10.0.0.5", true),
        // A token service or blob storage on another host.
        ("auth.reg.example", false),
        ("example", false),
        ("10.0.0.6", false),
        ("s3.amazonaws.com", false),
    ] {
        assert_eq!(unchecked(&insecure, &name(server)), want, "{server}");
    }
    assert!(!unchecked(&[], &name("reg.example")));
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A CA, and a certificate it signed for `auth.example`.
fn ca_and_leaf() -> (CertificateDer<'static>, CertificateDer<'static>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["auth.example".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    (ca.der().clone(), leaf.der().clone())
}

fn verify(v: &ScopedVerifier, cert: &CertificateDer<'_>, server: &str) -> Result<(), Error> {
    v.verify_server_cert(cert, &[], &name(server), &[], UnixTime::now())
        .map(|_| ())
}

#[test]
fn certificates_are_checked_except_on_insecure_hosts() {
    let (ca, leaf) = ca_and_leaf();
    let self_signed = rcgen::generate_simple_self_signed(vec![
        "reg.example".to_string(),
        "auth.example".to_string(),
    ])
    .unwrap();
    let untrusted = self_signed.cert.der();
    let mut store = rustls::RootCertStore::empty();
    store.add(ca).unwrap();
    let insecure = [host_name("reg.example:5000")];
    let v = ScopedVerifier::new(store, &insecure, provider()).unwrap();
    assert_eq!(verify(&v, untrusted, "reg.example"), Ok(()));
    // The same certificate on another host is checked, and refused.
    assert!(matches!(
        verify(&v, untrusted, "auth.example"),
        Err(Error::InvalidCertificate(_))
    ));
    // Checked and trusted; and a trusted certificate for another name is still refused.
    assert_eq!(verify(&v, &leaf, "auth.example"), Ok(()));
    assert!(verify(&v, &leaf, "other.example").is_err());

    // No CA at all: the insecure host is reached, every other host refused.
    let bare = ScopedVerifier::new(rustls::RootCertStore::empty(), &insecure, provider()).unwrap();
    assert_eq!(verify(&bare, untrusted, "reg.example"), Ok(()));
    assert!(verify(&bare, &leaf, "auth.example").is_err());
}
