//! A provider registry on loopback, speaking the provider registry protocol as the public
//! Terraform Registry does, over HTTPS with a certificate from a [`TestCa`]: service
//! discovery (`/.well-known/terraform.json`), the version list, the download document
//! (download URL, the SHA256SUMS and its signature, the zip's sum, the signing key) and
//! the files themselves, all from a release directory ([`Dist`]).
//!
//! It answers only `GET` (else 405) of the paths the protocol has for its one provider
//! (else 404), and records every request so tests can assert what Terraform asked.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::json;

use crate::http1::Head;
use crate::release::Dist;
use crate::tls::TestCa;

pub const NAMESPACE: &str = "stevedore";
pub const TYPE: &str = "stevedore";

/// One request the registry answered.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// The `X-Terraform-Version` header, which Terraform sends to registries.
    pub terraform_version: Option<String>,
}

struct Served {
    content_type: &'static str,
    body: Vec<u8>,
}

pub struct ProviderRegistry {
    /// `127.0.0.1:<port>`, the host part of the provider's source address.
    pub host: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl ProviderRegistry {
    /// Serves the release in `dist` (platforms from its zips, protocols from its
    /// manifest) with a certificate from `ca`.
    pub fn start(ca: &TestCa, dist: &Dist) -> ProviderRegistry {
        ProviderRegistry::start_with(ca, dist, |_, _| {})
    }

    /// As [`ProviderRegistry::start`], letting `edit` change any file before it is served
    /// (by name; e.g. to serve sums that no longer match their signature).
    pub fn start_with(
        ca: &TestCa,
        dist: &Dist,
        edit: impl Fn(&str, &mut Vec<u8>),
    ) -> ProviderRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the provider registry");
        let host = listener.local_addr().unwrap().to_string();
        let routes = Arc::new(routes(&host, dist, edit));
        let tls = Arc::new(server_config(ca));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (routes, tls, log) = (routes.clone(), tls.clone(), log.clone());
                std::thread::spawn(move || serve(stream, tls, &routes, &log));
            }
        });
        ProviderRegistry { host, requests }
    }

    /// The source address Terraform is given: `127.0.0.1:<port>/stevedore/stevedore`.
    pub fn source(&self) -> String {
        format!("{}/{NAMESPACE}/{TYPE}", self.host)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// Every path the registry has, with what it serves there.
fn routes(host: &str, dist: &Dist, edit: impl Fn(&str, &mut Vec<u8>)) -> BTreeMap<String, Served> {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dist.path("manifest.json")).unwrap())
            .expect("the release manifest is JSON");
    let protocols = manifest["metadata"]["protocol_versions"].clone();
    let sums = dist.sums();
    let platforms: Vec<(String, String)> = sums
        .iter()
        .filter_map(|(_, name)| {
            let rest = name.strip_prefix(&dist.file(""))?.strip_suffix(".zip")?;
            let (os, arch) = rest.split_once('_')?;
            Some((os.to_string(), arch.to_string()))
        })
        .collect();
    assert!(!platforms.is_empty(), "no zips in the SHA256SUMS");

    let mut routes = BTreeMap::new();
    let mut json_route = |path: String, value: serde_json::Value| {
        let body = serde_json::to_vec_pretty(&value).unwrap();
        let served = Served {
            content_type: "application/json",
            body,
        };
        routes.insert(path, served);
    };
    json_route(
        "/.well-known/terraform.json".into(),
        json!({"providers.v1": "/v1/providers/"}),
    );
    let api = format!("/v1/providers/{NAMESPACE}/{TYPE}");
    json_route(
        format!("{api}/versions"),
        json!({"versions": [{
            "version": dist.version,
            "protocols": protocols,
            "platforms": platforms.iter().map(|(os, arch)| json!({"os": os, "arch": arch})).collect::<Vec<_>>(),
        }]}),
    );
    let files = format!("https://{host}/files/");
    for (os, arch) in &platforms {
        let filename = dist.file(&format!("{os}_{arch}.zip"));
        let shasum = &sums.iter().find(|(_, n)| *n == filename).unwrap().0;
        json_route(
            format!("{api}/{}/download/{os}/{arch}", dist.version),
            json!({
                "protocols": protocols,
                "os": os,
                "arch": arch,
                "filename": filename,
                "download_url": format!("{files}{filename}"),
                "shasums_url": format!("{files}{}", dist.file("SHA256SUMS")),
                "shasums_signature_url": format!("{files}{}", dist.file("SHA256SUMS.sig")),
                "shasum": shasum,
                "signing_keys": {"gpg_public_keys": [{
                    "key_id": dist.key_id(),
                    "ascii_armor": dist.public_key,
                    "trust_signature": "",
                    "source": "stevedore tests",
                    "source_url": null,
                }]},
            }),
        );
    }
    let mut served: Vec<String> = sums.into_iter().map(|(_, name)| name).collect();
    served.push(dist.file("SHA256SUMS"));
    served.push(dist.file("SHA256SUMS.sig"));
    for name in served {
        let mut body = std::fs::read(dist.dir.join(&name))
            .unwrap_or_else(|e| panic!("reading {name} from the release: {e}"));
        edit(&name, &mut body);
        let served = Served {
            content_type: "application/octet-stream",
            body,
        };
        routes.insert(format!("/files/{name}"), served);
    }
    routes
}

fn server_config(ca: &TestCa) -> ServerConfig {
    let files = ca.server("provider-registry");
    let chain = CertificateDer::pem_file_iter(&files.certificate)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&files.key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("the test CA's server certificate")
}

/// One request per connection (`Connection: close`), as a plain HTTP/1.1 server may.
fn serve(
    tcp: TcpStream,
    tls: Arc<ServerConfig>,
    routes: &BTreeMap<String, Served>,
    log: &Mutex<Vec<Request>>,
) {
    let Ok(conn) = ServerConnection::new(tls) else {
        return;
    };
    let mut stream = StreamOwned::new(conn, tcp);
    // A client that gives up on the handshake (or the certificate) sends no request.
    let head = match Head::read(&mut BufReader::new(&mut stream)) {
        Ok(Some(head)) => head,
        _ => return,
    };
    let mut parts = head.start.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default().to_string();
    let (status, content_type, body): (u16, &str, &[u8]) = match routes.get(&path) {
        _ if method != "GET" => (405, "text/plain", b"method not allowed\n"),
        Some(served) => (200, served.content_type, &served.body),
        None => (404, "application/json", br#"{"errors":["Not Found"]}"#),
    };
    log.lock().unwrap().push(Request {
        method,
        path,
        status,
        terraform_version: head.header("x-terraform-version").map(str::to_string),
    });
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
    stream.conn.send_close_notify();
    let _ = stream.flush();
}
