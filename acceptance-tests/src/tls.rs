//! A certificate authority of the test's own, for registries served over HTTPS and for a
//! TLS daemon's server and client certificates: the tests trust it the ways users do
//! (`SSL_CERT_FILE`, Docker's `certs.d/<host>/ca.crt`, a `DOCKER_CERT_PATH` folder), or not
//! at all, to see the refusal.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// A CA and the files it wrote: `ca.crt`, and per server `<name>.crt`/`<name>.key`.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    dir: PathBuf,
}

/// A certificate and its key on disk (a server's for docker-registry's `http.tls` or
/// stunnel, or a client's).
pub struct ServerFiles {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    /// A new CA writing into `dir`.
    pub fn new(dir: &Path) -> TestCa {
        let key = KeyPair::generate().expect("generating the CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, "stevedore acceptance-test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("self-signing the CA");
        let pem = cert.pem();
        fs::write(dir.join("ca.crt"), &pem).unwrap();
        TestCa {
            issuer: Issuer::new(params, key),
            pem,
            dir: dir.to_path_buf(),
        }
    }

    /// `ca.crt`: the CA certificate in PEM.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    pub fn ca_pem(&self) -> &str {
        &self.pem
    }

    /// A certificate for 127.0.0.1 and localhost, signed by this CA.
    pub fn server(&self, name: &str) -> ServerFiles {
        let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("server params");
        self.issue(name, params)
    }

    /// Signs `params` with `name` as common name; writes `<name>.crt` and `<name>.key`.
    fn issue(&self, name: &str, mut params: CertificateParams) -> ServerFiles {
        let key = KeyPair::generate().expect("generating a key");
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &self.issuer).expect("signing");
        let files = ServerFiles {
            certificate: self.dir.join(format!("{name}.crt")),
            key: self.dir.join(format!("{name}.key")),
        };
        fs::write(&files.certificate, cert.pem()).unwrap();
        fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }

    /// A `certs.d` tree trusting this CA for `host` (`<root>/<host>/ca.crt`), as Docker
    /// reads it; returns `<root>`.
    pub fn certs_d(&self, root: &Path, host: &str) -> PathBuf {
        let dir = root.join(host);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("ca.crt"), &self.pem).unwrap();
        root.to_path_buf()
    }

    /// A client certificate (`clientAuth`), as a TLS daemon asks of the docker CLI.
    pub fn client(&self, name: &str) -> ServerFiles {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(name, params)
    }

    /// A `DOCKER_CERT_PATH`-style folder: `ca.pem` (this CA) and, with `client`, its
    /// `cert.pem` and `key.pem`.
    pub fn docker_cert_dir(&self, dir: &Path, client: Option<&ServerFiles>) -> PathBuf {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("ca.pem"), &self.pem).unwrap();
        if let Some(c) = client {
            fs::copy(&c.certificate, dir.join("cert.pem")).unwrap();
            fs::copy(&c.key, dir.join("key.pem")).unwrap();
        }
        dir.to_path_buf()
    }
}
