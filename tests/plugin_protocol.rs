//! The plugin binary as a go-plugin host sees it: handshake line, AutoMTLS
//! with a P-521 client certificate (what Terraform generates), the gRPC
//! services, and process lifecycle. Driven with a tonic client, so RPCs that
//! Terraform 1.0.3 never calls (GetMetadata, identity, ...) are covered too.

use base64::Engine;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stevedore::protocol::plugin_proto as pp;
use stevedore::protocol::proto as pb;
use tonic::transport::{Channel, Endpoint};

const BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-stevedore");
const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

struct Plugin {
    child: Child,
    socket: String,
    server_cert: Vec<u8>,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client_identity() -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (cert.pem(), cert.der().clone(), der)
}

fn start(client_pem: Option<&str>, versions: &str) -> Plugin {
    let mut cmd = Command::new(BIN);
    cmd.env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", versions)
        .env_remove("PLUGIN_CLIENT_CERT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(pem) = client_pem {
        cmd.env("PLUGIN_CLIENT_CERT", pem);
    }
    let mut child = cmd.spawn().expect("plugin starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let fields: Vec<&str> = line.trim_end().split('|').collect();
    assert_eq!(fields.len(), 6, "handshake line {line:?}");
    assert_eq!(&fields[..3], &["1", "6", "unix"]);
    assert_eq!(fields[4], "grpc");
    assert!(
        !fields[5].contains('='),
        "certificate must be unpadded base64"
    );
    let server_cert = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(fields[5])
        .unwrap();
    Plugin {
        child,
        socket: fields[3].to_string(),
        server_cert,
    }
}

#[derive(Debug)]
struct Pinned(Vec<u8>, Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        ee: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if ee.as_ref() == self.0.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "unexpected server certificate".into(),
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.1.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.1.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.1.signature_verification_algorithms.supported_schemes()
    }
}

async fn channel(
    p: &Plugin,
    identity: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
) -> Result<Channel, tonic::transport::Error> {
    let socket = p.socket.clone();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned(p.server_cert.clone(), provider)));
    let tls = identity.map(|(c, k)| {
        let mut cfg = builder.with_client_auth_cert(vec![c], k).unwrap();
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        tokio_rustls::TlsConnector::from(Arc::new(cfg))
    });
    Endpoint::try_from("http://localhost")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            let tls = tls.clone();
            async move {
                let s = tokio::net::UnixStream::connect(&socket).await?;
                match tls {
                    Some(tls) => {
                        let name = ServerName::try_from("localhost").unwrap();
                        let t = tls.connect(name, s).await?;
                        Ok::<_, std::io::Error>(TokioIo::new(Box::new(t) as Box<dyn IoStream>))
                    }
                    None => Ok(TokioIo::new(Box::new(s) as Box<dyn IoStream>)),
                }
            }
        }))
        .await
}

trait IoStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> IoStream for T {}

async fn mtls_plugin() -> (Plugin, Channel) {
    let (pem, cert, key) = client_identity();
    let p = start(Some(&pem), "5,6");
    let ch = channel(&p, Some((cert, key)))
        .await
        .expect("mTLS connection with a P-521 client certificate");
    (p, ch)
}

#[tokio::test]
async fn metadata_agrees_with_schema_over_mtls() {
    let (_p, ch) = mtls_plugin().await;
    let mut c = pb::provider_client::ProviderClient::new(ch);
    let schema = c
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    assert!(schema.diagnostics.is_empty());
    assert!(
        schema
            .provider
            .as_ref()
            .and_then(|s| s.block.as_ref())
            .is_some(),
        "provider block always set"
    );
    assert!(schema.server_capabilities.unwrap().plan_destroy);
    let meta = c
        .get_metadata(pb::get_metadata::Request {})
        .await
        .unwrap()
        .into_inner();
    let mut res: Vec<_> = meta.resources.iter().map(|r| r.type_name.clone()).collect();
    let mut ds: Vec<_> = meta
        .data_sources
        .iter()
        .map(|r| r.type_name.clone())
        .collect();
    res.sort();
    ds.sort();
    let mut want_res: Vec<_> = schema.resource_schemas.keys().cloned().collect();
    let mut want_ds: Vec<_> = schema.data_source_schemas.keys().cloned().collect();
    want_res.sort();
    want_ds.sort();
    assert_eq!(res, want_res);
    assert_eq!(ds, want_ds);
    assert_eq!(ds, vec!["stevedore_image_manifest"]);
    assert_eq!(
        res,
        vec![
            "stevedore_ecs_redeploy",
            "stevedore_image_build",
            "stevedore_image_index"
        ]
    );
}

#[tokio::test]
async fn unserved_rpcs_answer_as_the_protocol_prescribes() {
    let (_p, ch) = mtls_plugin().await;
    let mut c = pb::provider_client::ProviderClient::new(ch);
    let err = c
        .get_resource_identity_schemas(pb::get_resource_identity_schemas::Request {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    let v = c
        .validate_resource_config(pb::validate_resource_config::Request {
            type_name: "stevedore_nope".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.diagnostics.len(), 1);
    assert_eq!(
        v.diagnostics[0].severity,
        pb::diagnostic::Severity::Error as i32
    );
    let e = c
        .open_ephemeral_resource(pb::open_ephemeral_resource::Request {
            type_name: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(e.diagnostics.len(), 1);
    let m = c
        .move_resource_state(pb::move_resource_state::Request::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.diagnostics.len(), 1);
    let mut list = c
        .list_resource(pb::list_resource::Request::default())
        .await
        .unwrap()
        .into_inner();
    let ev = list.message().await.unwrap().expect("one event");
    assert_eq!(ev.diagnostic.len(), 1);
    assert!(list.message().await.unwrap().is_none());
    let f = c
        .call_function(pb::call_function::Request {
            name: "f".into(),
            arguments: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(f.error.is_some());
    // Every feature stevedore does not offer: one error saying so, by name.
    macro_rules! refused {
        ($($rpc:ident: $module:ident),+ $(,)?) => {$(
            let r = c
                .$rpc(pb::$module::Request::default())
                .await
                .unwrap()
                .into_inner();
            assert_eq!(r.diagnostics.len(), 1, stringify!($rpc));
            assert_eq!(r.diagnostics[0].severity, pb::diagnostic::Severity::Error as i32);
            assert!(r.diagnostics[0].summary.ends_with("Not Supported"), "{}: {:?}", stringify!($rpc), r.diagnostics[0].summary);
        )+};
    }
    refused!(
        upgrade_resource_identity: upgrade_resource_identity,
        generate_resource_config: generate_resource_config,
        validate_ephemeral_resource_config: validate_ephemeral_resource_config,
        renew_ephemeral_resource: renew_ephemeral_resource,
        close_ephemeral_resource: close_ephemeral_resource,
        validate_list_resource_config: validate_list_resource_config,
        validate_state_store_config: validate_state_store,
        configure_state_store: configure_state_store,
        get_states: get_states,
        delete_state: delete_state,
        plan_action: plan_action,
        validate_action_config: validate_action_config,
    );
    let s = c
        .stop_provider(pb::stop_provider::Request {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.error, "");
}

#[tokio::test]
async fn health_and_go_plugin_services_are_served() {
    let (_p, ch) = mtls_plugin().await;
    let mut h = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let st = h
        .check(tonic_health::pb::HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        st.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let mut stdio = pp::grpc_stdio_client::GrpcStdioClient::new(ch.clone());
    let _stream = stdio.stream_stdio(()).await.expect("StreamStdio accepted");
}

#[tokio::test]
async fn a_client_without_the_pinned_certificate_is_refused() {
    let (pem, _, _) = client_identity();
    let p = start(Some(&pem), "6");
    let (_, other_cert, other_key) = client_identity();
    let attempt = async {
        let ch = channel(&p, Some((other_cert, other_key))).await?;
        let mut c = pb::provider_client::ProviderClient::new(ch);
        c.get_provider_schema(pb::get_provider_schema::Request {})
            .await
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error>)?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    assert!(
        attempt.await.is_err(),
        "a different client certificate must not be served"
    );
}

#[tokio::test]
async fn shutdown_ends_the_process_promptly_and_sigint_does_not() {
    let (mut p, ch) = mtls_plugin().await;
    // Terraform handles Ctrl-C itself; the plugin must survive SIGINT.
    unsafe { libc::kill(p.child.id() as i32, libc::SIGINT) };
    // Linux acts on a signal whose default action is fatal when it is sent
    // (the whole thread group is killed in kill() itself), so a plugin that
    // answers a call after kill() returned did not die of it.
    let mut c = pb::provider_client::ProviderClient::new(ch.clone());
    c.get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .expect("the plugin answers after SIGINT");
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "SIGINT killed the plugin"
    );
    let mut ctl = pp::grpc_controller_client::GrpcControllerClient::new(ch);
    ctl.shutdown(pp::Empty {}).await.unwrap();
    let t0 = Instant::now();
    loop {
        if let Some(status) = p.child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        // A plugin that ignores Shutdown runs on forever: ten seconds tell it apart.
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "plugin still running 10 s after Shutdown"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn plaintext_without_client_cert_has_empty_sixth_field() {
    let p = start(None, "6,5");
    assert!(p.server_cert.is_empty());
    let ch = channel(&p, None).await.unwrap();
    let mut c = pb::provider_client::ProviderClient::new(ch);
    assert!(c
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .is_ok());
}

#[test]
fn run_by_hand_it_explains_and_exits_1() {
    let out = Command::new(BIN)
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("This binary is a plugin"));
    assert!(out.stdout.is_empty());
}

#[test]
fn debug_mode_prints_reattach_providers() {
    let mut child = Command::new(BIN)
        .arg("--debug")
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut rd = BufReader::new(child.stdout.take().unwrap());
    let mut found = None;
    for _ in 0..5 {
        let mut line = String::new();
        rd.read_line(&mut line).unwrap();
        if let Some(rest) = line.trim().strip_prefix("TF_REATTACH_PROVIDERS='") {
            found = Some(rest.trim_end_matches('\'').to_string());
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let json: serde_json::Value = serde_json::from_str(&found.expect("reattach line")).unwrap();
    let entry = &json["registry.terraform.io/stevedore/stevedore"];
    assert_eq!(entry["ProtocolVersion"], 6);
    assert_eq!(entry["Addr"]["Network"], "unix");
}

fn msgpack(v: &stevedore::value::Value, t: &stevedore::value::Type) -> pb::DynamicValue {
    pb::DynamicValue {
        msgpack: stevedore::value::to_msgpack(v, t).unwrap(),
        json: vec![],
    }
}

#[tokio::test]
async fn stop_provider_cancels_a_read_in_flight() {
    a_stop_cancels_a_read_in_flight(false).await;
}

/// SIGTERM (a CI runner or container shutting down) cancels what is in
/// flight as StopProvider does, so builds and pushes clean up their local
/// build tags before the process exits, and the read still gets its answer.
#[tokio::test]
async fn sigterm_cancels_a_read_in_flight() {
    a_stop_cancels_a_read_in_flight(true).await;
}

async fn a_stop_cancels_a_read_in_flight(sigterm: bool) {
    use stevedore::resource::DataSource;
    use stevedore::value::Value;
    // A "registry" that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let p = start(None, "6");
    let ch = channel(&p, None).await.unwrap();
    let mut c = pb::provider_client::ProviderClient::new(ch.clone());
    let provider_ty = stevedore::provider::config::schema().ty();
    let empty = stevedore::schema::empty_object(&stevedore::provider::config::schema().block);
    let conf = c
        .configure_provider(pb::configure_provider::Request {
            terraform_version: "1.0.3".into(),
            config: Some(msgpack(&empty, &provider_ty)),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(conf.diagnostics.is_empty(), "{:?}", conf.diagnostics);

    let ds = stevedore::resources::image_manifest::ImageManifest;
    let mut cfg = stevedore::schema::empty_object(&ds.schema().block);
    cfg.set("image", Value::string(format!("{addr}/app:latest")));
    let req = pb::read_data_source::Request {
        type_name: "stevedore_image_manifest".into(),
        config: Some(msgpack(&cfg, &ds.schema().ty())),
        ..Default::default()
    };
    let mut reader = pb::provider_client::ProviderClient::new(ch);
    let read = tokio::spawn(async move { reader.read_data_source(req).await });
    // Stop once the provider is talking to the silent registry, not after a guessed pause.
    let accepted = tokio::task::spawn_blocking(move || {
        let conn = silent.accept().map(|(conn, _)| conn);
        (silent, conn)
    });
    let (silent, conn) = tokio::time::timeout(Duration::from_secs(10), accepted)
        .await
        .expect("the provider never connected to the registry")
        .unwrap();
    let _conn = conn.unwrap();
    assert!(
        !read.is_finished(),
        "the read should be waiting on the silent registry"
    );
    if sigterm {
        let pid = p.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
    } else {
        c.stop_provider(pb::stop_provider::Request {})
            .await
            .unwrap();
    }
    // The silent registry would hold the read for its whole timeout (a minute and more).
    let out = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the read did not end within 10 s of the stop")
        .unwrap()
        .unwrap()
        .into_inner();
    assert_eq!(out.diagnostics.len(), 1);
    assert_eq!(out.diagnostics[0].summary, "Read Cancelled");
    drop(silent);
}

/// UpgradeResourceState of a version-0 state in JSON, as Terraform sends it.
async fn upgrade(
    c: &mut pb::provider_client::ProviderClient<Channel>,
    type_name: &str,
    raw: &serde_json::Value,
) -> pb::upgrade_resource_state::Response {
    c.upgrade_resource_state(pb::upgrade_resource_state::Request {
        type_name: type_name.into(),
        version: 0,
        raw_state: Some(pb::RawState {
            json: raw.to_string().into_bytes(),
            flatmap: Default::default(),
        }),
    })
    .await
    .unwrap()
    .into_inner()
}

#[tokio::test]
async fn upgrade_resource_state_fills_missing_attributes_and_answers_msgpack() {
    use stevedore::resource::Resource;
    let p = start(None, "6");
    let mut c = pb::provider_client::ProviderClient::new(channel(&p, None).await.unwrap());
    // State JSON as an older provider might have written it: one attribute missing, one gone.
    let raw = serde_json::json!({"id": "prod/web", "cluster": "prod", "service": "web", "digest": "sha256:ab", "retired": 1});
    let out = upgrade(&mut c, "stevedore_ecs_redeploy", &raw).await;
    assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    let dv = out.upgraded_state.expect("upgraded state is never omitted");
    assert!(
        dv.json.is_empty() && !dv.msgpack.is_empty(),
        "answer in msgpack"
    );
    let ty = stevedore::resources::ecs_redeploy::EcsRedeploy
        .schema()
        .ty();
    let v = stevedore::value::from_msgpack(&dv.msgpack, &ty).unwrap();
    assert_eq!(v.get("cluster").as_str(), Some("prod"));
    assert!(v.get("deployment_id").is_null());
    // A state from a newer schema version is refused with a diagnostic.
    let newer = c
        .upgrade_resource_state(pb::upgrade_resource_state::Request {
            type_name: "stevedore_ecs_redeploy".into(),
            version: 99,
            raw_state: Some(pb::RawState {
                json: b"{}".to_vec(),
                flatmap: Default::default(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(newer.diagnostics.len(), 1);
}

/// Terraform configures the provider during plan with values it does not
/// know yet; a password not known yet must never become an empty one.
#[tokio::test]
async fn an_unknown_password_is_never_used_as_an_empty_one() {
    use stevedore::resource::DataSource;
    use stevedore::value::Value;
    let registry = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    registry.set_nonblocking(true).unwrap();
    let addr = registry.local_addr().unwrap();
    let p = start(None, "6");
    let ch = channel(&p, None).await.unwrap();
    let mut c = pb::provider_client::ProviderClient::new(ch);
    let schema = stevedore::provider::config::schema();
    let mut config = stevedore::schema::empty_object(&schema.block);
    config.set(
        "registry_auth",
        Value::List(vec![Value::object([
            ("address", Value::string(addr.to_string())),
            ("username", Value::string("ci")),
            ("password", Value::Unknown),
            ("insecure", Value::Null),
            ("ecr", Value::Null),
        ])]),
    );
    let conf = c
        .configure_provider(pb::configure_provider::Request {
            terraform_version: "1.0.3".into(),
            config: Some(msgpack(&config, &schema.ty())),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(conf.diagnostics.is_empty(), "{:?}", conf.diagnostics);

    let ds = stevedore::resources::image_manifest::ImageManifest;
    let mut cfg = stevedore::schema::empty_object(&ds.schema().block);
    cfg.set("image", Value::string(format!("{addr}/app:latest")));
    let read = c
        .read_data_source(pb::read_data_source::Request {
            type_name: "stevedore_image_manifest".into(),
            config: Some(msgpack(&cfg, &ds.schema().ty())),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.diagnostics.len(), 1, "{:?}", read.diagnostics);
    let d = &read.diagnostics[0];
    assert_eq!(d.summary, "Provider Configuration Not Known Yet");
    assert!(
        d.detail.contains("registry_auth[0].password"),
        "{}",
        d.detail
    );
    assert!(
        matches!(registry.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the registry was contacted"
    );
}

/// `secrets` is write-only: Terraform 1.11+ (which says so in its client
/// capabilities) gets it planned null, so no value reaches plan or state;
/// older Terraform, which does not know the flag, keeps the configured value.
#[tokio::test]
async fn secrets_are_planned_null_only_for_terraform_that_allows_write_only() {
    use stevedore::resource::Resource;
    use stevedore::value::Value;
    let p = start(None, "6");
    let mut c = pb::provider_client::ProviderClient::new(channel(&p, None).await.unwrap());
    let schema = c
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    let block = schema.resource_schemas["stevedore_image_build"]
        .block
        .clone()
        .unwrap();
    let secrets = block
        .attributes
        .iter()
        .find(|a| a.name == "secrets")
        .unwrap();
    assert!(secrets.write_only && secrets.sensitive && !secrets.computed);
    assert!(
        block.attributes.iter().filter(|a| a.write_only).count() == 1,
        "only secrets is write-only"
    );

    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let ty = stevedore::resources::image_build::ImageBuild.schema().ty();
    let config = Value::object([
        ("context", Value::string(ctx.path().display().to_string())),
        ("repository", Value::string("127.0.0.1:5000/web")),
        ("secrets", Value::string_map([("npm", "hunter2")])),
    ]);
    for allowed in [true, false] {
        let out = c
            .plan_resource_change(pb::plan_resource_change::Request {
                type_name: "stevedore_image_build".into(),
                prior_state: Some(msgpack(&Value::Null, &ty)),
                proposed_new_state: Some(msgpack(&config, &ty)),
                config: Some(msgpack(&config, &ty)),
                client_capabilities: Some(pb::ClientCapabilities {
                    deferral_allowed: false,
                    write_only_attributes_allowed: allowed,
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        let planned =
            stevedore::value::from_msgpack(&out.planned_state.unwrap().msgpack, &ty).unwrap();
        if allowed {
            assert!(
                planned.get("secrets").is_null(),
                "write-only planned {:?}",
                planned.get("secrets")
            );
        } else {
            assert_eq!(planned.get("secrets"), &config.get("secrets").clone());
        }
    }
}

/// A state that Terraform before 1.11 wrote holds the value of the write-only
/// `secrets`. Terraform 1.11 rejects any UpgradeResourceState or ReadResource
/// answer that returns one, so for it (as its ConfigureProvider names it:
/// terraform_version and, in the shared ClientCapabilities message,
/// write_only_attributes_allowed) both answer null; an older Terraform keeps the
/// value it stored, so its plans stay empty.
#[tokio::test]
async fn write_only_secrets_of_an_older_state_are_null_for_terraform_1_11_only() {
    use stevedore::resource::Resource;
    use stevedore::value::Value;
    let ty = stevedore::resources::image_build::ImageBuild.schema().ty();
    let raw = serde_json::json!({
        "context": "/nowhere", "dockerfile": "Dockerfile",
        "repository": "127.0.0.1:1/web", "tags": ["latest"], "platforms": ["linux/amd64"],
        "secrets": {"npm": "hunter2"}, "keep_remotely": true,
        "digest": format!("sha256:{}", "ab".repeat(32)),
    });
    for (version, caps, stripped) in [
        ("1.11.0", Some(true), true),
        ("1.14.1", None, true),
        ("1.0.3", None, false),
        ("1.10.5", Some(false), false),
    ] {
        let p = start(None, "6");
        let mut c = pb::provider_client::ProviderClient::new(channel(&p, None).await.unwrap());
        let schema = stevedore::provider::config::schema();
        let config = stevedore::schema::empty_object(&schema.block);
        let conf = c
            .configure_provider(pb::configure_provider::Request {
                terraform_version: version.into(),
                config: Some(msgpack(&config, &schema.ty())),
                client_capabilities: caps.map(|w| pb::ClientCapabilities {
                    deferral_allowed: true,
                    write_only_attributes_allowed: w,
                }),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(conf.diagnostics.is_empty(), "{:?}", conf.diagnostics);
        let upgraded = upgrade(&mut c, "stevedore_image_build", &raw).await;
        assert!(
            upgraded.diagnostics.is_empty(),
            "{:?}",
            upgraded.diagnostics
        );
        let state =
            stevedore::value::from_msgpack(&upgraded.upgraded_state.unwrap().msgpack, &ty).unwrap();
        let held = Value::string_map([("npm", "hunter2")]);
        // Terraform 1.11 reads with the state as upgraded; the read of an older
        // Terraform's state must answer null too, whatever it is given.
        let mut current = state.clone();
        current.set("secrets", held.clone());
        let read = c
            .read_resource(pb::read_resource::Request {
                type_name: "stevedore_image_build".into(),
                current_state: Some(msgpack(&current, &ty)),
                client_capabilities: Some(pb::ClientCapabilities {
                    deferral_allowed: true,
                    write_only_attributes_allowed: false,
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let read = stevedore::value::from_msgpack(&read.new_state.unwrap().msgpack, &ty).unwrap();
        if stripped {
            assert!(state.get("secrets").is_null(), "{version}: upgrade");
            assert!(read.get("secrets").is_null(), "{version}: read");
        } else {
            assert_eq!(state.get("secrets"), &held, "{version}: upgrade keeps it");
            assert_eq!(read.get("secrets"), &held, "{version}: read keeps it");
        }
        assert_eq!(read.get("digest"), state.get("digest"), "{version}");
    }
}

/// The apply Terraform 1.11 sends for the write-only `secrets`: the planned state holds it
/// null (as the plan answered), the config holds the value, and the build's `RUN` step gets
/// that value (its proof is in the pushed image) while the new state holds null again.
/// NOTE: Terraform 1.11 builds `proposed_new_state` with `objchange.ProposedNew`, which takes
/// a non-computed attribute's value from the config, write-only ones included (only its
/// import mocking strips them, `ephemeral.StripWriteOnlyAttributes`); it then refuses a plan
/// or an apply result holding one (`ephemeral.ValidateWriteOnlyAttributes`).
#[tokio::test]
#[ignore = "acceptance: run make testacc (the docker daemon, docker-registry, cc -static)"]
async fn write_only_secrets_reach_the_build_from_the_config_of_an_apply() {
    use stevedore::resource::Resource;
    use stevedore::value::Value;
    const SECRET: &str = "write-only-6b1f";
    let registry = tokio::task::spawn_blocking(acceptance_tests::Registry::start)
        .await
        .unwrap();
    let ctx = acceptance_tests::proof::proof_context(
        "FROM scratch\nCOPY nonce.txt /nonce.txt\nCOPY proof /proof\n\
         RUN --mount=type=secret,id=npm [\"/proof\", \"/run/secrets/npm\", \"/npm.txt\"]\n",
    );
    let p = start(None, "6");
    let mut c = pb::provider_client::ProviderClient::new(channel(&p, None).await.unwrap());
    let caps = || {
        Some(pb::ClientCapabilities {
            deferral_allowed: false,
            write_only_attributes_allowed: true,
        })
    };
    let provider = stevedore::provider::config::schema();
    let conf = c
        .configure_provider(pb::configure_provider::Request {
            terraform_version: "1.11.0".into(),
            config: Some(msgpack(
                &stevedore::schema::empty_object(&provider.block),
                &provider.ty(),
            )),
            client_capabilities: caps(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(conf.diagnostics.is_empty(), "{:?}", conf.diagnostics);

    let resource = stevedore::resources::image_build::ImageBuild;
    let ty = resource.schema().ty();
    let mut config = stevedore::schema::empty_object(&resource.schema().block);
    config.set("context", Value::string(ctx.path().display().to_string()));
    config.set(
        "repository",
        Value::string(format!("{}/web", registry.address)),
    );
    config.set("secrets", Value::string_map([("npm", SECRET)]));
    let plan = c
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "stevedore_image_build".into(),
            prior_state: Some(msgpack(&Value::Null, &ty)),
            proposed_new_state: Some(msgpack(&config, &ty)),
            config: Some(msgpack(&config, &ty)),
            client_capabilities: caps(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(plan.diagnostics.is_empty(), "{:?}", plan.diagnostics);
    let planned_state = plan.planned_state.unwrap();
    let planned = stevedore::value::from_msgpack(&planned_state.msgpack, &ty).unwrap();
    assert!(
        planned.get("secrets").is_null(),
        "planned {:?}",
        planned.get("secrets")
    );

    let applied = c
        .apply_resource_change(pb::apply_resource_change::Request {
            type_name: "stevedore_image_build".into(),
            prior_state: Some(msgpack(&Value::Null, &ty)),
            planned_state: Some(planned_state),
            config: Some(msgpack(&config, &ty)),
            planned_private: plan.planned_private,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(applied.diagnostics.is_empty(), "{:?}", applied.diagnostics);
    let state = stevedore::value::from_msgpack(&applied.new_state.unwrap().msgpack, &ty).unwrap();
    assert!(
        state.get("secrets").is_null(),
        "state {:?}",
        state.get("secrets")
    );
    assert!(!format!("{state:?}").contains(SECRET));
    assert!(!String::from_utf8_lossy(&applied.private).contains(SECRET));
    let digest = state.get("digest").as_str().expect("a digest").to_string();
    let proof = acceptance_tests::proof::proof_line(SECRET.as_bytes());
    let seen = tokio::task::spawn_blocking(move || {
        acceptance_tests::proof::image_layers_contain(&registry, "web", &digest, proof.as_bytes())
    })
    .await
    .unwrap();
    assert!(seen, "the RUN step did not get the secret from the config");
}
