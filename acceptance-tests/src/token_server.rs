//! A token service for docker-registry's `auth: token` (the distribution token spec), run
//! by the tests: `GET /token?service=…&scope=…&scope=…` with basic credentials or none,
//! answered with an ES256 JWT whose `x5c` header carries the signing certificate that the
//! registry trusts (its `rootcertbundle`).
//!
//! It checks what it is sent as a real one would: the service must be ours, a wrong password
//! is refused with 401, an `account` must name the authenticated user, scopes must parse,
//! and it grants only what the caller may have (users: pull, push and delete anywhere;
//! anonymous: pull on `public/…`). Every request is recorded for the tests to assert on.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rcgen::{CertificateParams, DnType, KeyPair};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

pub const SERVICE: &str = "stevedore-test-registry";
pub const ISSUER: &str = "stevedore-test-token-issuer";

/// One request the service answered.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The authenticated user, `None` when anonymous or refused.
    pub user: Option<String>,
    pub scopes: Vec<String>,
    pub status: u16,
    /// The token handed out, if any.
    pub token: Option<String>,
}

struct Shared {
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    users: HashMap<String, String>,
    requests: Mutex<Vec<TokenRequest>>,
    lifetime_secs: u64,
}

/// A running token service (its thread lives as long as the test process).
pub struct TokenServer {
    pub realm: String,
    /// PEM of the signing certificate, for the registry's `rootcertbundle`.
    pub cert_pem: String,
    shared: Arc<Shared>,
}

impl TokenServer {
    /// Serves tokens on a free loopback port to `users` (name, password) and to anyone
    /// anonymously, each valid `lifetime_secs`.
    pub fn start(users: &[(&str, &str)], lifetime_secs: u64) -> TokenServer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("generating the token key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("loading the token key");
        let cert_key = KeyPair::try_from(pkcs8.as_ref()).expect("the token key for rcgen");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "stevedore test token signer");
        let cert = params.self_signed(&cert_key).expect("self-signing");
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the token service");
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            key,
            cert_der: cert.der().to_vec(),
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            requests: Mutex::new(Vec::new()),
            lifetime_secs,
        });
        let serving = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = serving.clone();
                std::thread::spawn(move || serve(&shared, stream));
            }
        });
        TokenServer {
            realm,
            cert_pem: cert.pem(),
            shared,
        }
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// A token granting `actions` on repository `name`, for the tests' own requests.
    pub fn mint(&self, name: &str, actions: &[&str]) -> String {
        let access = vec![json!({"type": "repository", "name": name, "actions": actions})];
        self.shared.jwt("stevedore-tests", access)
    }
}

impl Shared {
    fn jwt(&self, subject: &str, access: Vec<Value>) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header =
            json!({"typ": "JWT", "alg": "ES256", "x5c": [STANDARD.encode(&self.cert_der)]});
        let claims = json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + self.lifetime_secs,
            "nbf": now - 10,
            "iat": now,
            "jti": format!("{now}-{}", self.requests.lock().unwrap().len()),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .expect("signing");
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }

    /// Answers one `GET /token?…`: (status, body, the record).
    fn answer(&self, target: &str, authorization: Option<&str>) -> (u16, String) {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if path != "/token" {
            return (404, error("NOT_FOUND", "no such endpoint"));
        }
        let params: Vec<(String, String)> = url_pairs(query);
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let scopes: Vec<String> = params
            .iter()
            .filter(|(n, _)| n == "scope")
            .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
            .collect();
        let mut record = TokenRequest {
            user: None,
            scopes: scopes.clone(),
            status: 0,
            token: None,
        };
        let (status, body) = (|| {
            if get("service").as_deref() != Some(SERVICE) {
                return (400, error("INVALID_REQUEST", "unknown service"));
            }
            let user = match authorization {
                None => None,
                Some(value) => match basic_user(value) {
                    Some((u, p)) if self.users.get(&u) == Some(&p) => Some(u),
                    _ => return (401, error("UNAUTHORIZED", "wrong username or password")),
                },
            };
            if let Some(account) = get("account") {
                if user.as_deref() != Some(account.as_str()) {
                    return (
                        400,
                        error("INVALID_REQUEST", "account is not the signed-in user"),
                    );
                }
            }
            let mut access = Vec::new();
            for scope in &scopes {
                let Some((kind, rest)) = scope.split_once(':') else {
                    return (400, error("INVALID_REQUEST", "malformed scope"));
                };
                let Some((name, actions)) = rest.rsplit_once(':') else {
                    return (400, error("INVALID_REQUEST", "malformed scope"));
                };
                if kind != "repository" || name.is_empty() {
                    continue;
                }
                let granted: Vec<&str> = actions
                    .split(',')
                    .filter(|a| match &user {
                        Some(_) => ["pull", "push", "delete"].contains(a),
                        None => *a == "pull" && name.starts_with("public/"),
                    })
                    .collect();
                access.push(json!({"type": "repository", "name": name, "actions": granted}));
            }
            record.user = user.clone();
            let token = self.jwt(user.as_deref().unwrap_or(""), access);
            record.token = Some(token.clone());
            let body = json!({
                "token": token,
                "access_token": token,
                "expires_in": self.lifetime_secs,
            });
            (200, body.to_string())
        })();
        record.status = status;
        self.requests.lock().unwrap().push(record);
        (status, body)
    }
}

fn serve(shared: &Shared, stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_string());
            }
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, body) = if method == "GET" {
        shared.answer(target, authorization.as_deref())
    } else {
        (405, error("UNSUPPORTED", "only GET is served"))
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Error",
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn error(code: &str, message: &str) -> String {
    json!({"errors": [{"code": code, "message": message}]}).to_string()
}

fn basic_user(value: &str) -> Option<(String, String)> {
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// `a=b&c=d` with percent-decoding and `+` as space.
fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
